"""Poll throughput by Waitress thread count: the same registered target with a running action
polls its root resource over keep-alive connections, against ddi-lite serving with 1, 2, 4, 8
and 16 worker threads. Every count runs as its own server; one server is under load at a time,
and the order rotates each round so that no count always meets a warmer or quieter machine.
The baseline of each row is the count that is ddi-lite's default (`[server] threads`), in the
same rounds.
"""

import os

from bench_support import (DEFAULT_THREADS, DEVICE, Row, checked, ddi_lite_process,
                           device_headers, expect, median, open_data_dir, request, run_load,
                           scratch_dir, seed_assigned_target, Load)

COUNTS = (1, 2, 4, 8, 16)
# As many connections as the largest count has threads, so that every thread can be busy.
CONNECTIONS = 16
CONTROLLER = "threads-1"


def run(plan):
    rows, notes = [], []
    path = "%s/%s" % (DEVICE, CONTROLLER)
    load = Load(path, device_headers(CONTROLLER))
    with scratch_dir(plan.scratch, "threads") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            seed_assigned_target(CONTROLLER, "threads-fw")
        rates = {count: [] for count in COUNTS}
        for number in range(plan.rounds):
            order = COUNTS[number % len(COUNTS):] + COUNTS[:number % len(COUNTS)]
            for count in order:
                # A fresh server per run: each count is measured alone, nothing else serving.
                with ddi_lite_process(data_dir, work, count) as ddi:
                    ddi.wait_listening()
                    expect(request(ddi.port, path, headers=load.headers), 200, "poll")
                    run_load(ddi.port, load, CONNECTIONS, 1, work)  # warm up
                    rates[count].append(checked(
                        run_load(ddi.port, load, CONNECTIONS, plan.seconds, work),
                        "poll with %d threads" % count).rate)
    default = DEFAULT_THREADS
    reference = median(rates[default]) if default in rates else None
    for count in COUNTS:
        figure = median(rates[count])
        rows.append(Row("Poll throughput, %d Waitress thread%s (req/s)"
                        % (count, "" if count == 1 else "s"), "%.0f" % figure,
                        "%.0f" % reference if reference else "-",
                        figure / reference if reference else None, "-", None))
    notes.append("Threads: %d keep-alive connections; the baseline is the default, %d threads, "
                 "in the same rounds. Rounds (req/s): %s." % (
                     CONNECTIONS, default, "; ".join(
                         "%d: %s" % (count, ", ".join("%.0f" % r for r in rates[count]))
                         for count in COUNTS)))
    return rows, notes
