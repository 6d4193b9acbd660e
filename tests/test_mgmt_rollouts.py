"""Rollouts over the Management API (mgmt contract §12.2): create with amountGroups or
explicit groups, list, read, rename, the verbs and their illegal states, approval, retry,
delete, deploy groups and their targets, the rollout fields of actions, and every kind of bad
input with hawkBit's status and error body and nothing half-created left behind.

The engine is driven by calling `rollout_engine.evaluate(now)` (no thread, no sleeping);
how groups follow each other is tests/test_rollout_engine.py's subject.
"""

import pytest

from conftest import ROLLOUT_TARGETS as TARGETS, now_ms
from mgmt import (ALREADY_EXISTS, API, BASE, CONSTRAINT, DELETED, INCOMPLETE, NOT_FOUND,
                  NOT_READABLE, QUOTA, RSQL_FIELD, RSQL_SYNTAX, SORT_FIELD, error)
from storage import rollout_engine, rollouts

ILLEGAL_STATE = "hawkbit.server.error.rollout.illegalState"
PROGRESS = {"running", "notstarted", "scheduled", "cancelled", "finished", "error"}


def body(server, **fields):
    document = {"name": "wave", "distributionSetId": server.set.id,
                "targetFilterQuery": "controllerId==dev-*"}
    document.update(fields)
    return {key: value for key, value in document.items() if value is not None}


def create(server, status=201, **fields):
    return server.http.post_json(API + "/rollouts", body(server, **fields), status=status)


def rollout(server, rollout_id):
    return server.http.get(API + "/rollouts/%d" % rollout_id).json


def groups(server, rollout_id, query=""):
    return server.http.get(API + "/rollouts/%d/deploygroups%s" % (rollout_id, query)).json


def verb(server, rollout_id, name, status=204, query=""):
    return server.http.post(API + "/rollouts/%d/%s%s" % (rollout_id, name, query), status=status)


def evaluate():
    return rollout_engine.evaluate(now_ms())


def running(server, **fields):
    """A created and started rollout, its first group running; its document."""
    created = create(server, **fields).json
    verb(server, created["id"], "start")
    evaluate()
    return rollout(server, created["id"])


def nothing_created(server):
    assert server.http.get(API + "/rollouts").json["total"] == 0
    assert server.http.get(API + "/actions").json["total"] == 0


# --- create --------------------------------------------------------------------------------------

def test_create_answers_201_with_a_ready_rollout_of_one_group(fleet):
    created = create(fleet, description="staged").json
    assert created["name"] == "wave" and created["description"] == "staged"
    assert created["status"] == "ready"
    assert created["targetFilterQuery"] == "controllerId==dev-*"
    assert created["distributionSetId"] == fleet.set.id
    assert (created["totalTargets"], created["totalGroups"]) == (TARGETS, 1)
    assert created["deleted"] is False
    assert (created["type"], created["weight"]) == ("forced", 1000)
    assert {"createdBy", "createdAt", "lastModifiedBy", "lastModifiedAt"} <= set(created)
    links = created["_links"]
    assert links["self"]["href"] == BASE + API + "/rollouts/%d" % created["id"]
    assert links["groups"]["href"] == BASE + API + "/rollouts/%d/deploygroups?offset=0&limit=50" \
        % created["id"]
    assert links["distributionset"]["name"] == "fw-set:1.0"
    for name in ("start", "pause", "resume", "triggerNextGroup", "approve", "deny"):
        assert links[name]["href"].endswith("/rollouts/%d/%s" % (created["id"], name))


def test_create_counts_every_target_as_not_started(fleet):
    figures = create(fleet).json["totalTargetsPerStatus"]
    assert set(figures) == PROGRESS
    assert figures["notstarted"] == TARGETS
    assert sum(figures.values()) == TARGETS


def test_amount_groups_splits_the_targets_evenly_first_groups_one_more(fleet):
    created = create(fleet, amountGroups=3).json
    page = groups(fleet, created["id"])
    assert page["total"] == 3
    assert [g["name"] for g in page["content"]] == ["group-1", "group-2", "group-3"]
    assert [g["totalTargets"] for g in page["content"]] == [4, 3, 3]
    assert all(g["status"] == "ready" for g in page["content"])
    first = page["content"][0]
    assert first["successCondition"] == {"condition": "THRESHOLD", "expression": "50"}
    assert first["successAction"] == {"action": "NEXTGROUP", "expression": ""}
    assert first["errorCondition"] == {"condition": "THRESHOLD", "expression": "50"}
    assert first["errorAction"] == {"action": "PAUSE", "expression": ""}


def test_each_target_is_in_exactly_one_group(fleet):
    created = create(fleet, amountGroups=4).json
    members = []
    for group in groups(fleet, created["id"])["content"]:
        page = fleet.http.get(API + "/rollouts/%d/deploygroups/%d/targets"
                              % (created["id"], group["id"])).json
        assert page["total"] == group["totalTargets"]
        members += [target["controllerId"] for target in page["content"]]
    assert sorted(members) == ["dev-%d" % n for n in range(TARGETS)]


def test_explicit_groups_take_their_share_of_what_is_left_and_the_last_takes_the_rest(fleet):
    created = create(fleet, groups=[
        {"name": "canary", "targetPercentage": 20},
        {"name": "half", "targetPercentage": "50"},
        {"name": "rest", "targetPercentage": 100,
         "successCondition": {"condition": "THRESHOLD", "expression": "90"},
         "errorCondition": {"condition": "threshold", "expression": 10}}]).json
    page = groups(fleet, created["id"])["content"]
    assert [(g["name"], g["totalTargets"]) for g in page] == [
        ("canary", 2), ("half", 4), ("rest", 4)]
    assert [g["targetPercentage"] for g in page] == [20.0, 50.0, 100.0]
    assert page[2]["successCondition"]["expression"] == "90"
    assert page[2]["errorCondition"]["expression"] == "10"
    assert page[0]["successCondition"]["expression"] == "50"


def test_a_group_query_narrows_the_group_to_its_own_matches(fleet):
    created = create(fleet, groups=[
        {"name": "low", "targetFilterQuery": "controllerId=in=(dev-0,dev-1)",
         "targetPercentage": 100},
        {"name": "rest", "targetPercentage": 100}]).json
    first = groups(fleet, created["id"])["content"][0]
    assert first["targetFilterQuery"] == "controllerId=in=(dev-0,dev-1)"
    page = fleet.http.get(API + "/rollouts/%d/deploygroups/%d/targets"
                          % (created["id"], first["id"])).json
    assert sorted(t["controllerId"] for t in page["content"]) == ["dev-0", "dev-1"]


def test_groups_that_leave_targets_out_are_400_and_create_nothing(fleet):
    error(create(fleet, status=400, groups=[{"name": "a", "targetPercentage": 50}]),
          400, CONSTRAINT)
    nothing_created(fleet)


def test_amount_groups_and_groups_together_are_400(fleet):
    error(create(fleet, status=400, amountGroups=2,
                 groups=[{"name": "a", "targetPercentage": 100}]), 400, CONSTRAINT)
    nothing_created(fleet)


@pytest.mark.parametrize("percentage, code", [
    (0, CONSTRAINT), (101, CONSTRAINT), (-5, CONSTRAINT), ("abc", NOT_READABLE),
    (True, NOT_READABLE), ([50], NOT_READABLE)])
def test_target_percentage_outside_1_to_100_is_400(fleet, percentage, code):
    error(create(fleet, status=400, groups=[{"name": "a", "targetPercentage": percentage}]),
          400, code)
    nothing_created(fleet)


@pytest.mark.parametrize("query", [None, "", "   "])
def test_a_rollout_without_target_filter_query_is_400_rsql_syntax(fleet, query):
    error(create(fleet, status=400, targetFilterQuery=query), 400, RSQL_SYNTAX)


def test_an_unparsable_target_filter_query_is_400_rsql_syntax(fleet):
    error(create(fleet, status=400, targetFilterQuery="controllerId=="), 400, RSQL_SYNTAX)


def test_an_unknown_field_in_the_query_is_400_rsql_invalid_field(fleet):
    error(create(fleet, status=400, targetFilterQuery="colour==red"), 400, RSQL_FIELD)
    error(create(fleet, status=400, groups=[
        {"name": "a", "targetPercentage": 100, "targetFilterQuery": "colour==red"}]),
        400, RSQL_FIELD)
    nothing_created(fleet)


def test_a_query_that_matches_no_target_is_400(fleet):
    error(create(fleet, status=400, targetFilterQuery="controllerId==nobody"), 400, CONSTRAINT)
    nothing_created(fleet)


def test_a_duplicate_name_is_409(fleet):
    create(fleet)
    error(create(fleet, status=409), 409, ALREADY_EXISTS)
    assert fleet.http.get(API + "/rollouts").json["total"] == 1


def test_an_unknown_set_is_404(fleet):
    error(create(fleet, status=404, distributionSetId=9999), 404, NOT_FOUND)


def test_an_incomplete_set_is_400_incomplete(fleet):
    incomplete = fleet.distribution_set([], name="empty")
    error(create(fleet, status=400, distributionSetId=incomplete.id), 400, INCOMPLETE)
    nothing_created(fleet)


def test_a_soft_deleted_set_is_404_deleted(fleet):
    fleet.assign(fleet.set, "dev-0")
    fleet.http.delete(API + "/distributionsets/%d" % fleet.set.id, status=204)
    error(create(fleet, status=404), 404, DELETED)
    assert fleet.http.get(API + "/rollouts").json["total"] == 0


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"wave"', b"[{\"name\": \"wave\"}]"])
def test_a_malformed_body_is_400_not_readable(fleet, raw):
    response = fleet.http.post(API + "/rollouts", raw, status=400,
                               content_type="application/json")
    error(response, 400, NOT_READABLE)


@pytest.mark.parametrize("fields, code", [
    ({"name": None}, CONSTRAINT), ({"name": ""}, CONSTRAINT), ({"name": "x" * 129}, CONSTRAINT),
    ({"distributionSetId": None}, CONSTRAINT), ({"distributionSetId": "five"}, NOT_READABLE),
    ({"type": "sometimes"}, NOT_READABLE), ({"weight": 1001}, CONSTRAINT),
    ({"amountGroups": 0}, CONSTRAINT), ({"amountGroups": "two"}, NOT_READABLE),
    ({"groups": []}, CONSTRAINT), ({"groups": {"name": "a"}}, NOT_READABLE),
    ({"groups": ["a"]}, NOT_READABLE),
    ({"successCondition": {"condition": "ALWAYS"}}, NOT_READABLE),
    ({"successCondition": {"condition": "THRESHOLD", "expression": "150"}}, CONSTRAINT),
    ({"errorCondition": {"condition": "THRESHOLD", "expression": "lots"}}, CONSTRAINT),
    ({"successAction": {"action": "PAUSE"}}, NOT_READABLE),
    ({"errorAction": {"action": "NEXTGROUP"}}, NOT_READABLE),
    ({"startAt": "soon"}, NOT_READABLE), ({"confirmationRequired": "maybe"}, NOT_READABLE),
])
def test_a_bad_field_is_400_with_hawkbits_code_and_creates_nothing(fleet, fields, code):
    error(create(fleet, status=400, **fields), 400, code)
    nothing_created(fleet)


# hawkBit keeps a rollout's and a group's targetFilterQuery in a column of 1024 characters, as
# a target filter's. Without the limit a query of thousands of terms (the body may be 1 MiB)
# was evaluated inside the creating write transaction: 3,000 terms held the one database
# writer, and so every device's feedback, for 7 s.
LONG_QUERY = ",".join("controllerId==dev-%d" % n for n in range(60))


def test_a_target_filter_query_longer_than_1024_characters_is_400_and_creates_nothing(fleet):
    assert len(LONG_QUERY) > 1024
    answer = create(fleet, status=400, targetFilterQuery=LONG_QUERY)
    error(answer, 400, CONSTRAINT)
    assert answer.json["info"] == {"field": "targetFilterQuery"}
    answer = create(fleet, status=400, groups=[{"targetPercentage": 100,
                                                "targetFilterQuery": LONG_QUERY}])
    error(answer, 400, CONSTRAINT)
    assert answer.json["info"] == {"field": "groups[0].targetFilterQuery"}
    nothing_created(fleet)
    assert create(fleet, targetFilterQuery=LONG_QUERY[:1024].rsplit(",", 1)[0]).json[
        "totalTargets"] == TARGETS


def test_more_than_500_groups_is_429_quota(fleet):
    error(create(fleet, status=429, amountGroups=501), 429, QUOTA)
    nothing_created(fleet)


def test_a_group_over_the_targets_quota_is_429(fleet, monkeypatch):
    monkeypatch.setattr(rollouts, "MAX_TARGETS_PER_GROUP", 4)
    error(create(fleet, status=429, amountGroups=2), 429, QUOTA)
    nothing_created(fleet)
    create(fleet, amountGroups=3)


def test_unknown_properties_are_ignored(fleet):
    created = create(fleet, actionType="forced", start="auto", _links={"x": 1}).json
    assert created["status"] == "ready"


def test_type_forcetime_weight_and_start_at_are_kept_and_coerced(fleet):
    created = create(fleet, type="timeforced", forcetime="1716900000000", weight="200",
                     startAt="4102444800000").json
    assert created["type"] == "timeforced"
    assert created["forcetime"] == 1716900000000
    assert create(fleet, name="now", type="timeforced").json["forcetime"] == 0
    assert created["weight"] == 200
    assert created["startAt"] == 4102444800000
    action = fleet.http.get(API + "/actions?q=rollout.id==%d&limit=1" % created["id"]).json[
        "content"][0]
    assert (action["forceType"], action["forceTime"], action["weight"]) == (
        "timeforced", 1716900000000, 200)
    assert action["status"] == "scheduled" and action["active"] is False


def test_confirmation_required_is_shown_only_with_the_confirmation_flow(fleet):
    assert "confirmationRequired" not in create(fleet).json
    fleet.configure(**{"user.confirmation.flow.enabled": True})
    created = create(fleet, name="second", confirmationRequired=False).json
    assert created["confirmationRequired"] is False
    assert groups(fleet, created["id"])["content"][0]["confirmationRequired"] is False


# --- list, get, update ---------------------------------------------------------------------------

def test_list_is_paged_and_compact_by_default(fleet):
    for name in ("a", "b", "c"):
        create(fleet, name=name)
    page = fleet.http.get(API + "/rollouts?limit=2").json
    assert (page["total"], page["size"]) == (3, 2)
    assert [r["name"] for r in page["content"]] == ["a", "b"]
    assert "totalTargetsPerStatus" not in page["content"][0]
    assert set(page["content"][0]["_links"]) == {"self"}
    full = fleet.http.get(API + "/rollouts?representation=full").json["content"][0]
    assert full["totalTargetsPerStatus"]["notstarted"] == TARGETS
    assert "start" in full["_links"]
    compact = fleet.http.get(API + "/rollouts?representation=compact").json["content"][0]
    assert "totalTargetsPerStatus" not in compact


def test_list_filters_and_sorts(fleet):
    for name in ("alpha", "beta", "gamma"):
        create(fleet, name=name)
    by_name = fleet.http.get(API + "/rollouts?q=name==*a;name!=gamma&sort=name:DESC").json
    assert [r["name"] for r in by_name["content"]] == ["beta", "alpha"]
    assert fleet.http.get(API + "/rollouts?q=status==READY").json["total"] == 3
    assert fleet.http.get(API + "/rollouts?q=distributionSet.name==fw-set").json["total"] == 3
    error(fleet.http.get(API + "/rollouts?q=distributionSet==x", status=400), 400, RSQL_FIELD)
    error(fleet.http.get(API + "/rollouts?q=colour==red", status=400), 400, RSQL_FIELD)
    error(fleet.http.get(API + "/rollouts?q=name==(", status=400), 400, RSQL_SYNTAX)
    error(fleet.http.get(API + "/rollouts?sort=colour:ASC", status=400), 400, SORT_FIELD)


def test_get_of_an_unknown_rollout_is_404(fleet):
    found = error(fleet.http.get(API + "/rollouts/4242", status=404), 404, NOT_FOUND)
    assert found["info"] == {"type": "Rollout", "entityId": 4242}


def test_put_changes_name_and_description_only(fleet):
    created = create(fleet).json
    updated = fleet.http.put_json(API + "/rollouts/%d" % created["id"], {
        "name": "renamed", "description": "new", "targetFilterQuery": "controllerId==x",
        "amountGroups": 7}).json
    assert (updated["name"], updated["description"]) == ("renamed", "new")
    assert updated["targetFilterQuery"] == "controllerId==dev-*"
    assert updated["totalGroups"] == 1
    assert rollout(fleet, created["id"])["name"] == "renamed"


def test_put_to_a_taken_name_is_409_and_unknown_id_404(fleet):
    create(fleet, name="one")
    second = create(fleet, name="two").json
    error(fleet.http.put_json(API + "/rollouts/%d" % second["id"], {"name": "one"}, status=409),
          409, ALREADY_EXISTS)
    error(fleet.http.put_json(API + "/rollouts/999", {"name": "x"}, status=404), 404, NOT_FOUND)
    error(fleet.http.put_json(API + "/rollouts/%d" % second["id"], {"name": ""}, status=400),
          400, CONSTRAINT)


# --- verbs ---------------------------------------------------------------------------------------

def test_start_answers_204_and_the_engine_runs_the_first_group(fleet):
    created = create(fleet, amountGroups=2).json
    response = verb(fleet, created["id"], "start")
    assert response.body == b""
    assert rollout(fleet, created["id"])["status"] == "starting"
    evaluate()
    started = rollout(fleet, created["id"])
    assert started["status"] == "running"
    assert started["totalTargetsPerStatus"]["running"] == 5
    assert started["totalTargetsPerStatus"]["scheduled"] == 5
    assert [g["status"] for g in groups(fleet, created["id"])["content"]] == [
        "running", "scheduled"]


@pytest.mark.parametrize("name", ["start", "pause", "resume", "stop", "triggerNextGroup",
                                  "approve", "deny", "retry"])
def test_every_verb_on_an_unknown_rollout_is_404(fleet, name):
    error(verb(fleet, 777, name, status=404), 404, NOT_FOUND)


@pytest.mark.parametrize("name", ["pause", "resume", "triggerNextGroup", "approve", "deny",
                                  "retry"])
def test_verbs_a_ready_rollout_does_not_allow_are_400_illegal_state(fleet, name):
    created = create(fleet).json
    error(verb(fleet, created["id"], name, status=400), 400, ILLEGAL_STATE)
    assert rollout(fleet, created["id"])["status"] == "ready"


def test_pause_and_resume_move_between_running_and_paused(fleet):
    started = running(fleet, amountGroups=2)
    error(verb(fleet, started["id"], "start", status=400), 400, ILLEGAL_STATE)
    error(verb(fleet, started["id"], "resume", status=400), 400, ILLEGAL_STATE)
    verb(fleet, started["id"], "pause")
    assert rollout(fleet, started["id"])["status"] == "paused"
    error(verb(fleet, started["id"], "pause", status=400), 400, ILLEGAL_STATE)
    error(verb(fleet, started["id"], "triggerNextGroup", status=400), 400, ILLEGAL_STATE)
    verb(fleet, started["id"], "resume")
    assert rollout(fleet, started["id"])["status"] == "running"


def test_stop_cancels_what_has_not_started_and_leaves_running_actions(fleet):
    started = running(fleet, amountGroups=2)
    verb(fleet, started["id"], "stop")
    stopped = rollout(fleet, started["id"])
    assert stopped["status"] == "stopped"
    assert stopped["totalTargetsPerStatus"]["cancelled"] == 5
    assert stopped["totalTargetsPerStatus"]["running"] == 5
    assert stopped["totalTargetsPerStatus"]["scheduled"] == 0
    assert [g["status"] for g in groups(fleet, started["id"])["content"]] == [
        "finished", "finished"]
    for name in ("stop", "start", "pause", "resume"):
        error(verb(fleet, started["id"], name, status=400), 400, ILLEGAL_STATE)
    evaluate()
    assert rollout(fleet, started["id"])["status"] == "stopped"


def test_stop_before_the_start_cancels_every_action(fleet):
    created = create(fleet, amountGroups=2).json
    verb(fleet, created["id"], "stop")
    stopped = rollout(fleet, created["id"])
    assert stopped["status"] == "stopped"
    assert stopped["totalTargetsPerStatus"]["cancelled"] == TARGETS
    assert fleet.http.get(API + "/actions?q=active==true").json["total"] == 0


@pytest.mark.parametrize("raw", [b"[]", b"{", b'"x"'])
def test_put_with_a_malformed_body_is_400_and_changes_nothing(fleet, raw):
    created = create(fleet).json
    error(fleet.http.put(API + "/rollouts/%d" % created["id"], raw, status=400,
                         content_type="application/json"), 400, NOT_READABLE)
    assert rollout(fleet, created["id"])["name"] == "wave"


def test_trigger_next_group_starts_the_next_group_now(fleet):
    started = running(fleet, amountGroups=3)
    verb(fleet, started["id"], "triggerNextGroup")
    assert [g["status"] for g in groups(fleet, started["id"])["content"]] == [
        "running", "running", "scheduled"]
    verb(fleet, started["id"], "triggerNextGroup")
    error(verb(fleet, started["id"], "triggerNextGroup", status=400), 400, ILLEGAL_STATE)


def test_approval_waits_then_approve_makes_it_ready_with_the_remark(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    created = create(fleet).json
    assert created["status"] == "waiting_for_approval"
    error(verb(fleet, created["id"], "start", status=400), 400, ILLEGAL_STATE)
    verb(fleet, created["id"], "approve", query="?remark=looks%20good")
    approved = rollout(fleet, created["id"])
    assert approved["status"] == "ready"
    assert (approved["approvalRemark"], approved["approveDecidedBy"]) == ("looks good", "admin")
    error(verb(fleet, created["id"], "approve", status=400), 400, ILLEGAL_STATE)
    verb(fleet, created["id"], "start")


def test_deny_ends_in_approval_denied(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    created = create(fleet).json
    verb(fleet, created["id"], "deny", query="?remark=no")
    denied = rollout(fleet, created["id"])
    assert (denied["status"], denied["approvalRemark"]) == ("approval_denied", "no")
    for name in ("start", "approve", "deny"):
        error(verb(fleet, created["id"], name, status=400), 400, ILLEGAL_STATE)


@pytest.mark.parametrize("name", ["approve", "deny"])
def test_a_remark_longer_than_255_characters_is_400_and_decides_nothing(fleet, name):
    # hawkBit's approvalRemark column holds 255 characters; without the limit a remark of a
    # whole request body (the console's form: up to max_body_bytes) was stored and sent back
    # with every read of the rollout.
    fleet.configure(**{"rollout.approval.enabled": True})
    created = create(fleet).json
    error(verb(fleet, created["id"], name, status=400, query="?remark=" + "r" * 256),
          400, CONSTRAINT)
    assert rollout(fleet, created["id"])["status"] == "waiting_for_approval"
    verb(fleet, created["id"], name, query="?remark=" + "r" * 255)
    assert rollout(fleet, created["id"])["approvalRemark"] == "r" * 255


# --- retry and delete ----------------------------------------------------------------------------

def _finish_with_failures(fleet, failing):
    """Run a one-group rollout to its end: the targets in `failing` fail, the others succeed."""
    started = running(fleet, errorCondition={"condition": "THRESHOLD", "expression": "100"},
                      successCondition={"condition": "THRESHOLD", "expression": "0"})
    page = fleet.http.get(API + "/actions?q=rollout.id==%d&limit=50" % started["id"]).json
    for action in page["content"]:
        controller_id = action["_links"]["self"]["href"].split("/targets/")[1].split("/")[0]
        finished = "failure" if controller_id in failing else "success"
        fleet.http.post_json(
            "/DEFAULT/controller/v1/%s/deploymentBase/%d/feedback" % (controller_id,
                                                                        action["id"]),
            {"status": {"execution": "closed", "result": {"finished": finished}}},
            headers={"Authorization": "TargetToken token-" + controller_id.split("-")[1]})
    evaluate()
    return started


def test_retry_makes_a_new_rollout_of_the_failed_targets(fleet):
    started = _finish_with_failures(fleet, {"dev-3", "dev-7"})
    assert rollout(fleet, started["id"])["status"] == "finished"
    retried = verb(fleet, started["id"], "retry", status=201).json
    assert retried["name"] == "wave_retry"
    assert retried["status"] == "ready"
    assert retried["totalTargets"] == 2
    group = groups(fleet, retried["id"])["content"][0]
    page = fleet.http.get(API + "/rollouts/%d/deploygroups/%d/targets"
                          % (retried["id"], group["id"])).json
    assert sorted(t["controllerId"] for t in page["content"]) == ["dev-3", "dev-7"]
    error(verb(fleet, started["id"], "retry", status=409), 409, ALREADY_EXISTS)


def test_retry_stores_a_short_query_however_many_targets_failed(fleet):
    # Naming each failed target would pass the 1024-character limit on queries with a few
    # dozen long controller ids; hawkBit's own retry names the rollout instead.
    started = _finish_with_failures(fleet, {"dev-%d" % n for n in range(TARGETS)})
    retried = verb(fleet, started["id"], "retry", status=201).json
    assert retried["targetFilterQuery"] == "failedrollout==%d" % started["id"]
    assert retried["totalTargets"] == TARGETS


def test_failedrollout_selects_the_targets_whose_action_of_that_rollout_failed(fleet):
    started = _finish_with_failures(fleet, {"dev-2", "dev-5"})
    page = fleet.http.get(API + "/targets?q=failedrollout==%d" % started["id"]).json
    assert sorted(t["controllerId"] for t in page["content"]) == ["dev-2", "dev-5"]
    assert fleet.http.get(API + "/targets?q=failedrollout==%d"
                          % (started["id"] + 1)).json["total"] == 0


def test_retry_without_failed_targets_is_400(fleet):
    started = _finish_with_failures(fleet, set())
    error(verb(fleet, started["id"], "retry", status=400), 400, CONSTRAINT)


def test_retry_of_a_running_rollout_is_400_illegal_state(fleet):
    started = running(fleet)
    error(verb(fleet, started["id"], "retry", status=400), 400, ILLEGAL_STATE)


def test_delete_of_a_rollout_that_never_started_removes_it(fleet):
    created = create(fleet).json
    fleet.http.delete(API + "/rollouts/%d" % created["id"], status=204)
    error(fleet.http.get(API + "/rollouts/%d" % created["id"], status=404), 404, NOT_FOUND)
    nothing_created(fleet)
    error(fleet.http.delete(API + "/rollouts/%d" % created["id"], status=404), 404, NOT_FOUND)


def test_delete_of_a_started_rollout_keeps_it_as_deleted(fleet):
    started = running(fleet, amountGroups=2)
    fleet.http.delete(API + "/rollouts/%d" % started["id"], status=204)
    kept = rollout(fleet, started["id"])
    assert (kept["status"], kept["deleted"]) == ("deleted", True)
    assert kept["totalTargetsPerStatus"]["running"] == 5
    assert kept["totalTargetsPerStatus"]["scheduled"] == 0
    assert fleet.http.get(API + "/rollouts").json["total"] == 0
    assert fleet.http.get(API + "/actions").json["total"] == 5
    fleet.http.delete(API + "/rollouts/%d" % started["id"], status=204)
    for name in ("start", "pause", "resume", "stop"):
        error(verb(fleet, started["id"], name, status=400), 400, ILLEGAL_STATE)
    # As hawkBit: readable, but never changed again (not even its name).
    error(fleet.http.put_json(API + "/rollouts/%d" % started["id"], {"name": "renamed"},
                              status=403), 403, "hawkbit.server.error.entityreadonly")
    assert rollout(fleet, started["id"])["name"] == kept["name"]
    evaluate()
    assert rollout(fleet, started["id"])["status"] == "deleted"


def test_a_rollout_name_is_free_again_only_after_a_hard_delete(fleet):
    created = create(fleet).json
    fleet.http.delete(API + "/rollouts/%d" % created["id"], status=204)
    create(fleet)


# --- deploy groups -------------------------------------------------------------------------------

def test_group_get_list_and_targets(fleet):
    created = create(fleet, amountGroups=2).json
    page = groups(fleet, created["id"], "?limit=1&sort=id:DESC")
    assert (page["total"], page["size"]) == (2, 1)
    last = page["content"][0]
    assert last["name"] == "group-2"
    one = fleet.http.get(API + "/rollouts/%d/deploygroups/%d" % (created["id"], last["id"])).json
    assert one["id"] == last["id"] and one["totalTargets"] == 5
    assert one["_links"]["self"]["href"] == BASE + API + "/rollouts/%d/deploygroups/%d" % (
        created["id"], last["id"])
    assert set(one["totalTargetsPerStatus"]) == PROGRESS
    targets = fleet.http.get(API + "/rollouts/%d/deploygroups/%d/targets?limit=2&q=controllerId"
                             "=in=(dev-5,dev-6,dev-9)" % (created["id"], last["id"])).json
    assert targets["total"] == 3 and targets["size"] == 2
    assert groups(fleet, created["id"], "?q=name==group-1")["total"] == 1
    error(fleet.http.get(API + "/rollouts/%d/deploygroups?q=colour==x" % created["id"],
                         status=400), 400, RSQL_FIELD)


def test_a_group_of_another_rollout_or_unknown_is_404(fleet):
    first = create(fleet, name="first").json
    second = create(fleet, name="second").json
    group = groups(fleet, first["id"])["content"][0]
    for path in ("/deploygroups/%d", "/deploygroups/%d/targets"):
        error(fleet.http.get(API + "/rollouts/%d" % second["id"] + path % group["id"],
                             status=404), 404, NOT_FOUND)
    error(fleet.http.get(API + "/rollouts/999/deploygroups", status=404), 404, NOT_FOUND)
    error(fleet.http.get(API + "/rollouts/%d/deploygroups/999" % first["id"], status=404),
          404, NOT_FOUND)


# --- actions of a rollout ------------------------------------------------------------------------

def test_actions_carry_their_rollout_and_link_to_it(fleet):
    started = running(fleet, amountGroups=2)
    page = fleet.http.get(API + "/actions?q=rollout.id==%d;status==running" % started["id"]).json
    assert page["total"] == 5
    listed = page["content"][0]
    assert (listed["rollout"], listed["rolloutName"]) == (started["id"], "wave")
    assert set(listed["_links"]) == {"self"}
    single = fleet.http.get(listed["_links"]["self"]["href"]).json
    assert single["_links"]["rollout"] == {
        "href": BASE + API + "/rollouts/%d" % started["id"], "name": "wave"}


def test_actions_filter_by_rollout_and_group_fields(fleet):
    started = running(fleet, amountGroups=2)
    first, second = groups(fleet, started["id"])["content"]

    def total(q):
        return fleet.http.get(API + "/actions?q=" + q).json["total"]
    assert total("rollout.name==WAVE") == 10
    assert total("rolloutGroup.name==group-2") == 5
    assert total("rolloutGroup.id==%d;status==scheduled" % second["id"]) == 5
    assert total("rolloutGroup.id==%d;active==true" % first["id"]) == 5
    assert total("rollout.id==%d" % (started["id"] + 1)) == 0
    error(fleet.http.get(API + "/actions?q=rollout==wave", status=400), 400, RSQL_FIELD)
    error(fleet.http.get(API + "/actions?q=rolloutGroup==x", status=400), 400, RSQL_FIELD)


def test_an_ordinary_assignment_has_no_rollout_fields(fleet):
    action = fleet.assign(fleet.set, "dev-0")
    document = fleet.http.get(API + "/actions/%d" % action.id).json
    assert "rollout" not in document and "rolloutName" not in document
    assert "rollout" not in document["_links"]
