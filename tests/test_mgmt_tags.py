"""Management API over HTTP: target tags and distribution set tags (mgmt-contract §12.3, §4).

CRUD of both kinds, assignment in both body forms hawkBit has taken (an array of ids, and the
older array of objects) with `onNotFoundPolicy` for targets, the tagged targets and sets,
`GET /targets/{id}/tags`, and `tag==x` in target and set queries.

Project decisions tested as such: every assignment call answers 204 (hawkBit 1.x; its older
object form answered 200 with the tagged targets), `PUT .../assigned` (hawkBit 0.6 to 1.0) is
the same as POST, an id given twice counts once, and an empty list is a 400.
"""

import pytest
from mgmt import (ALREADY_EXISTS, API, AUDIT, BASE, CONSTRAINT, NOT_FOUND, NOT_READABLE,
                  RSQL_FIELD, SORT_FIELD, error)


NOT_FOUND_CLASS = "org.eclipse.hawkbit.repository.exception.EntityNotFoundException"


def framework_error(response, status):
    assert response.status_int == status, response.body
    assert set(response.json) == {"timestamp", "status", "error"}
    assert response.json["status"] == status


def create_tags(api, kind, *names, status=201):
    return api.http.post_json("%s/%s" % (API, kind), [{"name": name} for name in names],
                              status=status)


def tagged(api, kind, tag_id, query=""):
    page = api.http.get("%s/%s/%d/assigned%s" % (API, kind, tag_id, query)).json
    key = "controllerId" if kind == "targettags" else "id"
    return [entry[key] for entry in page["content"]]


def targets(api, *controller_ids):
    for controller_id in controller_ids:
        api.target(controller_id, "token-" + controller_id)


def target_ids(api, q):
    return [t["controllerId"] for t in
            api.http.get(API + "/targets", {"q": q}).json["content"]]


# --- target tags: the tags themselves ---------------------------------------------------------

def test_create_target_tags_answers_201_with_each_tag(api):
    created = api.http.post_json(API + "/targettags", [
        {"name": "line-3", "description": "production line 3", "colour": "#ff0000"},
        {"name": "lab"}], status=201).json
    assert [tag["name"] for tag in created] == ["line-3", "lab"]
    first = created[0]
    assert set(first) == AUDIT | {"id", "name", "description", "colour", "_links"}
    assert (first["description"], first["colour"], first["createdBy"]) == \
        ("production line 3", "#ff0000", "admin")
    assert first["_links"] == {"self": {"href": BASE + API + "/targettags/%d" % first["id"]}}
    assert set(created[1]) == AUDIT | {"id", "name", "_links"}  # nulls are left out


def test_get_target_tag_links_its_targets(api):
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    tag = api.http.get(API + "/targettags/%d" % tag_id).json
    assert tag["_links"] == {
        "self": {"href": BASE + API + "/targettags/%d" % tag_id},
        "assignedTargets": {"href": BASE + API + "/targettags/%d/assigned?offset=0&limit=50"
                            % tag_id}}


def test_duplicate_tag_name_is_409_and_creates_none_of_the_request(api):
    create_tags(api, "targettags", "line-3")
    error(create_tags(api, "targettags", "new", "line-3", status=409), 409, ALREADY_EXISTS)
    error(create_tags(api, "targettags", "twice", "twice", status=409), 409, ALREADY_EXISTS)
    assert [tag["name"] for tag in api.http.get(API + "/targettags").json["content"]] == \
        ["line-3"]


@pytest.mark.parametrize("body, status, code", [
    ([{"description": "no name"}], 400, CONSTRAINT),
    ([{"name": "   "}], 400, CONSTRAINT),
    ([{"name": "x" * 129}], 400, CONSTRAINT),
    ([{"name": "ok", "colour": "c" * 17}], 400, CONSTRAINT),
    ([{"name": "ok", "description": "d" * 513}], 400, CONSTRAINT),
    ({"name": "not an array"}, 400, NOT_READABLE),
    (["just a string"], 400, NOT_READABLE),
    ([{"name": {"nested": 1}}], 400, NOT_READABLE),
])
def test_bad_tag_bodies_are_400_with_hawkbits_error(api, body, status, code):
    error(api.http.post_json(API + "/targettags", body, status=status), status, code)
    assert api.http.get(API + "/targettags").json["total"] == 0


def test_tag_list_pages_sorts_and_filters(api):
    create_tags(api, "targettags", "b-lab", "a-line", "c-line")
    page = api.http.get(API + "/targettags", {"limit": 2}).json
    assert (page["total"], page["size"], [t["name"] for t in page["content"]]) == \
        (3, 2, ["b-lab", "a-line"])  # id:ASC by default
    names = [t["name"] for t in api.http.get(API + "/targettags", {
        "q": "name==*line", "sort": "name:DESC"}).json["content"]]
    assert names == ["c-line", "a-line"]
    error(api.http.get(API + "/targettags", {"q": "nope==1"}, status=400), 400, RSQL_FIELD)
    error(api.http.get(API + "/targettags", {"sort": "nope:ASC"}, status=400), 400, SORT_FIELD)


def test_update_tag_changes_the_fields_given_and_keeps_the_rest(api):
    tag_id = api.http.post_json(API + "/targettags", [
        {"name": "line-3", "description": "old", "colour": "red"}]).json[0]["id"]
    updated = api.http.put_json(API + "/targettags/%d" % tag_id,
                                {"colour": "blue", "description": None}, status=200).json
    assert (updated["name"], updated["description"], updated["colour"]) == \
        ("line-3", "old", "blue")
    assert "assignedTargets" in updated["_links"]
    renamed = api.http.put_json(API + "/targettags/%d" % tag_id, {"name": "line-4"}).json
    assert renamed["name"] == "line-4"


def test_renaming_a_tag_to_a_taken_name_is_409(api):
    first, second = [t["id"] for t in create_tags(api, "targettags", "a", "b").json]
    error(api.http.put_json(API + "/targettags/%d" % second, {"name": "a"}, status=409),
          409, ALREADY_EXISTS)
    api.http.put_json(API + "/targettags/%d" % first, {"name": "a"}, status=200)  # itself


def test_unknown_tag_is_404_naming_it(api):
    body = error(api.http.get(API + "/targettags/4711", status=404), 404, NOT_FOUND)
    assert body["exceptionClass"] == NOT_FOUND_CLASS
    assert body["info"] == {"type": "TargetTag", "entityId": 4711}
    for method in ("put_json", "delete"):
        args = ({"name": "x"},) if method == "put_json" else ()
        error(getattr(api.http, method)(API + "/targettags/4711", *args, status=404), 404,
              NOT_FOUND)
    error(api.http.get(API + "/targettags/4711/assigned", status=404), 404, NOT_FOUND)
    error(api.http.post_json(API + "/targettags/4711/assigned", ["dev-1"], status=404), 404,
          NOT_FOUND)


def test_a_tag_id_that_is_not_a_number_is_a_framework_400(api):
    framework_error(api.http.get(API + "/targettags/abc", status=400), 400)


def test_delete_tag_is_204_and_its_targets_lose_it(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    api.http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1"], status=204)
    response = api.http.delete(API + "/targettags/%d" % tag_id, status=204)
    assert response.body == b""
    api.http.get(API + "/targettags/%d" % tag_id, status=404)
    assert api.http.get(API + "/targets/dev-1/tags").json == []


# --- target tags: assignment --------------------------------------------------------------------

def test_assign_controller_ids_is_204_and_the_targets_carry_the_tag(api):
    targets(api, "dev-1", "dev-2", "dev-3")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    response = api.http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-2", "dev-1"],
                                  status=204)
    assert response.body == b""
    assert tagged(api, "targettags", tag_id) == ["dev-1", "dev-2"]  # creation order
    tags = api.http.get(API + "/targets/dev-1/tags").json
    assert [tag["name"] for tag in tags] == ["line-3"]
    assert tags[0]["_links"] == {"self": {"href": BASE + API + "/targettags/%d" % tag_id}}
    assert api.http.get(API + "/targets/dev-3/tags").json == []
    # Tagging again changes nothing.
    api.http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1"], status=204)
    assert tagged(api, "targettags", tag_id) == ["dev-1", "dev-2"]


def test_assign_takes_the_older_object_form_and_put_too(api):
    targets(api, "dev-1", "dev-2", "dev-3")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    api.http.post_json(API + "/targettags/%d/assigned" % tag_id,
                       [{"controllerId": "dev-1"}, "dev-2"], status=204)
    api.http.put_json(API + "/targettags/%d/assigned" % tag_id, [{"controllerId": "dev-3"}],
                      status=204)
    assert tagged(api, "targettags", tag_id) == ["dev-1", "dev-2", "dev-3"]


def test_unknown_controller_ids_fail_by_default_and_tag_nothing(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    for policy in ({}, {"onNotFoundPolicy": "FAIL"}):
        response = api.http.post_json(API + "/targettags/%d/assigned" % tag_id
                                      + ("?onNotFoundPolicy=FAIL" if policy else ""),
                                      ["dev-1", "ghost-1", "ghost-2"], status=404)
        body = error(response, 404, NOT_FOUND)
        assert body["exceptionClass"] == NOT_FOUND_CLASS
        assert body["info"] == {"type": "Target", "entityId": ["ghost-1", "ghost-2"]}
        assert "ghost-1" in body["message"] and "ghost-2" in body["message"]
    assert tagged(api, "targettags", tag_id) == []


def test_on_what_found_and_fail_tags_the_known_targets_then_answers_404(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    body = error(api.http.post_json(
        API + "/targettags/%d/assigned?onNotFoundPolicy=ON_WHAT_FOUND_AND_FAIL" % tag_id,
        ["dev-1", "ghost"], status=404), 404, NOT_FOUND)
    assert body["info"] == {"type": "Target", "entityId": ["ghost"]}
    assert tagged(api, "targettags", tag_id) == ["dev-1"]


def test_on_what_found_and_success_tags_the_known_targets_silently(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    api.http.post_json(
        API + "/targettags/%d/assigned?onNotFoundPolicy=on_what_found_and_success" % tag_id,
        ["ghost", "dev-1"], status=204)
    assert tagged(api, "targettags", tag_id) == ["dev-1"]


def test_an_unknown_on_not_found_policy_is_a_framework_400(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    framework_error(api.http.post_json(
        API + "/targettags/%d/assigned?onNotFoundPolicy=SOMETIMES" % tag_id, ["dev-1"],
        status=400), 400)
    assert tagged(api, "targettags", tag_id) == []


def test_unassign_a_list_with_each_policy(api):
    targets(api, "dev-1", "dev-2", "dev-3")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    url = API + "/targettags/%d/assigned" % tag_id
    api.http.post_json(url, ["dev-1", "dev-2", "dev-3"], status=204)
    error(api.http.delete_json(url, ["dev-1", "ghost"], status=404), 404, NOT_FOUND)
    assert tagged(api, "targettags", tag_id) == ["dev-1", "dev-2", "dev-3"]
    error(api.http.delete_json(url + "?onNotFoundPolicy=ON_WHAT_FOUND_AND_FAIL",
                               ["dev-1", "ghost"], status=404), 404, NOT_FOUND)
    assert tagged(api, "targettags", tag_id) == ["dev-2", "dev-3"]
    api.http.delete_json(url + "?onNotFoundPolicy=ON_WHAT_FOUND_AND_SUCCESS",
                         [{"controllerId": "dev-2"}, "ghost"], status=204)
    assert tagged(api, "targettags", tag_id) == ["dev-3"]


def test_assign_and_unassign_one_target_by_path(api):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    url = API + "/targettags/%d/assigned/dev-1" % tag_id
    assert api.http.post(url, status=204).body == b""
    assert tagged(api, "targettags", tag_id) == ["dev-1"]
    assert api.http.delete(url, status=204).body == b""
    assert tagged(api, "targettags", tag_id) == []
    api.http.delete(url, status=204)  # not tagged: nothing to do
    body = error(api.http.post(API + "/targettags/%d/assigned/ghost" % tag_id, status=404),
                 404, NOT_FOUND)
    assert body["info"] == {"type": "Target", "entityId": ["ghost"]}
    error(api.http.post(API + "/targettags/4711/assigned/dev-1", status=404), 404, NOT_FOUND)


@pytest.mark.parametrize("body, code", [
    ([], CONSTRAINT),
    ({"controllerId": "dev-1"}, NOT_READABLE),
    ([["dev-1"]], NOT_READABLE),
    ([{"id": "dev-1"}], CONSTRAINT),
    ([None], CONSTRAINT),
])
def test_bad_assignment_bodies_are_400_and_tag_nothing(api, body, code):
    targets(api, "dev-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    error(api.http.post_json(API + "/targettags/%d/assigned" % tag_id, body, status=400),
          400, code)
    assert tagged(api, "targettags", tag_id) == []


def test_tags_of_an_unknown_target_is_404(api):
    error(api.http.get(API + "/targets/ghost/tags", status=404), 404, NOT_FOUND)


def test_deleting_a_target_takes_it_off_its_tags(api):
    targets(api, "dev-1", "dev-2")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    api.http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1", "dev-2"])
    api.http.delete(API + "/targets/dev-1", status=204)
    assert tagged(api, "targettags", tag_id) == ["dev-2"]


def test_tagged_targets_page_filters_and_sorts(api):
    targets(api, "dev-1", "dev-2", "lab-1")
    tag_id = create_tags(api, "targettags", "line-3").json[0]["id"]
    api.http.post_json(API + "/targettags/%d/assigned" % tag_id, ["lab-1", "dev-2", "dev-1"])
    assert tagged(api, "targettags", tag_id, "?q=controllerId==dev-*&sort=controllerId:DESC") \
        == ["dev-2", "dev-1"]
    page = api.http.get(API + "/targettags/%d/assigned?limit=1&offset=1" % tag_id).json
    assert (page["total"], page["size"], page["content"][0]["controllerId"]) == (3, 1, "dev-2")
    assert page["content"][0]["_links"]["self"]["href"] == BASE + API + "/targets/dev-2"


# --- tag in target queries ----------------------------------------------------------------------

def test_tag_in_a_target_query(api):
    targets(api, "dev-1", "dev-2", "dev-3")
    line, lab = [t["id"] for t in create_tags(api, "targettags", "Line-3", "lab").json]
    api.http.post_json(API + "/targettags/%d/assigned" % line, ["dev-1", "dev-2"])
    api.http.post_json(API + "/targettags/%d/assigned" % lab, ["dev-2"])
    assert target_ids(api, "tag==line-3") == ["dev-1", "dev-2"]  # any case
    assert target_ids(api, "tag.name==lab") == ["dev-2"]
    assert target_ids(api, "tag==line-3;tag==lab") == ["dev-2"]
    assert target_ids(api, "tag!=lab") == ["dev-1", "dev-3"]
    assert target_ids(api, "tag==l*") == ["dev-1", "dev-2"]
    assert target_ids(api, "tag=in=(lab,nothing)") == ["dev-2"]
    assert target_ids(api, 'tag==""') == ["dev-3"]  # no tag at all
    error(api.http.get(API + "/targets", {"sort": "tag:ASC"}, status=400), 400, SORT_FIELD)


# --- distribution set tags ----------------------------------------------------------------------

@pytest.fixture
def sets(api):
    """Three distribution sets: their ids."""
    module = api.module()
    return [api.distribution_set([module], name="set-%d" % n).id for n in range(3)]


def test_distribution_set_tag_crud(api):
    created = api.http.post_json(API + "/distributionsettags", [
        {"name": "stable", "description": "released", "colour": "green"}], status=201).json
    tag_id = created[0]["id"]
    assert set(created[0]) == AUDIT | {"id", "name", "description", "colour", "_links"}
    assert created[0]["_links"] == {
        "self": {"href": BASE + API + "/distributionsettags/%d" % tag_id}}
    tag = api.http.get(API + "/distributionsettags/%d" % tag_id).json
    assert tag["_links"]["assignedDistributionSets"] == {
        "href": BASE + API + "/distributionsettags/%d/assigned?offset=0&limit=50" % tag_id}
    assert api.http.put_json(API + "/distributionsettags/%d" % tag_id,
                             {"name": "lts"}).json["name"] == "lts"
    assert [t["name"] for t in api.http.get(API + "/distributionsettags",
                                            {"q": "name==lts"}).json["content"]] == ["lts"]
    error(create_tags(api, "distributionsettags", "lts", status=409), 409, ALREADY_EXISTS)
    api.http.delete(API + "/distributionsettags/%d" % tag_id, status=204)
    body = error(api.http.get(API + "/distributionsettags/%d" % tag_id, status=404), 404,
                 NOT_FOUND)
    assert body["info"] == {"type": "DistributionSetTag", "entityId": tag_id}


def test_assign_sets_by_id_and_by_the_older_object_form(api, sets):
    tag_id = create_tags(api, "distributionsettags", "stable").json[0]["id"]
    url = API + "/distributionsettags/%d/assigned" % tag_id
    assert api.http.post_json(url, [sets[2], {"distributionSetId": sets[0]}],
                              status=204).body == b""
    assert tagged(api, "distributionsettags", tag_id) == [sets[0], sets[2]]
    page = api.http.get(url).json
    assert page["total"] == 2 and page["content"][0]["name"] == "set-0"
    api.http.delete_json(url, [sets[0]], status=204)
    assert tagged(api, "distributionsettags", tag_id) == [sets[2]]
    api.http.post(url + "/%d" % sets[1], status=204)
    api.http.delete(url + "/%d" % sets[2], status=204)
    assert tagged(api, "distributionsettags", tag_id) == [sets[1]]


def test_an_unknown_set_fails_the_whole_assignment(api, sets):
    tag_id = create_tags(api, "distributionsettags", "stable").json[0]["id"]
    url = API + "/distributionsettags/%d/assigned" % tag_id
    body = error(api.http.post_json(url, [sets[0], 4711], status=404), 404, NOT_FOUND)
    assert body["info"] == {"type": "DistributionSet", "entityId": [4711]}
    assert tagged(api, "distributionsettags", tag_id) == []
    error(api.http.post(url + "/4711", status=404), 404, NOT_FOUND)
    error(api.http.post_json(url, ["not a number"], status=400), 400, NOT_READABLE)
    error(api.http.post_json(url, [{"controllerId": "x"}], status=400), 400, CONSTRAINT)


def test_tag_in_a_set_query_and_a_deleted_set_keeps_its_tag(api, sets):
    tag_id = create_tags(api, "distributionsettags", "stable").json[0]["id"]
    api.http.post_json(API + "/distributionsettags/%d/assigned" % tag_id, sets[:2])
    found = api.http.get(API + "/distributionsets", {"q": "tag==STABLE"}).json["content"]
    assert [s["id"] for s in found] == sets[:2]
    found = api.http.get(API + "/distributionsets", {"q": "tag.name!=stable"}).json["content"]
    assert [s["id"] for s in found] == sets[2:]
    # An assigned set is only marked deleted and keeps its tag; one nothing refers to is
    # deleted for good, and its tag goes with it.
    api.target("dev-1")
    api.http.post_json(API + "/distributionsets/%d/assignedTargets" % sets[0], [{"id": "dev-1"}])
    api.http.delete(API + "/distributionsets/%d" % sets[0], status=204)
    api.http.delete(API + "/distributionsets/%d" % sets[1], status=204)
    assert tagged(api, "distributionsettags", tag_id) == [sets[0]]
