"""The console's targets and software pages (console/) through WebTest: what they show and
what their forms change, with the Management API's rules and errors."""

import hashlib
import json
import re

import pytest

from conftest import DEVICE, token
from storage import fleet, software, tags, tenant
from storage.models import Action, DistributionSet, SoftwareModule, Target
from ui import csrf, problem, said, sign_in


@pytest.fixture
def signed_in(server):
    server.target("dev-1", "token-1", name="Press 1")
    assert sign_in(server.http).status_int == 303
    return server


def controller_ids(page):
    return re.findall(r'<a href="/ui/targets/[^"]+">([^<]+)</a></td>', page.text)


def feedback(server, action_id, execution, result="none", details=(), controller_id="dev-1",
             secret="token-1"):
    body = {"status": {"execution": execution, "result": {"finished": result},
                       "details": list(details)}}
    server.http.post(DEVICE + "/%s/deploymentBase/%d/feedback" % (controller_id, action_id),
                     json.dumps(body), headers=dict(token(secret),
                                                    **{"Content-Type": "application/json"}))


# --- the target list -------------------------------------------------------------------------

@pytest.fixture
def fleet_of_five(signed_in):
    for number in range(2, 6):
        signed_in.target("dev-%d" % number, "token-%d" % number, name="Line %d" % number)
    signed_in.deployment(controller_id="dev-3")
    tags.TARGET_TAGS.create("", [{"name": "hall-b"}], "test")
    tags.TARGET_TAGS.assign_one(1, "dev-4")
    return signed_in


def test_the_target_list_shows_every_target_sorted_by_controller_id(fleet_of_five):
    page = fleet_of_five.http.get("/ui/targets")
    assert controller_ids(page) == ["dev-1", "dev-2", "dev-3", "dev-4", "dev-5"]
    assert "5 targets" in page.text and "Press 1" in page.text


def test_the_text_search_looks_at_ids_and_names(fleet_of_five):
    assert controller_ids(fleet_of_five.http.get("/ui/targets?text=press")) == ["dev-1"]
    assert controller_ids(fleet_of_five.http.get("/ui/targets?text=dev-4")) == ["dev-4"]
    page = fleet_of_five.http.get("/ui/targets?text=" + "%22%2A%5C")  # "*\ literally
    assert controller_ids(page) == [] and "0 targets" in page.text


def test_the_list_filters_by_status_and_tag(fleet_of_five):
    assert controller_ids(fleet_of_five.http.get("/ui/targets?status=pending")) == ["dev-3"]
    assert controller_ids(fleet_of_five.http.get("/ui/targets?tag=hall-b")) == ["dev-4"]
    page = fleet_of_five.http.get("/ui/targets?tag=hall-b")
    assert page.forms["filter"]["tag"].value == "hall-b"


def test_the_rsql_box_is_the_management_apis_query(fleet_of_five):
    page = fleet_of_five.http.get("/ui/targets", {"rsql": "name==Line*;controllerId!=dev-2"})
    assert controller_ids(page) == ["dev-3", "dev-4", "dev-5"]


@pytest.mark.parametrize("rsql", ["name==", "nofield==1", "(name==a"])
def test_a_bad_rsql_query_is_a_400_page_with_the_apis_message(fleet_of_five, rsql):
    page = fleet_of_five.http.get("/ui/targets", {"rsql": rsql}, status=400)
    assert problem(page)


@pytest.mark.parametrize("query", ["status=bogus", "sort=securityToken", "offset=-1",
                                   "offset=ten"])
def test_a_bad_filter_or_sort_is_a_400_page(fleet_of_five, query):
    assert problem(fleet_of_five.http.get("/ui/targets?" + query, status=400))


def test_the_list_sorts_by_name_descending(fleet_of_five):
    page = fleet_of_five.http.get("/ui/targets?sort=name&dir=desc")
    assert controller_ids(page) == ["dev-1", "dev-5", "dev-4", "dev-3", "dev-2"]


def test_the_list_is_paged_with_its_filters_kept(signed_in):
    for number in range(2, 31):
        signed_in.target("dev-%02d" % number, "t-%d" % number)
    first = signed_in.http.get("/ui/targets?text=dev-")
    assert len(controller_ids(first)) == 25 and "showing 1–25" in first.text
    next_page = re.search(r'rel="next" href="([^"]+)"', first.text).group(1)
    second = signed_in.http.get(next_page.replace("&amp;", "&"))
    assert "text=dev-" in re.search(r'rel="prev" href="([^"]+)"', second.text).group(1)
    assert len(controller_ids(second)) == 5 and "rel=\"next\"" not in second.text


def test_creating_a_target_opens_its_page(signed_in):
    form = signed_in.http.get("/ui/targets").forms["new-target"]
    form["controllerId"], form["name"] = "dev-9", "Oven"
    response = form.submit()
    assert response.location.endswith("/ui/targets/dev-9?said=created")
    page = response.follow()
    assert "Oven" in page.text and Target.get(Target.controller_id == "dev-9").name == "Oven"


@pytest.mark.parametrize("controller_id, status", [("dev-1", 409), ("", 400), ("x" * 300, 400)])
def test_a_target_the_api_refuses_is_refused_with_its_status(signed_in, controller_id, status):
    form = signed_in.http.get("/ui/targets").forms["new-target"]
    form["controllerId"] = controller_id
    assert problem(form.submit(status=status))


# --- a target's page -----------------------------------------------------------------------------

def test_a_targets_page_shows_its_facts_attributes_and_sets(signed_in):
    signed_in.http.put(DEVICE + "/dev-1/configData",
                       json.dumps({"data": {"hw": "rev-b", "serial": "<42>"}}),
                       headers=dict(token(), **{"Content-Type": "application/json"}))
    action = signed_in.deployment(controller_id="dev-1")
    feedback(signed_in, action.id, "closed", "success")
    page = signed_in.http.get("/ui/targets/dev-1")
    assert "Press 1" in page.text and "token-1" in page.text and "in sync" in page.text
    assert "<dt>hw</dt><dd>rev-b</dd>" in page.text
    assert "<dd>&lt;42&gt;</dd>" in page.text  # escaped, never markup
    installed = DistributionSet.get_by_id(action.distribution_set_id)
    assert page.text.count("%s %s" % (installed.name, installed.version)) >= 2


def test_every_action_shows_its_whole_history_with_messages(signed_in):
    action = signed_in.deployment(controller_id="dev-1")
    feedback(signed_in, action.id, "proceeding", details=["writing <partition> B"])
    feedback(signed_in, action.id, "closed", "failure", details=["checksum failed"])
    page = signed_in.http.get("/ui/targets/dev-1")
    article = page.html.find(id="action-%d" % action.id)
    text = article.get_text(" ")
    assert "error" in text and "writing <partition> B" in text and "checksum failed" in text
    history = [row.get_text(" ") for row in article.find("tbody").find_all("tr")]
    assert "checksum failed" in history[0] and "writing <partition> B" in history[1]
    assert len(history) == fleet.action_status_list("dev-1", action.id)["total"]
    assert "Cancel" not in text


def test_a_targets_actions_come_twenty_to_a_page_newest_first(signed_in):
    module = signed_in.module()
    distribution_set = signed_in.distribution_set([module])
    ids = []
    for _ in range(23):
        action = signed_in.assign(distribution_set, "dev-1")
        ids.append(action.id)
        signed_in.http.delete("/rest/v1/targets/dev-1/actions/%d" % action.id,
                              headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
        signed_in.http.delete("/rest/v1/targets/dev-1/actions/%d?force=true" % action.id,
                              headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    first = signed_in.http.get("/ui/targets/dev-1")
    shown = [int(n) for n in re.findall(r'<article class="action" id="action-(\d+)"', first.text)]
    assert shown == sorted(ids, reverse=True)[:20] and "Actions <small>(23)" in first.text
    older = first.click("Older actions")
    shown = [int(n) for n in re.findall(r'<article class="action" id="action-(\d+)"', older.text)]
    assert shown == sorted(ids, reverse=True)[20:]
    assert "Newer actions" in older.text and "Older actions" not in older.text
    signed_in.http.get("/ui/targets/dev-1?actions=-1", status=400)


def test_a_missing_target_is_a_404_page(signed_in):
    assert "does not exist" in problem(signed_in.http.get("/ui/targets/nobody", status=404))


def test_assigning_a_set_makes_an_action_the_target_then_sees(signed_in):
    module = signed_in.module(files={"fw.swu": b"x" * 10})
    distribution_set = signed_in.distribution_set([module], name="fw-set", version="2.0")
    form = signed_in.http.get("/ui/targets/dev-1").forms["assign"]
    form["set"] = str(distribution_set.id)
    form["type"] = "soft"
    response = form.submit()
    assert response.location.endswith("/ui/targets/dev-1?said=assigned")
    page = response.follow()
    assert said(page) == "Distribution set assigned." and "fw-set 2.0" in page.text
    action = Action.get(Action.target == Target.get(Target.controller_id == "dev-1").id)
    assert action.distribution_set_id == distribution_set.id
    poll = signed_in.http.get(DEVICE + "/dev-1", headers=token()).json
    assert "deploymentBase" in poll["_links"]


def test_the_assign_form_offers_only_complete_sets_that_are_not_deleted(signed_in):
    module = signed_in.module()
    signed_in.distribution_set([module], name="good")
    signed_in.distribution_set([], name="empty")
    options = signed_in.http.get("/ui/targets/dev-1").forms["assign"]["set"].options
    assert [text for _, _, text in options] == ["good 1.0"]


@pytest.mark.parametrize("fields, status", [({"set": "999"}, 404), ({"set": "x"}, 400),
                                            ({"set": ""}, 400),
                                            ({"set": "1", "type": "later"}, 400)])
def test_a_bad_assignment_is_a_4xx_page(signed_in, fields, status):
    signed_in.distribution_set([signed_in.module()])
    page = signed_in.http.get("/ui/targets/dev-1")
    fields = dict(fields, csrf=csrf(page))
    assert problem(signed_in.http.post("/ui/targets/dev-1/assign", fields, status=status))


def test_an_incomplete_set_is_refused_as_the_api_refuses_it(signed_in):
    empty = signed_in.distribution_set([], name="empty")
    page = signed_in.http.get("/ui/targets/dev-1")
    response = signed_in.http.post("/ui/targets/dev-1/assign",
                                   {"set": str(empty.id), "csrf": csrf(page)}, status=400)
    assert problem(response) == "Distribution set %d lacks a mandatory software module." % empty.id


def test_cancel_then_force_quit_an_action(signed_in):
    action = signed_in.deployment(controller_id="dev-1")
    page = signed_in.http.get("/ui/targets/dev-1")
    cancel = page.forms[[key for key in page.forms if isinstance(key, int)
                         and "/cancel" in page.forms[key].action][0]]
    response = cancel.submit()
    assert response.location.endswith("said=canceled")
    assert Action.get_by_id(action.id).status == "CANCELING"
    page = response.follow()
    assert "Force-quit" in page.text
    force = [form for key, form in page.forms.items() if isinstance(key, int)
             and "/cancel" in form.action][0]
    assert force["force"].value == "true"
    assert force.submit().location.endswith("said=force-canceled")
    assert Action.get_by_id(action.id).status == "CANCELED"


def test_cancelling_a_closed_action_is_the_apis_405(signed_in):
    action = signed_in.deployment(controller_id="dev-1")
    feedback(signed_in, action.id, "closed", "success")
    page = signed_in.http.get("/ui/targets/dev-1")
    assert problem(signed_in.http.post("/ui/targets/dev-1/actions/%d/cancel" % action.id,
                                       {"csrf": csrf(page)}, status=405))
    signed_in.http.post("/ui/targets/dev-1/actions/abc/cancel", {"csrf": csrf(page)},
                        status=400)


def test_tags_are_added_by_name_created_when_new_and_removed(signed_in):
    form = signed_in.http.get("/ui/targets/dev-1").forms["add-tag"]
    form["tag"] = "hall-b"
    page = form.submit().follow()
    assert said(page) == "Tag added." and '<span class="tag">hall-b</span>' in page.text
    signed_in.target("dev-2", "token-2")
    form = signed_in.http.get("/ui/targets/dev-2").forms["add-tag"]
    form["tag"] = "hall-b"
    form.submit()
    assert len(tags.TARGET_TAGS.list("", None, None, 0, 50)["content"]) == 1
    page = signed_in.http.get("/ui/targets/dev-1")
    remove = [form for key, form in page.forms.items() if isinstance(key, int)
              and "/remove" in form.action][0]
    assert said(remove.submit().follow()) == "Tag removed."
    assert tags.tags_of_target("", "dev-1") == []
    assert [tag["name"] for tag in tags.tags_of_target("", "dev-2")] == ["hall-b"]


def test_a_blank_tag_is_a_400_page_and_a_missing_target_404(signed_in):
    token_value = csrf(signed_in.http.get("/ui"))
    signed_in.http.post("/ui/targets/dev-1/tags", {"tag": " ", "csrf": token_value}, status=400)
    signed_in.http.post("/ui/targets/nobody/tags", {"tag": "x", "csrf": token_value}, status=404)
    assert tags.TARGET_TAGS.list("", None, None, 0, 50)["total"] == 0


def test_deleting_a_target_asks_first_and_wants_its_id_typed(signed_in):
    signed_in.deployment(controller_id="dev-1")
    page = signed_in.http.get("/ui/targets/dev-1").click(href="/ui/targets/dev-1/delete")
    assert "Delete dev-1?" in page.text
    form = page.forms["delete-target"]
    form["confirm"] = "dev-2"
    assert "confirm" in problem(form.submit(status=400))
    assert Target.get_or_none(Target.controller_id == "dev-1") is not None
    form["confirm"] = "dev-1"
    response = form.submit()
    assert response.location.endswith("/ui/targets?said=deleted")
    assert said(response.follow()) == "Target deleted."
    assert Target.get_or_none(Target.controller_id == "dev-1") is None


# --- software -----------------------------------------------------------------------------------

def test_the_software_page_lists_modules_and_sets_with_their_modules(signed_in):
    module = signed_in.module(name="kernel", version="5.10")
    signed_in.distribution_set([module], name="base-image", version="7")
    page = signed_in.http.get("/ui/software")
    assert "kernel" in page.text and "base-image" in page.text and "kernel 5.10" in page.text
    assert "complete" in page.text


def test_creating_a_module_opens_its_page(signed_in):
    form = signed_in.http.get("/ui/software").forms["new-module"]
    form["type"], form["name"], form["version"] = "os", "rootfs", "1.2"
    page = form.submit().follow()
    assert "rootfs 1.2" in page.text and "No artifacts yet." in page.text
    form = signed_in.http.get("/ui/software").forms["new-module"]
    form["type"], form["name"], form["version"] = "os", "rootfs", "1.2"
    assert "already exists" in problem(form.submit(status=409))


def test_an_upload_shows_size_and_hashes(signed_in):
    module = signed_in.module(files={})
    content = b"firmware " * 1000
    form = signed_in.http.get("/ui/software/modules/%d" % module.id).forms["upload"]
    form["file"] = ("fw.bin", content)
    response = form.submit()
    assert response.location.endswith("?said=uploaded")
    page = response.follow()
    assert said(page) == "Artifact uploaded."
    assert "fw.bin" in page.text and "8.8 KiB" in page.text
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5):
        assert digest(content).hexdigest() in page.text
    fragment = signed_in.http.get("/ui/fragment/modules/%d/artifacts" % module.id)
    assert "fw.bin" in fragment.text and "<html" not in fragment.text


def test_an_upload_from_the_script_answers_json(signed_in):
    module = signed_in.module(files={})
    page = signed_in.http.get("/ui/software/modules/%d" % module.id)
    action = page.forms["upload"].action
    response = signed_in.http.post(action, upload_files=[("file", "a.bin", b"abc")],
                                   headers={"Accept": "application/json"}, status=201)
    assert response.json["size"] == 3


@pytest.mark.parametrize("content, status", [(b"", 400)])
def test_an_empty_upload_is_a_400_page(signed_in, content, status):
    module = signed_in.module(files={})
    form = signed_in.http.get("/ui/software/modules/%d" % module.id).forms["upload"]
    form["file"] = ("empty.bin", content)
    assert problem(form.submit(status=status))


def test_an_upload_to_a_missing_module_is_404_and_to_a_bad_id_400(signed_in):
    token_value = csrf(signed_in.http.get("/ui"))
    for module_id, status in (("999", 404), ("x", 400)):
        signed_in.http.post("/ui/software/modules/%s/artifacts?csrf=%s" % (module_id, token_value),
                            upload_files=[("file", "a.bin", b"x")], status=status)


def test_an_upload_beyond_the_artifact_limit_is_413(signed_in, server):
    module = signed_in.module(files={})
    limit = server.config["limits", "max_artifact_bytes"]
    token_value = csrf(signed_in.http.get("/ui"))
    response = signed_in.http.post(
        "/ui/software/modules/%d/artifacts?csrf=%s" % (module.id, token_value), b"",
        headers={"Content-Type": "multipart/form-data; boundary=x",
                 "Content-Length": str(limit + (2 << 20))}, status=413)
    assert "larger" in problem(response)


def test_a_set_is_made_from_the_modules_ticked(signed_in):
    first = signed_in.module(name="os-image", version="1")
    signed_in.module(name="app", version="1", type_key="application")
    form = signed_in.http.get("/ui/software").forms["new-set"]
    form["name"], form["version"], form["type"] = "release", "2024.1", "os_app"
    form.get("module", index=1).checked = True  # the list is newest first: os-image second
    response = form.submit()
    assert response.location.endswith("/ui/software?said=created")
    created = software.get_set("", DistributionSet.get(DistributionSet.name == "release").id)
    assert [module["id"] for module in created["modules"]] == [first.id]
    assert "os-image 1" in response.follow().text


def test_a_set_the_api_refuses_is_refused_with_its_message(signed_in):
    module = signed_in.module(name="os-image", version="1")
    signed_in.distribution_set([module], name="release", version="1")
    form = signed_in.http.get("/ui/software").forms["new-set"]
    form["name"], form["version"], form["type"] = "release", "1", "os_app"
    assert "already exists" in problem(form.submit(status=409))
    token_value = csrf(signed_in.http.get("/ui"))
    assert problem(signed_in.http.post("/ui/software/sets", {
        "csrf": token_value, "name": "x", "version": "1", "module": "999"}, status=404))
    assert problem(signed_in.http.post("/ui/software/sets", {
        "csrf": token_value, "name": "", "version": "1"}, status=400))


def test_deleting_a_set_in_use_keeps_it_as_deleted_and_an_unused_one_goes(signed_in):
    action = signed_in.deployment(controller_id="dev-1")
    unused = signed_in.distribution_set([signed_in.module(name="spare")], name="spare")
    token_value = csrf(signed_in.http.get("/ui"))
    for set_id in (action.distribution_set_id, unused.id):
        response = signed_in.http.post("/ui/software/sets/%d/delete" % set_id,
                                       {"csrf": token_value})
        assert response.location.endswith("said=set-deleted")
    assert DistributionSet.get_by_id(action.distribution_set_id).deleted
    assert DistributionSet.get_or_none(DistributionSet.id == unused.id) is None
    signed_in.http.post("/ui/software/sets/999/delete", {"csrf": token_value}, status=404)


def test_a_module_of_a_locked_set_is_not_deleted_the_apis_423(signed_in):
    action = signed_in.deployment(controller_id="dev-1")
    module_id = software.get_set("", action.distribution_set_id)["modules"][0]["id"]
    page = signed_in.http.get("/ui/software/modules/%d" % module_id)
    response = page.forms["delete-module"].submit(status=423)
    assert "locked" in problem(response)
    assert not SoftwareModule.get_by_id(module_id).deleted


def test_deleting_a_free_module_removes_it(signed_in):
    module = signed_in.module(name="scratch")
    page = signed_in.http.get("/ui/software/modules/%d" % module.id)
    response = page.forms["delete-module"].submit()
    assert said(response.follow()) == "Software module deleted."
    assert SoftwareModule.get_or_none(SoftwareModule.id == module.id) is None
    signed_in.http.get("/ui/software/modules/%d" % module.id, status=404)
    signed_in.http.get("/ui/software/modules/nine", status=400)


def test_the_console_and_the_api_see_the_same_settings_store(signed_in):
    tenant.store({"pollingTime": "00:00:45"}, "test")
    assert "(polling time 00:00:45)" in signed_in.http.get("/ui").text
