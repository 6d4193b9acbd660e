"""Poll throughput with worker processes ([server] workers): the same registered target with a
running action polls its root resource over keep-alive connections, against ddi-lite serving
with 2 workers (figure) and with 1, today's single process (baseline). Each run is a fresh
server, one under load at a time; the order alternates each round so that neither meets the
warmer or quieter machine every time. Target: 2 workers at least 1.6x one on two cores.
"""

import os

from bench_support import (DEVICE, Load, Row, checked, ddi_lite_process, device_headers,
                           expect, median, open_data_dir, request, run_load, scratch_dir,
                           seed_assigned_target)

WORKERS = 2
CONNECTIONS = 16
CONTROLLER = "workers-1"
TARGET = 1.6


def run(plan):
    path = "%s/%s" % (DEVICE, CONTROLLER)
    load = Load(path, device_headers(CONTROLLER))
    with scratch_dir(plan.scratch, "workers") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            seed_assigned_target(CONTROLLER, "workers-fw")
        rates = {1: [], WORKERS: []}
        for number in range(plan.rounds):
            for workers in ((1, WORKERS) if number % 2 == 0 else (WORKERS, 1)):
                with ddi_lite_process(data_dir, work, plan.threads, workers=workers) as ddi:
                    ddi.wait_listening()
                    expect(request(ddi.port, path, headers=load.headers), 200, "poll")
                    run_load(ddi.port, load, CONNECTIONS, 1, work)  # warm up, every worker
                    rates[workers].append(checked(
                        run_load(ddi.port, load, CONNECTIONS, plan.seconds, work),
                        "poll with %d worker(s)" % workers).rate)
    figure, reference = median(rates[WORKERS]), median(rates[1])
    ratio = figure / reference
    rows = [Row("Poll throughput, %d workers vs 1 (req/s)" % WORKERS, "%.0f" % figure,
                "%.0f" % reference, ratio, ">= %.1fx" % TARGET, ratio >= TARGET)]
    notes = ["Workers: %d keep-alive connections, %d Waitress threads per worker; rounds "
             "(req/s), 1 worker: %s; %d workers: %s." % (
                 CONNECTIONS, plan.threads, ", ".join("%.0f" % r for r in rates[1]), WORKERS,
                 ", ".join("%.0f" % r for r in rates[WORKERS]))]
    return rows, notes
