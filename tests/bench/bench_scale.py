"""Scale: poll latency (p50, p99) of random registered targets, each with a running action,
with 1k against 100k targets in the database; and the SQL one poll runs, checked with
EXPLAIN QUERY PLAN for full scans.
"""

import os
import random
import time

from bench_support import (DEVICE, Row, alternate, checked, ddi_lite_process, call_wsgi,
                           device_headers, expect, in_process_app, median, open_data_dir,
                           query_plan_scans, request, run_load, scratch_dir, seed_fleet,
                           SqlRecorder, Load, token_of)
import storage

SMALL, LARGE = 1000, 100000
CONNECTIONS = 2
LIMIT_RATIO = 1.5


def fleet_load(count):
    return Load("%s/{device}" % DEVICE, {"Authorization": "TargetToken " + token_of("{device}")},
                variants=[{"device": "s-%d" % n} for n in range(1, count + 1)])


def in_process(data_dir, work, count, polls):
    """Polls of random targets through the WSGI app in this process, one at a time: the
    service time without HTTP or scheduling noise (p50, p99 in ms); and the statements one
    warm poll runs with the full scans SQLite plans for them."""
    app = in_process_app(data_dir, work)
    try:
        rng = random.Random(count)
        times = []
        for _ in range(polls):
            controller_id = "s-%d" % rng.randint(1, count)
            started = time.perf_counter()
            status, _ = call_wsgi(app, "%s/%s" % (DEVICE, controller_id),
                                  device_headers(controller_id))
            times.append(time.perf_counter() - started)
            if not status.startswith("200"):
                raise RuntimeError("in-process poll answered " + status)
        times.sort()
        controller_id = "s-%d" % (count // 2)
        with SqlRecorder() as recorder:
            call_wsgi(app, "%s/%s" % (DEVICE, controller_id), device_headers(controller_id))
        scans = [(sql, scan) for sql, params in recorder.statements
                 for scan in query_plan_scans(storage.database, sql, params)]
        service = (times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000)
        return service, recorder.statements, scans
    finally:
        storage.close_store()


def run(plan):
    rows, notes = [], []
    with scratch_dir(plan.scratch, "scale") as work:
        dirs = {}
        for count in (SMALL, LARGE):
            dirs[count] = os.path.join(work, "fleet-%d" % count)
            with open_data_dir(dirs[count]):
                seed_fleet(count, "s-")
        polls = 500 if plan.quick else 3000
        small_service, _, _ = in_process(dirs[SMALL], work, SMALL, polls)
        large_service, statements, scans = in_process(dirs[LARGE], work, LARGE, polls)
        with ddi_lite_process(dirs[SMALL], work, plan.threads) as small, \
                ddi_lite_process(dirs[LARGE], work, plan.threads) as large:
            loads = {small: fleet_load(SMALL), large: fleet_load(LARGE)}
            for server in (small.wait_listening(), large.wait_listening()):
                expect(request(server.port, "%s/s-1" % DEVICE, headers=device_headers("s-1")),
                       200, server.name + " poll")
                run_load(server.port, loads[server], CONNECTIONS, 1, work)  # warm up

            def measure(server):
                return lambda: checked(run_load(server.port, loads[server], CONNECTIONS,
                                                plan.seconds, work), "scale polls")
            large_runs, small_runs = alternate(plan.rounds, measure(large), measure(small))
    for label, field, target in (("p50", "p50_ms", None), ("p99", "p99_ms", LIMIT_RATIO)):
        large_ms = median([getattr(r, field) for r in large_runs])
        small_ms = median([getattr(r, field) for r in small_runs])
        ratio = large_ms / small_ms
        rows.append(Row("Poll latency %s, 100k vs 1k targets (ms)" % label,
                        "%.2f" % large_ms, "%.2f" % small_ms, ratio,
                        "<= %.1fx" % target if target else "-",
                        ratio <= target if target else None))
    rows.append(Row("SQL statements per poll / full scans (100k targets)",
                    "%d / %d" % (len(statements), len(scans)), "-", None, "0 scans",
                    not scans))
    notes.append("Scale: %d connections polling random targets; req/s 100k %s, 1k %s."
                 % (CONNECTIONS, ", ".join("%.0f" % r.rate for r in large_runs),
                    ", ".join("%.0f" % r.rate for r in small_runs)))
    notes.append("Scale, in-process service time of %d polls (no HTTP, one at a time): "
                 "p50 %.2f ms vs %.2f ms, p99 %.2f ms vs %.2f ms (100k vs 1k)."
                 % ((polls,) + large_service[:1] + small_service[:1] + large_service[1:]
                    + small_service[1:]))
    notes.append("A poll runs: " + "; ".join(
        "`%s`" % sql.split(" FROM ")[1].split(" LIMIT ")[0] if " FROM " in sql else sql
        for sql, _ in statements) + ".")
    notes += ["Full scan: %s in `%s`" % (scan, sql) for sql, scan in scans]
    return rows, notes
