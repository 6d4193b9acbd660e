"""A worker killed with SIGKILL under load ([server] workers = 2, issue 15): no acknowledged
write is lost, the master starts the worker again, and the auto-assignment scheduler, whose
once-lock the killed worker held, goes on in a live worker."""

import http.client
import json
import os
import signal
import threading
import time

from clients.harness import Operator
from live import ADMIN, DdiLite, child_pids, once_holder, wait_until

from storage.accounts import hash_password

LOAD_THREADS = 4


def create_target(port, controller_id):
    """POST one target on a new connection (so that the load spreads over both workers);
    whether the server acknowledged it. A connection cut by the kill is no acknowledgement."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/rest/v1/targets",
                           json.dumps([{"controllerId": controller_id}]),
                           {"Authorization": ADMIN, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status == 201
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def lock_holder(directory):
    try:
        return once_holder(directory / "data", "auto-assign")
    except (OSError, ValueError):
        return 0


def test_a_worker_killed_under_load_loses_no_acknowledged_write_and_the_scheduler_moves(
        tmp_path):
    directory = tmp_path / "server"
    server = DdiLite(directory, threads=4, config_lines=[
        "workers = 2", "[scheduler]", "auto_assign_interval = 1", "[limits]",
        "password_checks = 8", "[accounts]", "admin = " + hash_password("admin", iterations=1000)])
    operator = Operator(server.url)
    try:
        wait_until(lambda: len(child_pids(server.process.pid)) == 2, 10, "two workers")
        set_id = operator.distribution("fw", {})
        filter_id = operator.call("POST", "/targetfilters",
                                  {"name": "auto", "query": "controllerId==auto-*"})["id"]
        operator.call("POST", "/targetfilters/%d/autoAssignDS" % filter_id,
                      {"id": set_id, "type": "forced"})
        victim = wait_until(lambda: lock_holder(directory), 5, "the scheduler's lock")
        assert victim in child_pids(server.process.pid)

        acknowledged = []
        stop = threading.Event()

        def load(number):
            count = 0
            while not stop.is_set():
                controller_id = "load-%d-%d" % (number, count)
                count += 1
                if create_target(server.port, controller_id):
                    acknowledged.append(controller_id)

        threads = [threading.Thread(target=load, args=(number,)) for number in
                   range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            before_kill = len(acknowledged)
            os.kill(victim, signal.SIGKILL)
            time.sleep(1.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(15)
        assert before_kill > 0 and len(acknowledged) > before_kill

        def restarted():
            pids = child_pids(server.process.pid)
            return pids if len(pids) == 2 and victim not in pids else None

        workers = wait_until(restarted, 10, "the killed worker's restart")
        stored = set()
        total = None
        while total is None or len(stored) < total:
            page = operator.call("GET", "/targets?q=controllerId==load-*&limit=500&offset=%d"
                                 % len(stored))
            total = page["total"]
            stored.update(target["controllerId"] for target in page["content"])
            if not page["content"]:
                break
        assert set(acknowledged) <= stored
        assert "database is locked" not in server.log()

        wait_until(lambda: lock_holder(directory) in workers, 5,
                   "the scheduler's lock in a live worker")
        operator.add_target("auto-1")
        wait_until(lambda: operator.call("GET", "/targets/auto-1/actions")["total"] == 1, 5,
                   "the auto-assignment after the kill", on_timeout=server.log)
    finally:
        server.stop()


# --- the rollout engine ------------------------------------------------------------------

ROLLOUT_TARGETS = 10


def rollouts_lock_holder(directory):
    try:
        return once_holder(directory / "data", "rollouts")
    except (OSError, ValueError):
        return 0


def device_call(port, method, path, document=None):
    """One DDI request with the gateway token, on a new connection (either worker answers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = None if document is None else json.dumps(document)
        connection.request(method, "/DEFAULT/controller/v1/" + path, body,
                           {"Authorization": "GatewayToken gw",
                            "Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, (path, response.status, data[:300])
        return json.loads(data.decode("utf-8")) if data else None
    finally:
        connection.close()


def group_statuses(operator, rollout_id):
    return [group["status"] for group in
            operator.call("GET", "/rollouts/%d/deploygroups" % rollout_id)["content"]]


def test_the_worker_running_the_rollouts_killed_mid_rollout_the_rollout_still_moves(tmp_path):
    directory = tmp_path / "server"
    server = DdiLite(directory, threads=4, config_lines=[
        "workers = 2", "[scheduler]", "rollout_interval = 1",
        "[ddi]", "gateway_token_auth = true", "gateway_token = gw", "[limits]",
        "password_checks = 8", "[accounts]", "admin = " + hash_password("admin", iterations=1000)])
    operator = Operator(server.url)
    try:
        wait_until(lambda: len(child_pids(server.process.pid)) == 2, 10, "two workers")
        for number in range(ROLLOUT_TARGETS):
            operator.add_target("dev-%02d" % number)
        set_id = operator.distribution("fw", {})
        rollout_id = operator.call("POST", "/rollouts", {
            "name": "wave", "distributionSetId": set_id,
            "targetFilterQuery": "controllerId==dev-*", "amountGroups": 2})["id"]
        operator.call("POST", "/rollouts/%d/start" % rollout_id)
        wait_until(lambda: group_statuses(operator, rollout_id) == ["running", "scheduled"], 10,
                   "group 1 running", on_timeout=server.log)

        victim = wait_until(lambda: rollouts_lock_holder(directory), 5, "the engine's lock")
        workers = child_pids(server.process.pid)
        assert victim in workers
        # The engine runs in exactly one worker: the other one never took its lock.
        assert server.log().count("rollouts runs in this process") == 1
        os.kill(victim, signal.SIGKILL)

        # Group 1's devices install, through whichever worker answers them.
        first = [action for action in operator.call(
            "GET", "/actions?limit=100&q=rolloutGroup.name==group-1")["content"]]
        assert len(first) == ROLLOUT_TARGETS // 2
        for action in first:
            controller_id = action["_links"]["self"]["href"].split("/targets/")[1].split("/")[0]
            device_call(server.port, "POST", "%s/deploymentBase/%d/feedback"
                        % (controller_id, action["id"]),
                        {"status": {"execution": "closed", "result": {"finished": "success"}}})

        wait_until(lambda: group_statuses(operator, rollout_id) == ["finished", "running"], 15,
                   "group 2 started by the engine in a live worker", on_timeout=server.log)
        holder = rollouts_lock_holder(directory)
        assert holder != victim and holder in child_pids(server.process.pid)
        assert operator.call("GET", "/rollouts/%d" % rollout_id)["status"] == "running"
    finally:
        server.stop()
