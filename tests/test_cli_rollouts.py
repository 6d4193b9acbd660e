"""`ddi-lite rollouts ...`, run as an operator runs it: a separate process talking to a real
ddi-lite server process, whose rollout engine moves the groups while devices (plain DDI
requests here) report; and the drawing of the group bars, on its own.

One server serves the whole module; every test uses its own target, set and rollout names.
"""

import json
import re
import subprocess
import sys
import urllib.request

import pytest

import live
from client import rollouts
from test_cli import a_set, cli, table_row


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    server = live.DdiLite(tmp_path_factory.mktemp("cli-rollouts"))
    try:
        yield server.url
    finally:
        server.stop()


def devices(url, prefix, count):
    """Targets PREFIX-0..PREFIX-(count-1), each with the token `token-<controllerId>`."""
    names = ["%s-%d" % (prefix, number) for number in range(count)]
    live.api(url, "POST", "/targets", [{"controllerId": name, "securityToken": "token-" + name}
                                      for name in names])
    return names


def ddi(url, controller_id, path="", document=None):
    body = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(
        "%s/DEFAULT/controller/v1/%s%s" % (url, controller_id, path), data=body,
        method="GET" if body is None else "POST",
        headers={"Authorization": "TargetToken token-" + controller_id,
                 "Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = response.read()
    return json.loads(data.decode("utf-8")) if data else None


def offered(url, controller_id):
    """Poll as the device does: the id of the deployment offered, or None."""
    links = ddi(url, controller_id).get("_links") or {}
    if "deploymentBase" not in links:
        return None
    return int(re.search(r"/deploymentBase/(\d+)", links["deploymentBase"]["href"]).group(1))


def offered_to(url, names):
    """The devices among `names` that are offered a deployment now, polled one by one."""
    return [name for name in names if offered(url, name) is not None]


def wait_offered(url, names, count):
    """The `count` devices among `names` offered a deployment, once that many are (a group
    starts in one transaction, which may fall between two polls of a round)."""
    found = []

    def enough():
        found[:] = offered_to(url, names)
        return len(found) >= count
    live.wait_until(enough, 20, "%d devices offered the set" % count)
    assert len(found) == count, found
    return found


def install(url, controller_id, finished="success"):
    """Report the offered deployment closed with `finished`."""
    action_id = offered(url, controller_id)
    ddi(url, controller_id, "/deploymentBase/%d/feedback" % action_id, {
        "id": str(action_id),
        "status": {"execution": "closed", "result": {"finished": finished}}})


def rollout_of(url, rollout_id):
    return live.api(url, "GET", "/rollouts/%d" % rollout_id)


def wait_for_status(url, rollout_id, status, seconds=20):
    return live.wait_until(lambda: rollout_of(url, rollout_id)["status"] == status, seconds,
                           "rollout %d %s" % (rollout_id, status))


def test_create_start_and_watch_a_rollout_until_it_finishes(url):
    names = devices(url, "ro-a", 4)
    distribution_set = a_set(url, "ro-a-set")
    created = cli(url, "rollouts", "create", "ro-a", str(distribution_set["id"]),
                  "controllerId==ro-a-*", "--groups", "2", "--success-threshold", "100")
    assert created.returncode == 0, created.stderr
    rollout_id = int(created.stdout)

    listed = cli(url, "rollouts", "list", "--query", "name==ro-a")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "NAME", "STATUS", "SET", "GROUPS", "TARGETS", "DONE", "ERRORS"]
    row = table_row(listed.stdout, str(rollout_id))
    assert row[1] == "ro-a" and row[2] in ("creating", "ready")
    assert row[3:] == ["ro-a-set:1.0", "2", "4", "0/4", "0"]

    started = cli(url, "rollouts", "start", str(rollout_id))
    assert (started.returncode, started.stdout) == (0, "rollout %d started\n" % rollout_id)
    wait_for_status(url, rollout_id, "running")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ddi_lite", "--url", url, "rollouts", "show", str(rollout_id),
         "--watch", "--interval", "0.2"],
        env=live.clean_environment(DDI_LITE_PASSWORD="admin"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        drawn = [watcher.stdout.readline() for _ in range(3)]  # before anything moves
        assert drawn[0].startswith("rollout %d ro-a: running, 0/4 done" % rollout_id), drawn
        first = wait_offered(url, names, 2)  # one group of two; the other sees nothing yet
        for name in first:
            install(url, name)
        rest = wait_offered(url, sorted(set(names) - set(first)), 2)
        for name in rest:
            install(url, name)
        out, err = watcher.communicate(timeout=30)
    finally:
        live.stop_process(watcher)
    assert (watcher.returncode, err) == (0, "")
    blocks = out.split("rollout %d ro-a: " % rollout_id)[1:]
    assert re.search(r"^  group-2 +scheduled +\[\.+\]   0%  2 scheduled$", drawn[2], re.M), drawn
    assert blocks[-1].startswith("finished, 4/4 done")
    assert re.search(r"^  group-1 +finished +\[#+\] 100%  2 finished$", blocks[-1], re.M), out
    assert re.search(r"^  group-2 +finished +\[#+\] 100%  2 finished$", blocks[-1], re.M), out

    shown = cli(url, "rollouts", "show", str(rollout_id))
    assert shown.returncode == 0
    assert table_row(shown.stdout, "status") == ["status", "finished"]
    assert table_row(shown.stdout, "targets") == ["targets", "4", "in", "2", "groups"]
    assert table_row(shown.stdout, "progress") == ["progress", "4", "finished"]


def test_watch_ends_with_exit_code_3_when_the_rollout_pauses_on_failures(url):
    names = devices(url, "ro-b", 4)
    distribution_set = a_set(url, "ro-b-set")
    created = cli(url, "rollouts", "create", "ro-b", str(distribution_set["id"]),
                  "controllerId==ro-b-*", "--group", "50", "--group", "100",
                  "--error-threshold", "40", "--start")
    assert created.returncode == 0, created.stderr
    rollout_id = int(created.stdout)
    assert rollout_of(url, rollout_id)["status"] in ("starting", "running")
    first = wait_offered(url, names, 2)
    for name in first:
        install(url, name, "failure")
    watched = subprocess.run(
        [sys.executable, "-m", "ddi_lite", "--url", url, "rollouts", "show", str(rollout_id),
         "--watch", "--interval", "0.2"],
        env=live.clean_environment(DDI_LITE_PASSWORD="admin"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert watched.returncode == rollouts.WATCH_STOPPED_EXIT, watched.stderr
    last = watched.stdout.split("rollout %d ro-b: " % rollout_id)[-1]
    assert last.startswith("paused, 2/4 done")
    assert re.search(r"^  group-1 +error +\[x+\] 100%  2 error$", last, re.M), watched.stdout
    assert offered_to(url, names) == []  # group 2 never started

    resumed = cli(url, "rollouts", "resume", str(rollout_id))
    assert (resumed.returncode, resumed.stdout) == (0, "rollout %d resumed\n" % rollout_id)
    stopped = cli(url, "rollouts", "stop", str(rollout_id))
    assert stopped.returncode == 0, stopped.stderr
    wait_for_status(url, rollout_id, "stopped")
    again = cli(url, "rollouts", "start", str(rollout_id))
    assert again.returncode == 1
    assert again.stderr.startswith("ddi-lite: refused (HTTP 400): ")

    retried = cli(url, "rollouts", "retry", str(rollout_id))
    assert retried.returncode == 0, retried.stderr
    retry = rollout_of(url, int(retried.stdout))
    assert retry["totalTargets"] == 2  # the two that failed

    deleted = cli(url, "rollouts", "delete", str(rollout_id))
    assert (deleted.returncode, deleted.stdout) == (
        0, "rollout %d marked deleted (its actions stay)\n" % rollout_id)


def test_pause_and_approval_verbs_tell_what_happened_and_what_was_refused(url):
    devices(url, "ro-c", 2)
    distribution_set = a_set(url, "ro-c-set")
    rollout_id = int(cli(url, "rollouts", "create", "ro-c", str(distribution_set["id"]),
                         "controllerId==ro-c-*").stdout)
    shown = cli(url, "rollouts", "show", str(rollout_id))
    assert table_row(shown.stdout, "targets") == ["targets", "2", "in", "1", "group"]
    not_running = cli(url, "rollouts", "pause", str(rollout_id))
    assert not_running.returncode == 1
    assert not_running.stderr.startswith("ddi-lite: refused (HTTP 400): ")
    not_waiting = cli(url, "rollouts", "approve", str(rollout_id), "--remark", "ok")
    assert not_waiting.returncode == 1
    started = cli(url, "--json", "rollouts", "start", str(rollout_id))
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["status"] in ("starting", "running")
    wait_for_status(url, rollout_id, "running")
    paused = cli(url, "rollouts", "pause", str(rollout_id))
    assert (paused.returncode, paused.stdout) == (0, "rollout %d paused\n" % rollout_id)
    assert rollout_of(url, rollout_id)["status"] == "paused"

    missing = cli(url, "rollouts", "show", "999999")
    assert missing.returncode == 1 and "999999" in missing.stderr


def test_create_refuses_a_wrong_command_line_before_asking_the_server(url):
    for words, complaint in (
            (["--group", "0"], "more than 0"),
            (["--group", "ten"], "PERCENT[:QUERY]"),
            (["--forcetime", "5"], "--forcetime"),
            (["--groups", "2", "--group", "50"], "not allowed with"),
            (["--error-threshold", "101"], "between 0 and 100")):
        result = cli(url, "rollouts", "create", "ro-d", "1", "name==x", *words)
        assert result.returncode == 2, words
        assert complaint in result.stderr, (words, result.stderr)
    assert live.api(url, "GET", "/rollouts?q=name==ro-d")["total"] == 0


def test_create_reports_the_servers_refusals(url):
    devices(url, "ro-e", 1)
    unknown_set = cli(url, "rollouts", "create", "ro-e", "999999", "controllerId==ro-e-*")
    assert unknown_set.returncode == 1 and "999999" in unknown_set.stderr
    distribution_set = a_set(url, "ro-e-set")
    bad_query = cli(url, "rollouts", "create", "ro-e", str(distribution_set["id"]),
                    "controllerId=ro-e")
    assert bad_query.returncode == 1
    assert bad_query.stderr.startswith("ddi-lite: refused (HTTP 400): ")
    assert cli(url, "rollouts", "create", "ro-e", str(distribution_set["id"]),
               "controllerId==ro-e-*").returncode == 0
    taken = cli(url, "rollouts", "create", "ro-e", str(distribution_set["id"]),
                "controllerId==ro-e-*")
    assert taken.returncode == 1 and "(HTTP 409)" in taken.stderr


def test_create_with_start_prints_the_id_of_a_rollout_that_waits_for_approval(url):
    # `ROLLOUT=$(ddi-lite rollouts create ... --start)` must still learn the rollout's id when
    # it cannot start: the rollout exists, and the operator approves, starts or deletes it.
    devices(url, "ro-f", 1)
    distribution_set = a_set(url, "ro-f-set")
    live.api(url, "PUT", "/system/configs/rollout.approval.enabled", {"value": True})
    try:
        result = cli(url, "rollouts", "create", "ro-f", str(distribution_set["id"]),
                     "controllerId==ro-f-*", "--start")
    finally:
        live.api(url, "PUT", "/system/configs/rollout.approval.enabled", {"value": False})
    rollout = live.api(url, "GET", "/rollouts?q=name==ro-f")["content"][0]
    assert rollout["status"] == "waiting_for_approval"
    assert (result.returncode, result.stdout) == (1, "%d\n" % rollout["id"])
    assert result.stderr == ("ddi-lite: rollout %d was created but not started: it waits for "
                             "approval (rollout.approval.enabled); approve it, then start "
                             "it\n" % rollout["id"])


def group(name, total, **counts):
    return {"name": name, "status": "running", "totalTargets": total,
            "totalTargetsPerStatus": counts}


@pytest.mark.parametrize("counts, bar", [
    ({}, "[..........]"),
    ({"finished": 5}, "[#####.....]"),
    ({"finished": 9, "error": 1}, "[#########x]"),
    ({"error": 1}, "[x.........]"),          # one failure of 100 still shows
    ({"finished": 99, "error": 1}, "[#########x]"),
    ({"error": 100}, "[xxxxxxxxxx]"),
])
def test_a_group_bar_shows_finished_as_hash_and_failed_as_x(counts, bar):
    total = 10 if sum(counts.values()) <= 10 and counts != {"error": 1} else 100
    assert rollouts.group_bar(group("g", total, **counts), 10) == bar


def test_group_lines_show_the_counts_and_shrink_on_a_narrow_terminal():
    groups = [group("group-1", 50, finished=20, error=2, running=28),
              group("canary", 5, finished=5)]
    wide = rollouts.group_lines(groups, 100)
    assert re.match(r"group-1  running   \[#{15}x\.{23}\]", wide[0])  # 39 wide
    assert wide[0].endswith("]  44%  20 finished, 2 error, 28 running")
    assert wide[1].endswith("] 100%  5 finished")
    assert all(len(line) <= 99 for line in wide)
    narrow = rollouts.group_lines(groups, 50)
    assert all(len(line) <= 49 for line in narrow)
    assert narrow[0].endswith("]  44%  22/50")
    assert rollouts.group_lines(groups, 38)[0].endswith("]  44%")
