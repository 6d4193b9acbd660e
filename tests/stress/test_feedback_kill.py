"""Feedback acknowledged is feedback kept: devices report to a real server whose writer thread
batches their writes, the server is killed (SIGKILL) in the middle of a batch, and every report
it answered 200 is in the history after the next start."""

import http.client
import json
import os
import threading
import time

from live import DdiLite

import storage
from storage import assignments, catalog
from storage.db import write
from storage.models import ActionStatus

DEVICES = 8
TOKEN = "token-kill"
CRASH_AT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_at.py")


def now_ms():
    return int(time.time() * 1000)


def seed(data_dir):
    """DEVICES targets, each with a running action; {controller id: action id}."""
    storage.open_store(data_dir, now_ms())
    try:
        module = catalog.create_module("os", "fw", "1.0", now_ms(), "test")
        distribution_set = catalog.create_distribution_set("fw", "1.0", [module.id], now_ms(),
                                                           "test")
        actions = {}
        for number in range(DEVICES):
            controller_id = "kill-%d" % number
            target = catalog.create_target(controller_id, now_ms(), "test",
                                           security_token=TOKEN)
            with write():
                actions[controller_id] = assignments.assign(distribution_set, target, now_ms(),
                                                            "test").id
        return actions
    finally:
        storage.close_store()


def stored_messages(data_dir):
    storage.open_store(data_dir, now_ms())
    try:
        return {message for entry in ActionStatus.select() for message in entry.messages}
    finally:
        storage.close_store()


def report_until_refused(port, controller_id, action_id, acknowledged):
    """POST numbered reports over one keep-alive connection until the server is gone."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    path = "/DEFAULT/controller/v1/%s/deploymentBase/%d/feedback" % (controller_id, action_id)
    number = 0
    try:
        while True:
            detail = "%s report %d" % (controller_id, number)
            body = json.dumps({"status": {"execution": "proceeding",
                                          "result": {"finished": "none"}, "details": [detail]}})
            connection.request("POST", path, body, {"Authorization": "TargetToken " + TOKEN,
                                                    "Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            acknowledged.append(detail)
            number += 1
    except (OSError, http.client.HTTPException):
        return
    finally:
        connection.close()


def test_kill_in_a_batch_of_feedback_keeps_every_acknowledged_report(tmp_path):
    directory = tmp_path / "server"
    data_dir = str(directory / "data")
    actions = seed(data_dir)
    # Killed in a batch of reports, 0.2 s after the others of the batch were written: one
    # answered before its batch is committed would have reached its device by then.
    server = DdiLite(directory, threads=4, entry=(CRASH_AT, "writes-mid-batch"),
                     config_lines=["[limits]", "status_entries_per_action = 0"])
    acknowledged = []
    try:
        clients = [threading.Thread(target=report_until_refused,
                                    args=(server.port, controller_id, action_id, acknowledged))
                   for controller_id, action_id in actions.items()]
        for client in clients:
            client.start()
        server.process.wait(30)
        for client in clients:
            client.join(15)
    finally:
        server.stop()
    assert server.process.returncode == -9, server.log()
    assert len(acknowledged) >= 20, server.log()
    missing = set(acknowledged) - stored_messages(data_dir)
    assert not missing, "%d of %d acknowledged reports lost, e.g. %s" % (
        len(missing), len(acknowledged), sorted(missing)[:5])
