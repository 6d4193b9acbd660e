"""The console's rollouts (console/, Rollouts section) through WebTest: the list and its create
form, a rollout's page with a progress bar per group and the verbs its status allows, a
group's targets, the live fragment, and the overview's running rollouts. Every change goes
through storage.rollouts, so a refusal is the Management API's, as a 4xx page.

The engine is driven by calling `rollout_engine.evaluate(now)` (no thread, no sleeping), as
tests/test_mgmt_rollouts.py does.
"""

import json
import re

import pytest

from conftest import DEVICE, now_ms, token
from storage import filters, rollout_engine, rollouts
from storage.ddi import find_target
from storage.models import Action, Rollout
from ui import csrf, problem, said, sign_in

TARGETS = 4


@pytest.fixture
def fleet(server):
    """Four targets dev-0..dev-3, a complete set, signed in; the server."""
    for number in range(TARGETS):
        server.target("dev-%d" % number, "token-%d" % number)
    server.set = server.distribution_set([server.module()], name="press-fw", version="4.2")
    assert sign_in(server.http).status_int == 303
    return server


def create_form(server, **fields):
    """The create form filled with `fields` (a set and the query dev-* by default)."""
    page = server.http.get("/ui/rollouts")
    form = page.forms["new-rollout"]
    form["name"] = "wave"
    form["query"] = "controllerId==dev-*"
    for name, value in fields.items():
        form[name] = value
    return form


def create(server, **fields):
    """A rollout made through the form; its id."""
    response = create_form(server, **fields).submit()
    assert response.status_int == 303
    return int(re.search(r"/ui/rollouts/(\d+)\?said=rollout-created$",
                         response.location).group(1))


def post(server, rollout_id, verb, status=303, **fields):
    fields.setdefault("csrf", csrf(server.http.get("/ui/rollouts")))
    return server.http.post("/ui/rollouts/%d/%s" % (rollout_id, verb), fields, status=status)


def evaluate():
    return rollout_engine.evaluate(now_ms())


def status_of(rollout_id):
    return Rollout.get_by_id(rollout_id).status


def buttons(page):
    return re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', page.text) + \
        re.findall(r'<a class="button[^"]*" href="[^"]+">([^<]+)</a>', page.text)


def report(server, controller_id, result):
    """The device of `controller_id` fetches its deployment and reports `result`."""
    secret = "token-" + controller_id.split("-")[-1]
    action = Action.get((Action.target == find_target(controller_id).id) & Action.active)
    body = {"status": {"execution": "closed", "result": {"finished": result},
                       "details": ["reported by the test"]}}
    server.http.post(DEVICE + "/%s/deploymentBase/%d/feedback" % (controller_id, action.id),
                     json.dumps(body), headers=dict(token(secret),
                                                    **{"Content-Type": "application/json"}))


# --- the list and the create form ------------------------------------------------------------

def test_the_rollouts_page_is_in_the_navigation(fleet):
    assert '<a href="/ui/rollouts">Rollouts</a>' in fleet.http.get("/ui").text


def test_the_create_form_offers_the_complete_sets_and_the_saved_filters(fleet):
    fleet.distribution_set([], name="empty", version="0")  # incomplete: not offered
    filters.create_filter("", {"name": "odd boards", "query": "controllerId=in=(dev-1,dev-3)"},
                          "test")
    page = fleet.http.get("/ui/rollouts")
    form = page.forms["new-rollout"]
    assert [label for _, _, label in form["set"].options] == ["press-fw 4.2"]
    assert [label for _, _, label in form["filter"].options] == [
        "none: use the query", "odd boards (controllerId=in=(dev-1,dev-3))"]
    assert "confirmationRequired" not in form.fields
    assert "0 rollouts" in page.text


def test_creating_a_rollout_in_equal_groups_opens_its_page(fleet):
    rollout_id = create(fleet, groups="2", description="staged")
    page = fleet.http.get("/ui/rollouts/%d?said=rollout-created" % rollout_id)
    assert said(page) == "Rollout created."
    assert 'data-rollout-status="ready"' in page.text
    assert "press-fw:4.2" in page.text and "controllerId==dev-*" in page.text
    assert "staged" in page.text and "4 in 2 groups" in page.text
    assert re.findall(r'data-group="([^"]+)"', page.text) == ["group-1", "group-2"]
    assert page.text.count("2 in all") == 2
    assert buttons(page) == ["Sign out", "Start", "Stop…", "Delete…"]
    document = rollouts.get_rollout("", rollout_id)
    assert document["type"] == "forced" and document["totalGroups"] == 2


def test_a_rollout_of_a_saved_filter_takes_the_filters_query(fleet):
    saved = filters.create_filter("", {"name": "odd", "query": "controllerId=in=(dev-1,dev-3)"},
                                  "test")
    rollout_id = create(fleet, query="", filter=str(saved["id"]))
    document = rollouts.get_rollout("", rollout_id)
    assert document["targetFilterQuery"] == "controllerId=in=(dev-1,dev-3)"
    assert document["totalTargets"] == 2


def test_explicit_percentages_thresholds_type_and_start_time_reach_the_rollout(fleet):
    rollout_id = create(fleet, percentages="25, 100%", successThreshold="80",
                        errorThreshold="10", type="soft", startAt="2030-01-02T03:04")
    document = rollouts.get_rollout("", rollout_id)
    assert document["type"] == "soft"
    assert document["startAt"] == 1893553440000
    groups = rollouts.list_groups("", rollout_id)["content"]
    assert [group["totalTargets"] for group in groups] == [1, 3]
    assert groups[0]["successCondition"]["expression"] == "80"
    assert groups[0]["errorCondition"]["expression"] == "10"
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert "2030-01-02 03:04:00 UTC" in page.text
    assert "next at 80 % finished, pauses above 10 % failed" in page.text


def test_with_the_confirmation_flow_on_the_form_asks_about_confirmation(fleet):
    fleet.configure(**{"user.confirmation.flow.enabled": True})
    form = create_form(fleet)
    assert form["confirmationRequired"].value == "true"
    form["confirmationRequired"] = False
    form.submit(status=303)
    assert rollouts.list_rollouts("", full=True)["content"][0]["confirmationRequired"] is False


@pytest.mark.parametrize("fields, status, message", [
    ({"query": ""}, 400, "targetFilterQuery"),
    ({"query": "nofield==1"}, 400, ""),
    ({"query": "controllerId==nobody"}, 400, "matches no target"),
    ({"name": " "}, 400, "blank"),
    ({"groups": "2", "percentages": "50 100"}, 400, "either amountGroups or groups"),
    ({"percentages": "10"}, 400, "leave"),
    ({"percentages": "abc"}, 400, ""),
    ({"groups": "0"}, 400, "at least 1"),
    ({"successThreshold": "101"}, 400, "0 to 100"),
    ({"startAt": "tomorrow"}, 400, "YYYY-MM-DD"),
    ({"type": "sometimes"}, 400, "Unknown action type"),
])
def test_a_refused_rollout_is_a_4xx_page_with_the_apis_message_and_nothing_made(
        fleet, fields, status, message):
    form = create_form(fleet)
    for name, value in fields.items():
        if name == "type":
            form[name].force_value(value)
        else:
            form[name] = value
    page = form.submit(status=status)
    assert message in problem(page) and problem(page)
    assert Rollout.select().count() == 0 and Action.select().count() == 0


def test_a_query_and_a_saved_filter_together_are_refused(fleet):
    saved = filters.create_filter("", {"name": "all", "query": "controllerId==*"}, "test")
    page = create_form(fleet, filter=str(saved["id"])).submit(status=400)
    assert "not both" in problem(page)


def test_a_taken_name_is_409(fleet):
    create(fleet)
    assert "exists already" in problem(create_form(fleet).submit(status=409))


def test_a_missing_set_or_filter_is_404(fleet):
    form = create_form(fleet)
    form["set"].force_value("999")
    form.submit(status=404)
    form = create_form(fleet, query="")
    form["filter"].force_value("999")
    form.submit(status=404)


def test_the_list_shows_each_rollout_with_its_counts_newest_first(fleet):
    first = create(fleet, name="first", groups="2")
    create(fleet, name="second")
    post(fleet, first, "start")
    evaluate()
    report(fleet, "dev-0", "success")
    report(fleet, "dev-1", "failure")
    page = fleet.http.get("/ui/rollouts")
    names = re.findall(r'<a href="/ui/rollouts/\d+">([^<]+)</a>', page.text)
    assert names == ["second", "first"]
    row = page.text[page.text.index(">first<"):]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)[:5]
    assert cells == ["press-fw:4.2", "2", "4", "1/4", "1"]
    assert 'aria-label="first: 1 finished, 1 failed' in page.text


def test_the_list_is_paged(fleet):
    for number in range(27):
        rollouts.create_rollout("", {"name": "r-%02d" % number, "distributionSetId":
                                     fleet.set.id, "targetFilterQuery": "controllerId==dev-0"},
                                "test")
    first = fleet.http.get("/ui/rollouts")
    assert "showing 1–25" in first.text and 'rel="next"' in first.text
    second = fleet.http.get("/ui/rollouts?offset=25")
    assert re.findall(r'<a href="/ui/rollouts/\d+">([^<]+)</a>', second.text) == \
        ["r-01", "r-00"]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text


# --- a rollout's page and its verbs ---------------------------------------------------------

def test_a_running_group_shows_finished_and_failed_apart(fleet):
    rollout_id = create(fleet, groups="2", errorThreshold="60")
    post(fleet, rollout_id, "start")
    evaluate()
    report(fleet, "dev-0", "success")
    report(fleet, "dev-1", "failure")
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    group = page.text[page.text.index('data-group="group-1"'):
                      page.text.index('data-group="group-2"')]
    assert 'class="p-finished" x="0.000" y="0" width="50.000"' in group
    assert 'class="p-error" x="50.000" y="0" width="50.000"' in group
    assert "1 finished" in group and "1 failed" in group
    assert 'data-live="/ui/fragment/rollouts/%d"' % rollout_id in page.text


def test_the_buttons_follow_the_rollouts_status(fleet):
    rollout_id = create(fleet, groups="2")
    post(fleet, rollout_id, "start")
    evaluate()
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert buttons(page) == ["Sign out", "Pause", "Start the next group now", "Stop…",
                             "Delete…"]
    assert said(post(fleet, rollout_id, "pause").follow()) == "Rollout paused."
    assert status_of(rollout_id) == "PAUSED"
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert buttons(page) == ["Sign out", "Resume", "Stop…", "Delete…"]
    post(fleet, rollout_id, "resume")
    assert status_of(rollout_id) == "RUNNING"
    assert post(fleet, rollout_id, "next-group").location.endswith("said=next-group")
    assert [group["status"] for group in rollouts.list_groups("", rollout_id)["content"]] == \
        ["running", "running"]


def test_a_verb_the_status_does_not_allow_is_the_apis_400(fleet):
    rollout_id = create(fleet)
    page = post(fleet, rollout_id, "pause", status=400)
    assert "is ready: pause is not possible now" in problem(page)
    post(fleet, rollout_id, "resume", status=400)


def test_an_unknown_verb_or_rollout_is_404(fleet):
    rollout_id = create(fleet)
    post(fleet, rollout_id, "explode", status=404)
    post(fleet, 999, "start", status=404)
    fleet.http.get("/ui/rollouts/999", status=404)
    fleet.http.get("/ui/rollouts/%d/start" % rollout_id, status=404)
    fleet.http.get("/ui/rollouts/%d/groups/999" % rollout_id, status=404)


def test_approval_is_decided_with_a_remark(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    rollout_id = create(fleet)
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert 'data-rollout-status="waiting_for_approval"' in page.text
    form = page.forms["decide"]
    form["remark"] = "checked on the bench"
    answer = form.submit(status=303)
    assert said(answer.follow()) == "Rollout approved."
    document = rollouts.get_rollout("", rollout_id)
    assert document["status"] == "ready"
    assert (document["approvalRemark"], document["approveDecidedBy"]) == \
        ("checked on the bench", "admin")
    assert "admin: checked on the bench" in fleet.http.get("/ui/rollouts/%d" % rollout_id).text


def test_a_remark_longer_than_hawkbits_255_characters_is_a_400_page_and_decides_nothing(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    rollout_id = create(fleet)
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert 'name="remark" maxlength="255"' in page.text
    answer = post(fleet, rollout_id, "approve", status=400, remark="r" * 100000)
    assert problem(answer) == "remark must not be longer than 255 characters (got 100000)."
    assert status_of(rollout_id) == "WAITING_FOR_APPROVAL"
    assert rollouts.get_rollout("", rollout_id).get("approvalRemark") is None


def test_a_rollout_can_be_denied(fleet):
    fleet.configure(**{"rollout.approval.enabled": True})
    rollout_id = create(fleet)
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    # The Deny button sends the same form elsewhere (formaction; WebTest does not follow it).
    assert 'formaction="/ui/rollouts/%d/deny">Deny<' % rollout_id in page.text
    answer = post(fleet, rollout_id, "deny", remark="not this week")
    assert said(answer.follow()) == "Rollout denied."
    assert status_of(rollout_id) == "APPROVAL_DENIED"
    assert buttons(fleet.http.get("/ui/rollouts/%d" % rollout_id)) == ["Sign out", "Delete…"]


def test_stop_asks_on_a_page_of_its_own_first(fleet):
    rollout_id = create(fleet, groups="2")
    post(fleet, rollout_id, "start")
    evaluate()
    page = post(fleet, rollout_id, "stop", status=400)
    assert "confirmation page" in problem(page)
    assert status_of(rollout_id) == "RUNNING"
    confirm = fleet.http.get("/ui/rollouts/%d/stop" % rollout_id)
    assert "Stop wave?" in confirm.text
    assert said(confirm.forms["confirm-stop"].submit().follow()) == "Rollout stopped."
    assert status_of(rollout_id) == "STOPPED"
    assert Action.select().where(Action.status == "CANCELED").count() == 2


def test_delete_asks_first_and_then_leaves_the_list(fleet):
    rollout_id = create(fleet)
    post(fleet, rollout_id, "delete", status=400)
    confirm = fleet.http.get("/ui/rollouts/%d/delete" % rollout_id)
    answer = confirm.forms["confirm-delete"].submit()
    assert answer.location.endswith("/ui/rollouts?said=rollout-deleted")
    assert "0 rollouts" in answer.follow().text
    fleet.http.get("/ui/rollouts/%d" % rollout_id, status=404)


def test_retry_makes_a_rollout_of_the_failed_targets(fleet):
    rollout_id = create(fleet)
    post(fleet, rollout_id, "start")
    evaluate()
    report(fleet, "dev-0", "failure")
    for number in (1, 2, 3):
        report(fleet, "dev-%d" % number, "success")
    evaluate()
    assert status_of(rollout_id) == "FINISHED"
    page = fleet.http.get("/ui/rollouts/%d" % rollout_id)
    assert "Retry the failed targets" in buttons(page)
    assert 'data-live' not in page.text
    answer = post(fleet, rollout_id, "retry")
    retried = int(re.search(r"/ui/rollouts/(\d+)\?said=retried", answer.location).group(1))
    assert rollouts.get_rollout("", retried)["name"] == "wave_retry"
    assert rollouts.get_rollout("", retried)["totalTargets"] == 1


def test_a_groups_page_lists_its_targets_with_their_action_paged(fleet):
    for number in range(TARGETS, 30):
        fleet.target("dev-%d" % number, "token-%d" % number)
    rollout_id = create(fleet)
    post(fleet, rollout_id, "start")
    evaluate()
    report(fleet, "dev-0", "success")
    group = rollouts.list_groups("", rollout_id)["content"][0]
    page = fleet.http.get("/ui/rollouts/%d/groups/%d" % (rollout_id, group["id"]))
    assert "30 targets" in page.text and "showing 1–25" in page.text
    assert re.findall(r'data-action-status="([^"]+)"', page.text)[:2] == ["finished", "running"]
    assert 'rel="next"' in page.text
    second = fleet.http.get("/ui/rollouts/%d/groups/%d?offset=25" % (rollout_id, group["id"]))
    assert len(re.findall(r'data-action-status=', second.text)) == 5


def test_the_live_fragment_is_the_rollout_without_the_page_around_it(fleet):
    rollout_id = create(fleet)
    post(fleet, rollout_id, "start")
    evaluate()
    report(fleet, "dev-2", "success")
    fragment = fleet.http.get("/ui/fragment/rollouts/%d" % rollout_id)
    assert fragment.text.lstrip().startswith("<section")
    assert "<html" not in fragment.text and "1 finished" in fragment.text
    assert 'name="csrf"' in fragment.text
    fleet.http.get("/ui/fragment/rollouts/999", status=404)


# --- the overview ----------------------------------------------------------------------------

def test_the_overview_shows_running_and_paused_rollouts_with_a_bar_per_group(fleet):
    running = create(fleet, name="running", groups="2")
    paused = create(fleet, name="paused", query="controllerId==dev-3")
    create(fleet, name="ready", query="controllerId==dev-3")
    for rollout_id in (running, paused):
        post(fleet, rollout_id, "start")
    evaluate()
    post(fleet, paused, "pause")
    fragment = fleet.http.get("/ui/fragment/overview").text
    assert re.findall(r'data-rollout="([^"]+)"', fragment) == ["running", "paused"]
    section = fragment[fragment.index('data-rollout="running"'):
                       fragment.index('data-rollout="paused"')]
    assert section.count('class="bar progress"') == 2
    assert "running, group-2: 0 finished" in section


def test_the_overview_says_when_no_rollout_runs(fleet):
    assert "No rollout is running or paused." in fleet.http.get("/ui").text


# --- sessions and CSRF -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ui/rollouts", "/ui/rollouts/1", "/ui/rollouts/1/groups/1",
                                  "/ui/rollouts/1/stop"])
def test_a_rollout_page_without_a_session_redirects_to_sign_in(server, path):
    response = server.http.get(path)
    assert response.status_int == 303 and "/ui/signin?next=" in response.location


def test_the_rollout_fragment_without_a_session_is_401(server):
    server.http.get("/ui/fragment/rollouts/1", status=401)


@pytest.mark.parametrize("verb", ["start", "stop", "delete", "approve", "retry"])
def test_a_verb_without_a_session_changes_nothing(fleet, verb):
    rollout_id = create(fleet)
    fleet.http.post("/ui/signout", {"csrf": csrf(fleet.http.get("/ui"))})
    response = fleet.http.post("/ui/rollouts/%d/%s" % (rollout_id, verb),
                               {"confirm": "yes"})
    assert response.status_int == 303 and response.location.endswith("/ui/signin")
    assert status_of(rollout_id) == "READY"


def test_the_create_form_without_its_csrf_token_is_403(fleet):
    form = create_form(fleet)
    form["csrf"] = "forged"
    form.submit(status=403)
    assert Rollout.select().count() == 0


@pytest.mark.parametrize("verb", ["start", "stop", "delete"])
def test_a_verb_without_its_csrf_token_is_403(fleet, verb):
    rollout_id = create(fleet)
    post(fleet, rollout_id, verb, status=403, csrf="forged", confirm="yes")
    assert status_of(rollout_id) == "READY"
