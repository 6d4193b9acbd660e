"""Rollouts survive kill -9: a real `ddi-lite serve` is killed (SIGKILL) and started again on
the same data directory at each stage of a rollout (just created, first group running, first
group finished, paused by its error threshold) and inside the transaction that starts a
group; each time it goes on where it was, never starts a group twice and never loses a pause.

Devices are played over HTTP with the gateway token; the engine evaluates every second.
"""

import json
import os
import time
import urllib.request

import pytest

import live

CRASH_AT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stress", "crash_at.py")
TARGETS = 20
CONFIG = ["[scheduler]", "rollout_interval = 1",
          "[ddi]", "gateway_token_auth = true", "gateway_token = gw"]


def serve(directory, entry=("-m", "ddi_lite")):
    return live.DdiLite(directory, entry=entry, config_lines=CONFIG)


def kill_and_restart(server):
    """SIGKILL, as a power cut would, then a new server on the same data directory."""
    server.process.kill()
    server.process.wait(10)
    return serve(server.directory)


def device(url, method, path, document=None):
    body = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(
        url + "/DEFAULT/controller/v1/" + path, data=body, method=method,
        headers={"Authorization": "GatewayToken gw", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = response.read()
    return json.loads(data.decode("utf-8")) if data else None


def offered(url, controller_id):
    return "deploymentBase" in device(url, "GET", controller_id)["_links"]


def report(url, controller_id, action_id, finished):
    device(url, "POST", "%s/deploymentBase/%d/feedback" % (controller_id, action_id),
           {"status": {"execution": "closed", "result": {"finished": finished}}})


def prepare(url, **rollout):
    """20 targets, a complete set and a rollout of them in two groups: the rollout's id."""
    live.api(url, "POST", "/targets",
             [{"controllerId": "dev-%02d" % n} for n in range(TARGETS)])
    module = live.api(url, "POST", "/softwaremodules",
                      [{"name": "fw", "version": "1", "type": "os"}])[0]
    distribution_set = live.api(url, "POST", "/distributionsets", [{
        "name": "fw", "version": "1", "type": "os", "modules": [{"id": module["id"]}]}])[0]
    body = {"name": "wave", "distributionSetId": distribution_set["id"],
            "targetFilterQuery": "controllerId==dev-*", "amountGroups": 2,
            "errorCondition": {"condition": "THRESHOLD", "expression": "30"}}
    body.update(rollout)
    return live.api(url, "POST", "/rollouts", body)["id"]


def rollout_state(url, rollout_id):
    """(rollout status, [group statuses])."""
    rollout = live.api(url, "GET", "/rollouts/%d" % rollout_id)
    groups = live.api(url, "GET", "/rollouts/%d/deploygroups" % rollout_id)["content"]
    return rollout["status"], [group["status"] for group in groups]


def members(url, rollout_id, index):
    """[(controller id, action id)] of group `index`, from the group's actions."""
    group = live.api(url, "GET", "/rollouts/%d/deploygroups" % rollout_id)["content"][index]
    page = live.api(url, "GET", "/actions?limit=500&sort=id:ASC&q=rolloutGroup.id==%d"
                    % group["id"])
    return [(action["_links"]["self"]["href"].split("/targets/")[1].split("/")[0],
             action["id"]) for action in page["content"]]


def starts(url, controller_id, action_id):
    """How many times the action was started: its `running` history entries."""
    entries = live.api(url, "GET", "/targets/%s/actions/%d/status?limit=500"
                       % (controller_id, action_id))["content"]
    return sum(1 for entry in entries if entry["type"] == "running")


def wait_for(server, rollout_id, expected, what):
    live.wait_until(lambda: rollout_state(server.url, rollout_id) == expected, 15, what,
                    on_timeout=lambda: "%s\n%s" % (rollout_state(server.url, rollout_id),
                                                   server.log()))


def test_kill_9_at_every_stage_of_a_rollout_resumes_where_it_was(tmp_path):
    server = serve(tmp_path / "server")
    try:
        rollout_id = prepare(server.url)

        # 1. just created: still ready, nobody offered anything
        server = kill_and_restart(server)
        assert rollout_state(server.url, rollout_id) == ("ready", ["ready", "ready"])
        counts = live.api(server.url, "GET", "/rollouts/%d" % rollout_id)[
            "totalTargetsPerStatus"]
        assert counts["notstarted"] == TARGETS
        assert not any(offered(server.url, "dev-%02d" % n) for n in range(TARGETS))
        live.api(server.url, "POST", "/rollouts/%d/start" % rollout_id)
        wait_for(server, rollout_id, ("running", ["running", "scheduled"]), "group 1 running")

        # 2. group 1 running: started once, group 2 still unseen
        server = kill_and_restart(server)
        time.sleep(2.5)  # the evaluation at start and two timed ones
        assert rollout_state(server.url, rollout_id) == ("running", ["running", "scheduled"])
        first, second = members(server.url, rollout_id, 0), members(server.url, rollout_id, 1)
        assert [starts(server.url, *member) for member in first] == [1] * 10
        assert all(offered(server.url, cid) for cid, _ in first)
        assert not any(offered(server.url, cid) for cid, _ in second)
        for member in first:
            report(server.url, *member, finished="success")
        wait_for(server, rollout_id, ("running", ["finished", "running"]),
                 "group 1 finished, group 2 running")

        # 3. group 1 finished: group 2 started once
        server = kill_and_restart(server)
        time.sleep(2.5)
        assert rollout_state(server.url, rollout_id) == ("running", ["finished", "running"])
        assert [starts(server.url, *member) for member in second] == [1] * 10
        for member in second[:4]:  # 40 % > 30 %
            report(server.url, *member, finished="failure")
        wait_for(server, rollout_id, ("paused", ["finished", "error"]), "the error pause")

        # 4. paused: stays paused until resumed, then finishes
        server = kill_and_restart(server)
        time.sleep(2.5)
        assert rollout_state(server.url, rollout_id) == ("paused", ["finished", "error"])
        live.api(server.url, "POST", "/rollouts/%d/resume" % rollout_id)
        for member in second[4:]:
            report(server.url, *member, finished="success")
        wait_for(server, rollout_id, ("finished", ["finished", "error"]), "the end")
        counts = live.api(server.url, "GET", "/rollouts/%d" % rollout_id)[
            "totalTargetsPerStatus"]
        assert (counts["finished"], counts["error"]) == (16, 4)
    finally:
        server.stop()


@pytest.mark.parametrize("step", ["rollout-mid-group-start"])
def test_kill_inside_a_group_start_then_the_restart_starts_it_exactly_once(tmp_path, step):
    directory = tmp_path / "server"
    crashing = serve(directory, entry=(CRASH_AT, step))
    try:
        rollout_id = prepare(crashing.url)
        try:
            live.api(crashing.url, "POST", "/rollouts/%d/start" % rollout_id)
        except OSError:
            pass  # the engine may kill the process before the answer leaves
        crashing.process.wait(15)
        assert crashing.process.returncode == -9, crashing.log()
    finally:
        crashing.stop()
    server = serve(directory)
    try:
        wait_for(server, rollout_id, ("running", ["running", "scheduled"]), "group 1 running")
        time.sleep(2.5)
        first = members(server.url, rollout_id, 0)
        assert [starts(server.url, *member) for member in first] == [1] * 10
        assert rollout_state(server.url, rollout_id) == ("running", ["running", "scheduled"])
    finally:
        server.stop()
