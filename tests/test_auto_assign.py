"""Auto-assignment (storage/autoassign.py): a target filter's set goes to each matching target
that never had an action for it, through the same rule as a manual assignment; runs read only
the targets changed since the filter's last run; the scheduler thread runs when a target
registers or reports attributes; a crash loses at most a whole batch; an older database
gets the tables on its first open.

In-process runs call `autoassign.run(now)` directly; the scheduler thread is started only
where it is under test. The end of the module kills real server processes (SIGKILL) during
and after runs.
"""

import logging
import os
import sqlite3
import threading
import time

import pytest

import database
import live
import storage
from conftest import DEVICE, now_ms, token
from storage import assignments, autoassign
from storage import transitions as t
from storage.models import Action, Target, TargetChange, TargetFilter

API = "/rest/v1"
ADMIN = ("Basic", ("admin", "admin"))
GATEWAY = {"authentication.gatewaytoken.enabled": True,
           "authentication.gatewaytoken.key": "gw"}
CRASH_AT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stress", "crash_at.py")


@pytest.fixture
def http(server):
    server.http.set_authorization(ADMIN)
    return server.http


def a_set(server, name="fw-set"):
    return server.distribution_set([server.module(name=name)], name=name)


def auto_assigning(http, distribution_set, query="controllerId==dev-*", name="devs", **options):
    """A filter with `query` that auto-assigns `distribution_set`; its id."""
    filter_id = http.post_json(API + "/targetfilters", {"name": name, "query": query}).json["id"]
    http.post_json(API + "/targetfilters/%d/autoAssignDS" % filter_id,
                   dict(options, id=distribution_set.id))
    return filter_id


def actions_for(controller_id, distribution_set):
    return list(Action.select().join(Target).where(
        (Target.controller_id == controller_id)
        & (Action.distribution_set == distribution_set.id)).order_by(Action.id))


def history(http, controller_id, action):
    return http.get(API + "/targets/%s/actions/%d/status?sort=id:ASC"
                    % (controller_id, action.id)).json["content"]


def put_attributes(http, controller_id, data, headers=None):
    http.put_json(DEVICE + "/%s/configData" % controller_id, {"data": data, "mode": "merge"},
                  headers=headers or token("token-" + controller_id.split("-")[-1]))


# --- what is assigned, and how ----------------------------------------------------------------

def test_a_run_assigns_the_set_to_every_matching_target_as_the_filter_says(http, server):
    for number in (1, 2, 3):
        server.target("dev-%d" % number, "token-%d" % number)
    server.target("other-1", "token-o")
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set, type="soft", weight=200)
    assert autoassign.run(now_ms()) == 3
    for number in (1, 2, 3):
        [action] = actions_for("dev-%d" % number, distribution_set)
        assert (action.action_type, action.weight, action.status, action.active) == \
            (t.SOFT, 200, t.RUNNING, True)
        assert action.initiated_by == "admin"
        first = history(http, "dev-%d" % number, action)[0]
        assert first["messages"] == ["Auto assignment by target filter: devs"]
        target = http.get(API + "/targets/dev-%d" % number).json
        assert target["updateStatus"] == "pending"
    assert actions_for("other-1", distribution_set) == []
    assert autoassign.run(now_ms()) == 0


def test_the_device_is_offered_the_auto_assigned_deployment(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set)
    autoassign.run(now_ms())
    [action] = actions_for("dev-1", distribution_set)
    poll = http.get(DEVICE + "/dev-1", headers=token()).json
    assert poll["_links"]["deploymentBase"]["href"].split("?")[0].endswith(
        "/deploymentBase/%d" % action.id)


def feedback(http, action, execution, finished):
    http.post_json(DEVICE + "/dev-1/deploymentBase/%d/feedback" % action.id, {
        "status": {"execution": execution, "result": {"finished": finished}}},
        headers=token())


@pytest.mark.parametrize("history_so_far", ["running", "finished", "failed", "cancelled",
                                            "offline"])
def test_a_target_that_ever_had_an_action_for_the_set_never_gets_it_again(http, server,
                                                                          history_so_far):
    """Whatever became of the target's earlier action for the set, auto-assignment leaves the
    target alone: also when a manual assignment would create a new action (after a failure
    or a cancellation the set is no longer assigned)."""
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    if history_so_far == "offline":
        http.post_json(API + "/distributionsets/%d/assignedTargets?offline=true"
                       % distribution_set.id, [{"id": "dev-1"}])
    else:
        action = server.assign(distribution_set, "dev-1")
    if history_so_far == "finished":
        feedback(http, action, "closed", "success")
    elif history_so_far == "failed":
        feedback(http, action, "closed", "failure")
    elif history_so_far == "cancelled":
        http.delete(API + "/targets/dev-1/actions/%d?force=true" % action.id, status=405)
        http.delete(API + "/targets/dev-1/actions/%d" % action.id)
        http.delete(API + "/targets/dev-1/actions/%d?force=true" % action.id)
    before = actions_for("dev-1", distribution_set)
    assert [a.active for a in before] == [history_so_far == "running"]
    put_attributes(http, "dev-1", {"rev": "2"})  # a change: the target is looked at again
    auto_assigning(http, distribution_set)
    assert autoassign.run(now_ms()) == 0
    assert actions_for("dev-1", distribution_set) == before


def test_a_target_running_another_set_gets_the_new_one_as_by_a_manual_assignment(http,
                                                                                   server):
    server.target("dev-1", "token-1")
    old, new = a_set(server, "old"), a_set(server, "new")
    running = server.assign(old, "dev-1")
    auto_assigning(http, new)
    autoassign.run(now_ms())
    assert Action.get_by_id(running.id).status == t.CANCELING
    assert http.get(API + "/targets/dev-1/assignedDS").json["name"] == "new"


def test_confirmation_required_makes_the_actions_wait_for_the_device(http, server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    server.target("dev-1", "token-1")
    server.target("dev-2", "token-2")
    waiting, direct = a_set(server, "waiting"), a_set(server, "direct")
    auto_assigning(http, waiting, query="controllerId==dev-1", name="waits",
                   confirmationRequired=True)
    auto_assigning(http, direct, query="controllerId==dev-2", name="goes",
                   confirmationRequired=False)
    autoassign.run(now_ms())
    assert actions_for("dev-1", waiting)[0].status == t.WAIT_FOR_CONFIRMATION
    assert actions_for("dev-2", direct)[0].status == t.RUNNING


def test_the_weight_and_downloadonly_reach_the_action(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set, type="downloadonly", weight=7)
    autoassign.run(now_ms())
    action = http.get(API + "/targets/dev-1/actions").json["content"][0]
    assert (action["forceType"], action["weight"]) == ("downloadonly", 7)


def test_a_filter_without_a_set_or_removed_assigns_nothing(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    filter_id = auto_assigning(http, distribution_set)
    http.delete(API + "/targetfilters/%d/autoAssignDS" % filter_id)
    http.post_json(API + "/targetfilters", {"name": "plain", "query": "name==*"})
    assert autoassign.run(now_ms()) == 0


def test_an_incomplete_set_is_skipped_and_reported_once(http, server, caplog):
    server.configure(**{"implicit.lock.enabled": False})
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    filter_id = auto_assigning(http, distribution_set)
    module_id = distribution_set_module(http, distribution_set)
    http.delete(API + "/distributionsets/%d/assignedSM/%d" % (distribution_set.id, module_id))
    with caplog.at_level(logging.WARNING, logger="ddi-lite"):
        assert autoassign.run(now_ms()) == 0
        assert autoassign.run(now_ms()) == 0
    assert [r.getMessage() for r in caplog.records].count(
        "auto-assignment of target filter %d skipped: Distribution set %d lacks a mandatory "
        "software module." % (filter_id, distribution_set.id)) == 1
    assert TargetFilter.get_by_id(filter_id).checked_change == 0  # nothing is skipped for good
    http.post_json(API + "/distributionsets/%d/assignedSM" % distribution_set.id,
                   [{"id": module_id}], status=204)
    assert autoassign.run(now_ms()) == 1


def distribution_set_module(http, distribution_set):
    return http.get(API + "/distributionsets/%d" % distribution_set.id).json["modules"][0]["id"]


# --- which targets a run reads ----------------------------------------------------------------

@pytest.fixture
def windows(monkeypatch):
    """The (start, end] change windows runs read targets from."""
    seen = []
    read = autoassign._unassigned_matches

    def recording(target_filter, distribution_set, start, end, now):
        seen.append((start, end))
        return read(target_filter, distribution_set, start, end, now)
    monkeypatch.setattr(autoassign, "_unassigned_matches", recording)
    return seen


def test_a_run_reads_only_the_targets_changed_since_the_last(http, server, windows):
    for number in range(450):
        server.target("dev-%03d" % number, "t%d" % number)
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set, query="attribute.channel==nightly")
    assert autoassign.run(now_ms()) == 0
    assert windows == [(0, 200), (200, 400), (400, 450)]  # the first, full pass: in batches
    del windows[:]
    assert autoassign.run(now_ms()) == 0
    assert windows == []  # nothing changed: no target read
    put_attributes(http, "dev-007", {"channel": "nightly"}, headers=token("t7"))
    assert autoassign.run(now_ms()) == 1
    assert windows == [(450, 451)]
    assert actions_for("dev-007", distribution_set)[0].distribution_set_id == \
        distribution_set.id


def test_a_poll_is_no_change_and_registration_metadata_and_renames_are(http, server):
    server.configure(**GATEWAY)
    server.target("dev-1", "token-1")
    newest = autoassign.newest_change()
    http.get(DEVICE + "/dev-1", headers=token())  # first poll: unknown -> registered
    assert autoassign.newest_change() == newest + 1
    storage.ddi.poll_log.flush()
    for _ in range(3):
        http.get(DEVICE + "/dev-1", headers=token())
    storage.ddi.poll_log.flush()
    assert autoassign.newest_change() == newest + 1
    http.get(DEVICE + "/dev-new", headers={"Authorization": "GatewayToken gw"})
    http.post_json(API + "/targets/dev-1/metadata", [{"key": "room", "value": "lab"}],
                   status=201)
    http.put_json(API + "/targets/dev-1", {"name": "renamed"})
    assert autoassign.newest_change() == newest + 4
    # One row per target, with its newest change number.
    assert [row.target.controller_id for row in TargetChange.select().order_by(
        TargetChange.seq.desc())] == ["dev-1", "dev-new"]


def test_metadata_a_query_names_is_seen_by_the_next_run(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set, query="metadata.room==lab")
    assert autoassign.run(now_ms()) == 0
    http.post_json(API + "/targets/dev-1/metadata", [{"key": "room", "value": "lab"}],
                   status=201)
    assert autoassign.run(now_ms()) == 1


def test_tagging_a_target_is_a_change_a_tag_query_sees(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    auto_assigning(http, distribution_set, query="tag==line-3")
    assert autoassign.run(now_ms()) == 0
    tag_id = http.post_json(API + "/targettags", [{"name": "line-3"}], status=201).json[0]["id"]
    http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1"])
    assert autoassign.run(now_ms()) == 1


def test_a_target_whose_type_cannot_take_the_set_is_left_until_its_type_can(http, server):
    set_types = {item["key"]: item["id"] for item in http.get(
        API + "/distributionsettypes").json["content"]}
    only_os = http.post_json(API + "/targettypes", [{
        "name": "os only", "compatibledistributionsettypes": [{"id": set_types["os"]}]}],
        status=201).json[0]["id"]
    server.target("dev-1", "token-1")
    server.target("dev-2", "token-2")
    http.put_json(API + "/targets/dev-1", {"targetType": only_os})
    distribution_set = a_set(server)  # of type os_app
    auto_assigning(http, distribution_set)
    assert autoassign.run(now_ms()) == 1
    assert (actions_for("dev-1", distribution_set), len(actions_for("dev-2", distribution_set))) \
        == ([], 1)
    http.put_json(API + "/targets/dev-1", {"targetType": -1})  # no type: takes any set
    assert autoassign.run(now_ms()) == 1


def test_a_new_query_checks_every_target_again(http, server):
    server.target("dev-1", "token-1")
    distribution_set = a_set(server)
    filter_id = auto_assigning(http, distribution_set, query="name==nobody")
    assert autoassign.run(now_ms()) == 0
    http.put_json(API + "/targetfilters/%d" % filter_id, {"query": "name==dev-1"})
    assert autoassign.run(now_ms()) == 1


def test_the_full_pass_catches_what_change_numbers_cannot_see(http, server, windows):
    """A query on the poll time: polls move no change number, the full pass finds them."""
    server.target("dev-1", "token-1")
    http.get(DEVICE + "/dev-1", headers=token())  # registers
    storage.ddi.poll_log.flush()
    first_poll = Target.get(Target.controller_id == "dev-1").last_target_query
    distribution_set = a_set(server)
    filter_id = auto_assigning(http, distribution_set,
                               query="lastControllerRequestAt=gt=%d" % first_poll)
    assert autoassign.run(now_ms(), full_pass_hours=24) == 0
    time.sleep(0.01)
    http.get(DEVICE + "/dev-1", headers=token())  # a later poll: no change number
    storage.ddi.poll_log.flush()
    started = TargetFilter.get_by_id(filter_id).full_pass_at
    assert autoassign.run(started + 23 * 3600 * 1000, full_pass_hours=24) == 0
    del windows[:]
    assert autoassign.run(started + 24 * 3600 * 1000, full_pass_hours=24) == 1
    assert windows[0][0] == 0
    assert autoassign.run(started + 25 * 3600 * 1000, full_pass_hours=0) == 0


# --- restarts and the scheduler -------------------------------------------------------------

def test_a_batch_that_fails_leaves_nothing_and_the_next_run_does_it_once(http, server,
                                                                         monkeypatch):
    for number in range(5):
        server.target("dev-%d" % number, "token-%d" % number)
    distribution_set = a_set(server)
    filter_id = auto_assigning(http, distribution_set)
    assign, calls = assignments.assign, []

    def failing_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return assign(*args, **kwargs)
    monkeypatch.setattr(assignments, "assign", failing_third)
    with pytest.raises(RuntimeError):
        autoassign.run(now_ms())
    assert Action.select().count() == 0
    assert TargetFilter.get_by_id(filter_id).checked_change == 0
    monkeypatch.setattr(assignments, "assign", assign)
    assert autoassign.run(now_ms()) == 5
    assert [len(actions_for("dev-%d" % n, distribution_set)) for n in range(5)] == [1] * 5


def test_a_stopping_run_stops_between_batches(http, server):
    server.target("dev-1", "token-1")
    auto_assigning(http, a_set(server))
    assert autoassign.run(now_ms(), stopping=lambda: True) == 0
    assert autoassign.run(now_ms()) == 1


def wait_for_actions(distribution_set, count, timeout=5.0):
    return live.wait_until(
        lambda: Action.select().where(Action.distribution_set == distribution_set.id).count()
        >= count, timeout, "%d actions of set %d" % (count, distribution_set.id))


def test_registration_and_attributes_wake_the_scheduler_at_once(http, server):
    server.configure(**GATEWAY)
    registering, reporting = a_set(server, "registering"), a_set(server, "reporting")
    auto_assigning(http, registering, query="controllerId==new-*", name="new")
    auto_assigning(http, reporting, query="attribute.hw==3", name="hw3")
    autoassign.scheduler.start(interval=3600, full_pass_hours=0)  # no timed run in this test
    try:
        started = time.monotonic()
        http.get(DEVICE + "/new-1", headers={"Authorization": "GatewayToken gw"})
        wait_for_actions(registering, 1)
        put_attributes(http, "new-1", {"hw": "3"}, headers={"Authorization": "GatewayToken gw"})
        wait_for_actions(reporting, 1)
        assert time.monotonic() - started < 5
    finally:
        autoassign.scheduler.stop()
    assert not any(thread.name == "auto-assign" for thread in threading.enumerate())


def test_close_store_stops_the_scheduler(server):
    autoassign.scheduler.start(interval=3600, full_pass_hours=0)
    storage.close_store()
    assert not any(thread.name == "auto-assign" for thread in threading.enumerate())


# --- an old database ----------------------------------------------------------------------------

# The schema version before target filters: their step upgrades from it.
BEFORE_FILTERS = storage.MIGRATIONS.index(autoassign.add_target_filters) + 1
TRIGGER_NAMES = autoassign.TRIGGER_NAMES


def downgrade_to_the_schema_before_filters(path):
    """The database as the schema before target filters had it: without the target filter
    tables, their triggers and the action index."""
    db = sqlite3.connect(path)
    for name in TRIGGER_NAMES:
        db.execute('DROP TRIGGER "%s"' % name)
    db.execute('DROP INDEX "action_target_id_distribution_set_id"')
    db.execute('DROP TABLE "target_filter"')
    db.execute('DROP TABLE "target_change"')
    db.execute("PRAGMA user_version = %d" % BEFORE_FILTERS)
    db.commit()
    db.close()


@database.sqlite_only("a database file from before target filters; PostgreSQL starts at schema 5")
def test_an_older_database_gets_target_filters_on_its_first_open(config):
    from conftest import Server
    server = Server(config)
    server.target("dev-1", "token-1")
    server.target("dev-2", "token-2")
    old = a_set(server, "old")
    server.assign(old, "dev-1")
    storage.close_store()
    path = os.path.join(config["server", "data_dir"], storage.DATABASE_FILE)
    downgrade_to_the_schema_before_filters(path)
    assert sqlite3.connect(path).execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'target_filter'").fetchone() == (0,)

    server = Server(config)
    try:
        db = storage.db.database
        assert db.execute_sql("PRAGMA user_version").fetchone()[0] == storage.SCHEMA_VERSION
        assert [row.target.controller_id for row in TargetChange.select().order_by(
            TargetChange.seq)] == ["dev-1", "dev-2"]
        triggers = {name for (name,) in db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}
        assert set(TRIGGER_NAMES) <= triggers
        server.http.set_authorization(ADMIN)
        auto_assigning(server.http, old)
        assert autoassign.run(now_ms()) == 1  # dev-2: dev-1 had its action already
        assert len(actions_for("dev-1", old)) == 1
        server.target("dev-3", "token-3")  # the triggers work
        assert autoassign.run(now_ms()) == 1
    finally:
        storage.close_store()


# --- real processes killed during and after a run -----------------------------------------------

TARGETS = 300  # more than one batch


def serve(directory, entry=("-m", "ddi_lite")):
    return live.DdiLite(directory, entry=entry,
                        config_lines=["[scheduler]", "auto_assign_interval = 1"])


def prepare(url):
    """300 targets, a complete set and a filter for all of them: the filter's id and set."""
    live.api(url, "POST", "/targets", [{"controllerId": "dev-%03d" % n} for n in range(TARGETS)])
    module = live.api(url, "POST", "/softwaremodules",
                      [{"name": "fw", "version": "1", "type": "os"}])[0]
    distribution_set = live.api(url, "POST", "/distributionsets", [{
        "name": "fw", "version": "1", "type": "os", "modules": [{"id": module["id"]}]}])[0]
    target_filter = live.api(url, "POST", "/targetfilters",
                             {"name": "all", "query": "controllerId==dev-*"})
    return target_filter["id"], distribution_set["id"]


def set_actions(url, set_id):
    page = live.api(url, "GET", "/actions?limit=500&q=distributionSet.id==%d" % set_id)
    return [action["_links"]["self"]["href"].split("/targets/")[1].split("/")[0]
            for action in page["content"]]


def crash_while_assigning(directory, step):
    """A server that kills itself at `step` of the first auto-assignment run."""
    crashing = serve(directory, entry=(CRASH_AT, step))
    try:
        filter_id, set_id = prepare(crashing.url)
        try:
            live.api(crashing.url, "POST", "/targetfilters/%d/autoAssignDS" % filter_id,
                     {"id": set_id})
        except OSError:
            pass  # the run may kill the process before the answer leaves
        crashing.process.wait(15)
        assert crashing.process.returncode == -9, crashing.log()
    finally:
        crashing.stop()
    return set_id


@pytest.mark.parametrize("step", ["auto-assign-mid-batch", "auto-assign-after-batch"])
def test_kill_during_a_run_then_restarts_assign_each_target_exactly_once(tmp_path, step):
    directory = tmp_path / "server"
    set_id = crash_while_assigning(directory, step)
    server = serve(directory)
    try:
        live.wait_until(lambda: len(set_actions(server.url, set_id)) >= TARGETS, 15,
                        "every target assigned after the restart", on_timeout=server.log)
    finally:
        server.process.kill()  # kill -9 again, after the run
        server.process.wait(10)
    server = serve(directory)
    try:
        time.sleep(2.5)  # the run at start and two timed runs
        assigned = set_actions(server.url, set_id)
        assert sorted(assigned) == ["dev-%03d" % n for n in range(TARGETS)], server.log()
    finally:
        server.stop()
