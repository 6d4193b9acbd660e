"""Poll throughput with worker processes ([server] workers): the same registered target with a
running action polls its root resource over keep-alive connections, against ddi-lite serving
with 2 workers (figure) and with 1, today's single process (baseline). Each run is a fresh
server, one under load at a time; the order alternates each round so that neither meets the
warmer or quieter machine every time. Target: 2 workers at least 1.6x one on two cores.
A second row divides each run's polls by the CPU seconds the server (master and workers) used:
on a machine others share, it tells how much of a shortfall is the cores the workers did not
get.
"""

import os
import time

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
        cores = {1: [], WORKERS: []}
        for number in range(plan.rounds):
            for workers in ((1, WORKERS) if number % 2 == 0 else (WORKERS, 1)):
                with ddi_lite_process(data_dir, work, plan.threads, workers=workers) as ddi:
                    ddi.wait_listening()
                    expect(request(ddi.port, path, headers=load.headers), 200, "poll")
                    run_load(ddi.port, load, CONNECTIONS, 1, work)  # warm up, every worker
                    used_before, started = cpu_seconds(ddi.pid), time.monotonic()
                    rates[workers].append(checked(
                        run_load(ddi.port, load, CONNECTIONS, plan.seconds, work),
                        "poll with %d worker(s)" % workers).rate)
                    cores[workers].append((cpu_seconds(ddi.pid) - used_before)
                                          / (time.monotonic() - started))
    figure, reference = median(rates[WORKERS]), median(rates[1])
    ratio = figure / reference
    # Polls per CPU second of the server: what each worker gets done with the core it gets,
    # whatever the rest of the machine leaves it.
    per_cpu = {workers: median([rate / used for rate, used in zip(rates[workers],
                                                                  cores[workers])])
               for workers in rates}
    rows = [Row("Poll throughput, %d workers vs 1 (req/s)" % WORKERS, "%.0f" % figure,
                "%.0f" % reference, ratio, ">= %.1fx" % TARGET, ratio >= TARGET),
            Row("Polls per server CPU second, %d workers vs 1" % WORKERS,
                "%.0f" % per_cpu[WORKERS], "%.0f" % per_cpu[1],
                per_cpu[WORKERS] / per_cpu[1], "-", None)]
    notes = ["Workers: %d keep-alive connections, %d Waitress threads per worker; rounds "
             "(req/s), 1 worker: %s; %d workers: %s. Cores the server used while loaded "
             "(CPU seconds per second; wrk and other work on the machine take the rest): "
             "1 worker %s; %d workers %s." % (
                 CONNECTIONS, plan.threads, ", ".join("%.0f" % r for r in rates[1]), WORKERS,
                 ", ".join("%.0f" % r for r in rates[WORKERS]),
                 ", ".join("%.2f" % c for c in cores[1]), WORKERS,
                 ", ".join("%.2f" % c for c in cores[WORKERS]))]
    return rows, notes


def cpu_seconds(pid):
    """The CPU time (user and system) of a process and of its children that run (a
    master's workers), from /proc."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")
