"""The rollout engine (storage/rollout_engine.py): groups start one after the other by their
success threshold, a group over its error threshold pauses the rollout, a resume goes on with
the next group, the rollout finishes when every group is done; what devices see of it (nothing
before their group starts, their deployment on the next poll after); what a group's start does
to a target's earlier open action; startAt; the confirmation flow; and the restart rules: a
move is never made twice.

In-process tests drive the engine with `rollout_engine.evaluate(now)`; the scheduler thread is
started only where it is under test. Real server processes killed with SIGKILL at several
points of a rollout are in tests/test_rollout_restart.py.
"""

import time

import pytest

from conftest import DEVICE, now_ms, token
from mgmt import API
from storage import rollout_engine
from storage import transitions as t
from storage.db import write
from storage.models import Action, ActionStatus, DistributionSet, Rollout, RolloutGroup



def create(server, **fields):
    body = {"name": "wave", "distributionSetId": server.set.id,
            "targetFilterQuery": "controllerId==dev-*", "amountGroups": 2}
    body.update(fields)
    return server.http.post_json(API + "/rollouts", body, status=201).json["id"]


def started(server, **fields):
    rollout_id = create(server, **fields)
    server.http.post(API + "/rollouts/%d/start" % rollout_id, status=204)
    evaluate()
    return rollout_id


def evaluate(now=None):
    return rollout_engine.evaluate(now if now is not None else now_ms())


def status(server, rollout_id):
    return server.http.get(API + "/rollouts/%d" % rollout_id).json["status"]


def group_statuses(server, rollout_id):
    page = server.http.get(API + "/rollouts/%d/deploygroups" % rollout_id).json
    return [group["status"] for group in page["content"]]


def members(rollout_id, index):
    """[(controller id, action id)] of group `index` (0-based), in order."""
    group = (RolloutGroup.select().where(RolloutGroup.rollout == rollout_id)
             .order_by(RolloutGroup.id))[index]
    return [(action.target.controller_id, action.id) for action in Action.select().where(
        Action.rollout_group == group.id).order_by(Action.id)]


def poll(server, controller_id):
    return server.http.get(DEVICE + "/" + controller_id,
                           headers=token("token-" + controller_id.split("-")[1])).json


def report(server, controller_id, action_id, finished="success", execution="closed"):
    server.http.post_json(
        DEVICE + "/%s/deploymentBase/%d/feedback" % (controller_id, action_id),
        {"status": {"execution": execution, "result": {"finished": finished}}},
        headers=token("token-" + controller_id.split("-")[1]), status=200)


def report_all(server, group, outcomes):
    """The group's devices report `outcomes` in turn ("success"/"failure"), one per device."""
    for (controller_id, action_id), finished in zip(group, outcomes):
        report(server, controller_id, action_id, finished)


# --- what devices see ----------------------------------------------------------------------------

def test_a_device_in_a_group_that_has_not_started_sees_nothing(fleet):
    rollout_id = create(fleet)
    for controller_id, _ in members(rollout_id, 0) + members(rollout_id, 1):
        assert "deploymentBase" not in poll(fleet, controller_id)["_links"]
    fleet.http.post(API + "/rollouts/%d/start" % rollout_id, status=204)
    for controller_id, _ in members(rollout_id, 0):
        assert "deploymentBase" not in poll(fleet, controller_id)["_links"]  # still STARTING
    evaluate()
    for controller_id, action_id in members(rollout_id, 0):
        links = poll(fleet, controller_id)["_links"]
        assert "/deploymentBase/%d?" % action_id in links["deploymentBase"]["href"]
    for controller_id, _ in members(rollout_id, 1):
        assert "deploymentBase" not in poll(fleet, controller_id)["_links"]


def test_a_scheduled_action_is_not_served_by_id_either(fleet):
    rollout_id = create(fleet)
    controller_id, action_id = members(rollout_id, 0)[0]
    fleet.http.get(DEVICE + "/%s/deploymentBase/%d" % (controller_id, action_id),
                   headers=token("token-" + controller_id.split("-")[1]), status=404)


def test_a_started_group_assigns_the_set_and_marks_targets_pending(fleet):
    rollout_id = started(fleet)
    controller_id, action_id = members(rollout_id, 0)[0]
    target = fleet.http.get(API + "/targets/" + controller_id).json
    assert target["updateStatus"] == "pending"
    assert fleet.http.get(API + "/targets/%s/assignedDS" % controller_id).json["id"] == \
        fleet.set.id
    history = fleet.http.get(API + "/targets/%s/actions/%d/status?sort=id:ASC"
                             % (controller_id, action_id)).json["content"]
    assert [entry["type"] for entry in history] == ["scheduled", "running"]
    assert "rollout 'wave', group 'group-1'" in history[1]["messages"][0]
    idle = members(rollout_id, 1)[0][0]
    assert fleet.http.get(API + "/targets/" + idle).json["updateStatus"] == "unknown"
    fleet.http.get(API + "/targets/%s/assignedDS" % idle, status=204)


# --- thresholds ----------------------------------------------------------------------------------

def test_the_next_group_starts_when_the_success_threshold_is_reached(fleet):
    rollout_id = started(fleet)
    first = members(rollout_id, 0)
    report_all(fleet, first[:2], ["success"] * 2)  # 2 of 5: 40 % < 50 %
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["running", "scheduled"]
    report_all(fleet, first[2:3], ["success"])     # 3 of 5: 60 %
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["running", "running"]
    assert status(fleet, rollout_id) == "running"


def test_the_rollout_pauses_when_the_error_threshold_is_exceeded(fleet):
    rollout_id = started(fleet)
    first = members(rollout_id, 0)
    report_all(fleet, first[:2], ["failure"] * 2)  # 40 %: not over 50 %
    evaluate()
    assert status(fleet, rollout_id) == "running"
    report_all(fleet, first[2:3], ["failure"])     # 60 %
    evaluate()
    assert status(fleet, rollout_id) == "paused"
    assert group_statuses(fleet, rollout_id) == ["error", "scheduled"]
    counts = fleet.http.get(API + "/rollouts/%d" % rollout_id).json["totalTargetsPerStatus"]
    assert (counts["error"], counts["running"], counts["scheduled"]) == (3, 2, 5)
    evaluate()
    assert status(fleet, rollout_id) == "paused"  # no evaluation resumes it


def test_resume_after_an_error_pause_goes_on_with_the_next_group(fleet):
    rollout_id = started(fleet)
    report_all(fleet, members(rollout_id, 0), ["failure"] * 3)
    evaluate()
    fleet.http.post(API + "/rollouts/%d/resume" % rollout_id, status=204)
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["error", "running"]
    for controller_id, _ in members(rollout_id, 1):
        assert "deploymentBase" in poll(fleet, controller_id)["_links"]


def test_an_error_threshold_of_zero_pauses_at_the_first_failure(fleet):
    rollout_id = started(fleet, errorCondition={"condition": "THRESHOLD", "expression": "0"})
    report(fleet, *members(rollout_id, 0)[0], finished="failure")
    evaluate()
    assert status(fleet, rollout_id) == "paused"


def test_the_rollout_finishes_when_every_group_is_done(fleet):
    rollout_id = started(fleet)
    report_all(fleet, members(rollout_id, 0), ["success"] * 5)
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["finished", "running"]
    report_all(fleet, members(rollout_id, 1), ["success"] * 4 + ["failure"])
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["finished", "finished"]
    assert status(fleet, rollout_id) == "finished"
    counts = fleet.http.get(API + "/rollouts/%d" % rollout_id).json["totalTargetsPerStatus"]
    assert (counts["finished"], counts["error"]) == (9, 1)


def test_a_group_closed_below_its_success_threshold_pauses_the_rollout(fleet):
    rollout_id = started(fleet, successCondition={"condition": "THRESHOLD", "expression": "100"},
                         errorCondition={"condition": "THRESHOLD", "expression": "50"})
    report_all(fleet, members(rollout_id, 0), ["success"] * 4 + ["failure"])  # 80 %, 20 %
    evaluate()
    assert status(fleet, rollout_id) == "paused"
    assert group_statuses(fleet, rollout_id) == ["error", "scheduled"]


def test_a_running_rollout_with_open_actions_in_an_error_group_is_not_finished(fleet):
    rollout_id = started(fleet, amountGroups=1)
    first = members(rollout_id, 0)
    report_all(fleet, first[:6], ["failure"] * 6)
    evaluate()
    fleet.http.post(API + "/rollouts/%d/resume" % rollout_id, status=204)
    evaluate()
    assert status(fleet, rollout_id) == "running"  # four devices still at work
    report_all(fleet, first[6:], ["success"] * 4)
    evaluate()
    assert status(fleet, rollout_id) == "finished"


def test_more_groups_than_targets_leaves_empty_groups_that_pass_at_once(fleet):
    rollout_id = started(fleet, amountGroups=12)
    totals = [g["totalTargets"] for g in fleet.http.get(
        API + "/rollouts/%d/deploygroups" % rollout_id).json["content"]]
    assert totals == [1] * 10 + [0, 0]
    for index in range(10):
        report_all(fleet, members(rollout_id, index), ["success"])
        evaluate()
    assert group_statuses(fleet, rollout_id) == ["finished"] * 12
    assert status(fleet, rollout_id) == "finished"


def test_an_operator_pause_holds_the_next_group(fleet):
    rollout_id = started(fleet)
    fleet.http.post(API + "/rollouts/%d/pause" % rollout_id, status=204)
    report_all(fleet, members(rollout_id, 0), ["success"] * 5)
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["running", "scheduled"]
    fleet.http.post(API + "/rollouts/%d/resume" % rollout_id, status=204)
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["finished", "running"]


def test_download_only_counts_downloaded_as_success(fleet):
    rollout_id = started(fleet, type="downloadonly")
    for controller_id, action_id in members(rollout_id, 0)[:3]:
        report(fleet, controller_id, action_id, finished="none", execution="downloaded")
    evaluate()
    assert group_statuses(fleet, rollout_id) == ["running", "running"]


# --- what a start does to other actions ----------------------------------------------------------

def test_a_group_start_supersedes_the_targets_earlier_open_action(fleet):
    older = fleet.assign(fleet.distribution_set([fleet.module(name="old")], name="old"), "dev-0")
    rollout_id = started(fleet, amountGroups=1)
    assert Action.get_by_id(older.id).status == t.CANCELING
    fleet.configure(**{"repository.actions.autoclose.enabled": True})
    oldest = fleet.assign(fleet.distribution_set([fleet.module(name="older")], name="older"),
                          "dev-1")
    retry_id = create(fleet, name="second", amountGroups=1)
    fleet.http.post(API + "/rollouts/%d/start" % retry_id, status=204)
    evaluate()
    assert Action.get_by_id(oldest.id).status == t.CANCELED
    assert Action.get_by_id(oldest.id).active is False
    assert rollout_id != retry_id


def test_a_migration_step_action_is_not_superseded(fleet):
    step_set = fleet.distribution_set([fleet.module(name="step")], name="step")
    fleet.http.put_json(API + "/distributionsets/%d" % step_set.id,
                        {"requiredMigrationStep": True})
    older = fleet.assign(DistributionSet.get_by_id(step_set.id), "dev-0")  # as it is now
    started(fleet, amountGroups=1)
    assert Action.get_by_id(older.id).status == t.RUNNING


def test_with_the_confirmation_flow_actions_wait_for_the_device(fleet):
    fleet.configure(**{"user.confirmation.flow.enabled": True})
    fleet.http.post_json(API + "/targets/dev-1/autoConfirm/activate", {}, status=204)
    rollout_id = started(fleet, amountGroups=1)
    by_target = {action.target.controller_id: action.status for action in
                 Action.select().where(Action.rollout == rollout_id)}
    assert by_target["dev-0"] == t.WAIT_FOR_CONFIRMATION
    assert by_target["dev-1"] == t.RUNNING


def test_the_set_is_locked_when_the_first_group_starts(fleet):
    rollout_id = create(fleet)
    assert fleet.http.get(API + "/distributionsets/%d" % fleet.set.id).json["locked"] is False
    fleet.http.post(API + "/rollouts/%d/start" % rollout_id, status=204)
    evaluate()
    assert fleet.http.get(API + "/distributionsets/%d" % fleet.set.id).json["locked"] is True


def test_a_set_deleted_before_the_next_group_stops_the_rollout(fleet):
    rollout_id = started(fleet)
    fleet.http.delete(API + "/distributionsets/%d" % fleet.set.id, status=204)
    report_all(fleet, members(rollout_id, 0), ["success"] * 3)
    evaluate()
    assert status(fleet, rollout_id) == "stopped"
    for controller_id, _ in members(rollout_id, 1):
        assert "deploymentBase" not in poll(fleet, controller_id)["_links"]
    counts = fleet.http.get(API + "/rollouts/%d" % rollout_id).json["totalTargetsPerStatus"]
    assert (counts["cancelled"], counts["scheduled"]) == (5, 0)


# --- startAt -------------------------------------------------------------------------------------

def test_start_at_starts_the_rollout_when_its_time_comes(fleet):
    at = now_ms() + 60000
    rollout_id = create(fleet, startAt=at)
    evaluate(at - 1)
    assert status(fleet, rollout_id) == "ready"
    evaluate(at)
    assert status(fleet, rollout_id) == "running"
    assert group_statuses(fleet, rollout_id) == ["running", "scheduled"]


def test_start_at_does_not_start_a_rollout_waiting_for_approval(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    rollout_id = create(fleet, startAt=1)
    evaluate()
    assert status(fleet, rollout_id) == "waiting_for_approval"
    fleet.http.post(API + "/rollouts/%d/approve" % rollout_id, status=204)
    evaluate()
    assert status(fleet, rollout_id) == "running"


# --- moves are made once -------------------------------------------------------------------------

def test_starting_a_group_twice_does_nothing_the_second_time(fleet):
    rollout_id = started(fleet)
    group = RolloutGroup.select().where(RolloutGroup.rollout == rollout_id).order_by(
        RolloutGroup.id).first()
    entries = ActionStatus.select().count()
    with write():
        assert rollout_engine.start_group(Rollout.get_by_id(rollout_id), group, now_ms()) is False
    assert ActionStatus.select().count() == entries


def test_evaluating_again_changes_nothing(fleet):
    rollout_id = started(fleet)
    assert evaluate() == 0
    assert group_statuses(fleet, rollout_id) == ["running", "scheduled"]
    assert Action.select().where((Action.rollout == rollout_id) & Action.active).count() == 5


def test_every_move_names_the_status_it_expects(fleet):
    rollout_id = create(fleet)
    with write():
        assert rollout_engine.move(rollout_id, "pause", now_ms(), "x") is False
        assert rollout_engine.move(rollout_id, "start", now_ms(), "x") is True
        assert rollout_engine.move(rollout_id, "start", now_ms(), "x") is False
    assert status(fleet, rollout_id) == "starting"


def test_a_failed_group_start_leaves_nothing_started(fleet, monkeypatch):
    rollout_id = create(fleet)
    fleet.http.post(API + "/rollouts/%d/start" % rollout_id, status=204)
    original = rollout_engine.apply_event_to_many

    def failing(action_ids, *args, **kwargs):
        if action_ids:
            original(action_ids[:2], *args, **kwargs)
            raise RuntimeError("power cut")
        return original(action_ids, *args, **kwargs)
    monkeypatch.setattr(rollout_engine, "apply_event_to_many", failing)
    with pytest.raises(RuntimeError):
        evaluate()
    monkeypatch.setattr(rollout_engine, "apply_event_to_many", original)
    assert status(fleet, rollout_id) == "starting"
    assert Action.select().where((Action.rollout == rollout_id) & Action.active).count() == 0
    evaluate()
    assert Action.select().where((Action.rollout == rollout_id) & Action.active).count() == 5
    starts = ActionStatus.select().join(Action).where(
        (Action.rollout == rollout_id) & (ActionStatus.status == t.RUNNING)).count()
    assert starts == 5


def test_opening_many_actions_at_once_does_what_opening_each_does(fleet):
    """The set-based twin of apply_event against apply_event itself, on two rollouts' only
    actions: the same status, flag, history entry and target."""
    from storage.actions import apply_event, apply_event_to_many
    one = create(fleet, name="one", amountGroups=1, targetFilterQuery="controllerId==dev-1")
    many = create(fleet, name="many", amountGroups=1, targetFilterQuery="controllerId==dev-2")
    values = {"rollout": "r", "group": "g"}
    with write():
        single = Action.get(Action.rollout == one)
        apply_event(single, t.SERVER, "rollout_started", now=1000, by="x", message_values=values)
        bulk = Action.get(Action.rollout == many)
        assert apply_event_to_many([bulk.id], t.SERVER, t.SCHEDULED, "rollout_started",
                                   t.FORCED, 1000, "x", values) == 1
        assert apply_event_to_many([bulk.id], t.SERVER, t.SCHEDULED, "rollout_started",
                                   t.FORCED, 1000, "x", values) == 0

    def seen(action_id):
        row = Action.get_by_id(action_id)
        entry = ActionStatus.select().where(ActionStatus.action == action_id).order_by(
            ActionStatus.id.desc()).get()
        target = row.target
        return (row.status, row.active, row.revision, entry.status, entry.messages,
                entry.reported_at, target.assigned_ds_id, target.update_status)
    assert seen(bulk.id) == seen(single.id)


# --- the scheduler thread ------------------------------------------------------------------------

def test_device_feedback_wakes_the_scheduler(fleet):
    rollout_id = started(fleet)
    rollout_engine.scheduler.start(3600)  # only a wake can make it evaluate again
    try:
        time.sleep(0.2)  # its first evaluation, at start, is done
        report_all(fleet, members(rollout_id, 0), ["success"] * 3)
        deadline = time.monotonic() + 5
        while group_statuses(fleet, rollout_id) != ["running", "running"]:
            assert time.monotonic() < deadline, "feedback did not wake the engine"
            time.sleep(0.05)
    finally:
        rollout_engine.scheduler.stop()
