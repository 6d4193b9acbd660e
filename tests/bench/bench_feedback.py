"""Feedback writes: devices POST `proceeding` to their running action, each report one durable
status entry, against a plain sqlite3 loop that inserts a row of the same shape and commits,
one transaction per row, with storage/db.py's own PRAGMAs (WAL, synchronous=NORMAL).
"""

import json
import os
import sqlite3
import time

from bench_support import (DEVICE, Row, alternate, checked, ddi_lite_process, device_headers,
                           expect, median, open_data_dir, request, run_load, scratch_dir,
                           seed_assigned_target, Load, token_of)
from storage.db import CACHE_KIB, MMAP_MIB, PRAGMAS
from storage.models import ActionStatus

DEVICES = 8
CONNECTIONS = 4
TARGET_WRITES = 1000
BODY = json.dumps({"status": {"execution": "proceeding", "result": {"finished": "none"},
                              "details": ["downloading 42%"]}})
# The shape of ddi-lite's action_status table.
BASELINE_SCHEMA = (
    "CREATE TABLE entry (id INTEGER PRIMARY KEY AUTOINCREMENT, action_id INTEGER NOT NULL,"
    " status VARCHAR(32) NOT NULL, timestamp INTEGER NOT NULL, reported_at INTEGER NOT NULL,"
    " created_by VARCHAR(64) NOT NULL, code INTEGER, messages TEXT NOT NULL)",
    "CREATE INDEX entry_action_id ON entry (action_id, id)",
)


def sqlite_loop(path, seconds):
    """Rows per second of INSERT + COMMIT, one write transaction per row."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for name, value in PRAGMAS + (("cache_size", -CACHE_KIB),
                                      ("mmap_size", MMAP_MIB * 1024 * 1024)):
            connection.execute("PRAGMA %s = %s" % (name, value))
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'entry'").fetchone():
            for statement in BASELINE_SCHEMA:
                connection.execute(statement)
        messages = json.dumps(["downloading 42%", "Update Server: Target reported proceeding"])
        rows = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            now = int(time.time() * 1000)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO entry (action_id, status, timestamp, reported_at,"
                               " created_by, code, messages) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (1 + rows % DEVICES, "RUNNING", now, now, "dev", None, messages))
            connection.execute("COMMIT")
            rows += 1
        return rows / (time.perf_counter() - started)
    finally:
        connection.close()


def run(plan):
    notes = []
    with scratch_dir(plan.scratch, "feedback") as work:
        data_dir = os.path.join(work, "data")
        actions = {}
        with open_data_dir(data_dir):
            for number in range(1, DEVICES + 1):
                controller_id = "fb-%d" % number
                _, action = seed_assigned_target(controller_id, "fb-fw-%d" % number)
                actions[controller_id] = action.id
            entries_before = ActionStatus.select().count()
        load = Load("%s/{device}/deploymentBase/{action}/feedback" % DEVICE, method="POST",
                    body=BODY, headers={"Authorization": "TargetToken " + token_of("{device}"),
                                        "Content-Type": "application/json"},
                    variants=[{"device": device, "action": action}
                              for device, action in actions.items()])
        baseline_db = os.path.join(work, "baseline.sqlite3")
        with ddi_lite_process(data_dir, work, plan.threads) as ddi:
            ddi.wait_listening()
            for controller_id, action_id in actions.items():
                headers = dict(device_headers(controller_id),
                               **{"Content-Type": "application/json"})
                expect(request(ddi.port, "%s/%s/deploymentBase/%d/feedback"
                               % (DEVICE, controller_id, action_id), "POST", headers, BODY),
                       200, "feedback of " + controller_id)
            requests = []

            def measure_ddi():
                result = checked(run_load(ddi.port, load, CONNECTIONS, plan.seconds, work),
                                 "ddi-lite feedback")
                requests.append(result.requests)
                return result.rate
            ddi_rates, sqlite_rates = alternate(
                plan.rounds, measure_ddi, lambda: sqlite_loop(baseline_db, plan.seconds))
        with open_data_dir(data_dir):
            written = ActionStatus.select().count() - entries_before - DEVICES
        if written < sum(requests):
            raise RuntimeError("%d feedback requests answered, only %d status entries stored"
                               % (sum(requests), written))
        rate = median(ddi_rates)
        notes.append("Feedback: %d devices over %d connections, each POST one status entry "
                     "(%d answered, %d stored); sqlite3 loop rows/s per round: %s."
                     % (DEVICES, CONNECTIONS, sum(requests), written,
                        ", ".join("%.0f" % r for r in sqlite_rates)))
    return [Row("Feedback writes (writes/s)", "%.0f" % rate, "%.0f" % median(sqlite_rates),
                rate / median(sqlite_rates), ">= %d/s" % TARGET_WRITES,
                rate >= TARGET_WRITES)], notes
