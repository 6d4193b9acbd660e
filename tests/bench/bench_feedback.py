"""Feedback writes: devices POST `proceeding` to their running action, each report one durable
status entry. Measured against the same server's poll of the same devices in the same rounds
(a device that reports should cost about what one that asks does), and against a plain sqlite3
loop that inserts a row of the same shape and commits, one transaction per row, with
storage/db.py's own PRAGMAs (WAL, synchronous=NORMAL): the ceiling of one writer.
"""

import json
import os
import sqlite3
import time

from bench_support import (DEVICE, Row, checked, ddi_lite_process, device_headers, expect,
                           median, open_data_dir, request, run_load, scratch_dir, seed_fleet,
                           Load, token_of)
from storage.db import CACHE_KIB, MMAP_MIB, PRAGMAS
from storage.models import Action, ActionStatus, Target

DEVICES = 200
CONNECTIONS = 16
TARGET_RATIO = 0.7
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


def rotate(rounds, runs):
    """Run each of `runs` once per round, starting each round one further along, so that none
    always runs first on a warmer or quieter machine; one list of results per run."""
    results = [[] for _ in runs]
    for number in range(rounds):
        for offset in range(len(runs)):
            index = (number + offset) % len(runs)
            results[index].append(runs[index]())
    return results


def run(plan):
    notes = []
    with scratch_dir(plan.scratch, "feedback") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            seed_fleet(DEVICES, "fb-")
            actions = {target: action for target, action in Action.select(
                Target.controller_id, Action.id).join(Target).tuples()}
            entries_before = ActionStatus.select().count()
        variants = [{"device": device, "action": action} for device, action in actions.items()]
        headers = {"Authorization": "TargetToken " + token_of("{device}")}
        feedback = Load("%s/{device}/deploymentBase/{action}/feedback" % DEVICE, method="POST",
                        body=BODY, headers=dict(headers, **{"Content-Type": "application/json"}),
                        variants=variants)
        poll = Load("%s/{device}" % DEVICE, headers=headers, variants=variants)
        baseline_db = os.path.join(work, "baseline.sqlite3")
        with ddi_lite_process(data_dir, work, plan.threads) as ddi:
            ddi.wait_listening()
            for controller_id, action_id in actions.items():
                expect(request(ddi.port, "%s/%s/deploymentBase/%d/feedback"
                               % (DEVICE, controller_id, action_id), "POST",
                               dict(device_headers(controller_id),
                                    **{"Content-Type": "application/json"}), BODY),
                       200, "feedback of " + controller_id)
            run_load(ddi.port, poll, CONNECTIONS, 1, work)  # warm up
            requests = []

            def measure_feedback():
                result = checked(run_load(ddi.port, feedback, CONNECTIONS, plan.seconds, work),
                                 "ddi-lite feedback")
                requests.append(result.requests)
                return result.rate

            def measure_poll():
                return checked(run_load(ddi.port, poll, CONNECTIONS, plan.seconds, work),
                               "ddi-lite poll").rate
            feedback_rates, poll_rates, sqlite_rates = rotate(plan.rounds, [
                measure_feedback, measure_poll, lambda: sqlite_loop(baseline_db, plan.seconds)])
        with open_data_dir(data_dir):
            written = ActionStatus.select().count() - entries_before - DEVICES
        if written < sum(requests):
            raise RuntimeError("%d feedback requests answered, only %d status entries stored"
                               % (sum(requests), written))
        rate = median(feedback_rates)
        notes.append("Feedback: %d devices over %d connections, each POST one status entry "
                     "(%d answered, %d stored); the poll is of the same devices. Rounds "
                     "(writes/s): %s; polls/s: %s; sqlite3 loop rows/s: %s."
                     % (DEVICES, CONNECTIONS, sum(requests), written,
                        ", ".join("%.0f" % r for r in feedback_rates),
                        ", ".join("%.0f" % r for r in poll_rates),
                        ", ".join("%.0f" % r for r in sqlite_rates)))
    ratio = rate / median(poll_rates)
    return [Row("Feedback writes vs the poll (writes/s vs req/s)", "%.0f" % rate,
                "%.0f" % median(poll_rates), ratio, ">= %.1fx" % TARGET_RATIO,
                ratio >= TARGET_RATIO),
            Row("Feedback writes vs a sqlite3 insert loop, the ceiling (writes/s)",
                "%.0f" % rate, "%.0f" % median(sqlite_rates), rate / median(sqlite_rates),
                "-", None)], notes
