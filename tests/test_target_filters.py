"""Management API over HTTP: target filters and their auto-assigned set (mgmt-contract §12.1,
with §3 errors and §4 paging, sorting and RSQL).

What auto-assignment then does with the targets is tests/test_auto_assign.py.

Project decisions tested as such:
* the filter list's `total` counts the filters that match `q` (hawkBit counts all filters);
* an autoAssignDS body without `id` is 400 constraintViolation (hawkBit removes the
  auto-assignment instead).
"""

import pytest

from storage import autoassign
from mgmt import (ADMIN, ALREADY_EXISTS, API, BASE, CONSTRAINT, DELETED, INCOMPLETE, NOT_FOUND,
                  NOT_READABLE, RSQL_FIELD, RSQL_SYNTAX, SORT_FIELD)


INVALID_TYPE = "hawkbit.server.error.repo.invalidAutoAssignActionType"


@pytest.fixture
def http(server):
    server.http.set_authorization(ADMIN)
    return server.http


def error(response, status, code):
    assert response.status_int == status, response.body
    assert response.json["errorCode"] == code, response.json
    return response.json


def create(http, name="nightly", query="attribute.channel==nightly", status=201):
    return http.post_json(API + "/targetfilters", {"name": name, "query": query},
                          status=status).json


def complete_set(server, name="fw-set", version="1.0"):
    return server.distribution_set([server.module(name=name, version=version)], name=name,
                                   version=version)


def auto_assign(http, filter_id, body, status=200):
    return http.post_json(API + "/targetfilters/%d/autoAssignDS" % filter_id, body,
                          status=status)


def links(filter_id):
    return {"self": {"href": BASE + API + "/targetfilters/%d" % filter_id},
            "autoAssignDS": {"href": BASE + API + "/targetfilters/%d/autoAssignDS" % filter_id}}


# --- create --------------------------------------------------------------------------------

def test_create_answers_201_with_every_auto_assignment_field_present_and_null(http):
    created = create(http)
    assert created == {
        "id": created["id"], "name": "nightly", "query": "attribute.channel==nightly",
        "autoAssignDistributionSet": None, "autoAssignActionType": None,
        "autoAssignWeight": None, "confirmationRequired": None,
        "createdBy": "admin", "createdAt": created["createdAt"],
        "lastModifiedBy": "admin", "lastModifiedAt": created["createdAt"],
        "_links": links(created["id"])}
    assert http.get(API + "/targetfilters/%d" % created["id"]).json == created


def test_create_takes_one_object_not_an_array(http):
    response = http.post_json(API + "/targetfilters", [{"name": "a", "query": "name==a"}],
                              status=400)
    error(response, 400, NOT_READABLE)
    assert http.get(API + "/targetfilters").json["total"] == 0


def test_create_ignores_unknown_properties(http):
    response = http.post_json(API + "/targetfilters", {
        "name": "lab", "query": "name==lab-*", "autoAssignDistributionSet": False,
        "_links": {}}, status=201)
    assert response.json["autoAssignDistributionSet"] is None


@pytest.mark.parametrize("body", [
    {"query": "name==a"}, {"name": None, "query": "name==a"}, {"name": " ", "query": "name==a"},
    {"name": "a" * 129, "query": "name==a"}, {"name": "a"}, {"name": "a", "query": "  "},
    {"name": "a", "query": "name==" + "a" * 1020},
], ids=["no name", "null name", "blank name", "long name", "no query", "blank query",
        "long query"])
def test_create_without_a_name_or_a_query_is_400_constraint_violation(http, body):
    error(http.post_json(API + "/targetfilters", body, status=400), 400, CONSTRAINT)


@pytest.mark.parametrize("query, code", [
    ("name=abc", RSQL_SYNTAX), ("name==", RSQL_SYNTAX), ("(name==a", RSQL_SYNTAX),
    ("nope==1", RSQL_FIELD), ("assignedDS==x", RSQL_FIELD), ("attribute==x", RSQL_FIELD),
])
def test_create_with_a_query_the_target_list_refuses_is_400_and_creates_nothing(http, query,
                                                                                  code):
    error(http.post_json(API + "/targetfilters", {"name": "bad", "query": query}, status=400),
          400, code)
    assert http.get(API + "/targetfilters").json["total"] == 0


def test_create_with_a_name_taken_is_409(http):
    create(http, name="lab")
    error(http.post_json(API + "/targetfilters", {"name": "lab", "query": "name==x"},
                         status=409), 409, ALREADY_EXISTS)


def test_create_with_a_body_that_is_no_json_is_400_and_with_text_plain_415(http):
    error(http.post(API + "/targetfilters", "abc", content_type="application/json",
                    status=400), 400, NOT_READABLE)
    response = http.post(API + "/targetfilters", '{"name": "a", "query": "name==a"}',
                         content_type="text/plain", status=415)
    assert response.json["status"] == 415


# --- read, update, delete -------------------------------------------------------------------

def test_an_unknown_filter_is_404_for_every_operation(http):
    for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/autoAssignDS"),
                         ("POST", "/autoAssignDS"), ("DELETE", "/autoAssignDS")):
        body = {"id": 1} if method == "POST" else {}
        response = http.request(API + "/targetfilters/4395" + path, method=method,
                                json=body if method in ("PUT", "POST") else None,
                                expect_errors=True)
        document = error(response, 404, NOT_FOUND)
        assert document["info"] == {"type": "TargetFilterQuery", "entityId": 4395}, path


def test_a_filter_id_that_is_no_number_is_a_framework_400(http):
    assert http.get(API + "/targetfilters/abc", status=400).json["status"] == 400


def test_put_changes_only_the_fields_given(http):
    created = create(http, name="a", query="name==a")
    renamed = http.put_json(API + "/targetfilters/%d" % created["id"], {"name": "b"}).json
    assert (renamed["name"], renamed["query"]) == ("b", "name==a")
    assert renamed["_links"] == links(created["id"])
    requeried = http.put_json(API + "/targetfilters/%d" % created["id"],
                              {"query": "name==b", "id": 99}).json
    assert (requeried["id"], requeried["name"], requeried["query"]) == (created["id"], "b",
                                                                          "name==b")
    unchanged = http.put_json(API + "/targetfilters/%d" % created["id"], {}).json
    assert (unchanged["name"], unchanged["query"]) == ("b", "name==b")


def test_put_a_name_another_filter_has_is_409_and_an_invalid_query_400(http):
    create(http, name="a", query="name==a")
    second = create(http, name="b", query="name==b")
    path = API + "/targetfilters/%d" % second["id"]
    error(http.put_json(path, {"name": "a"}, status=409), 409, ALREADY_EXISTS)
    error(http.put_json(path, {"query": "name=b"}, status=400), 400, RSQL_SYNTAX)
    error(http.put_json(path, {"name": ""}, status=400), 400, CONSTRAINT)
    assert http.get(path).json["name"] == "b"
    assert http.put_json(path, {"name": "b"}).json["name"] == "b"  # its own name is no clash


def test_delete_answers_204_and_the_filter_is_gone(http):
    created = create(http)
    response = http.delete(API + "/targetfilters/%d" % created["id"], status=204)
    assert response.body == b""
    http.get(API + "/targetfilters/%d" % created["id"], status=404)


# --- the list -------------------------------------------------------------------------------

def test_the_list_pages_in_id_order(http):
    ids = [create(http, name="f%d" % n, query="name==%d" % n)["id"] for n in range(5)]
    page = http.get(API + "/targetfilters?offset=2&limit=2").json
    assert (page["total"], page["size"]) == (5, 2)
    assert [item["id"] for item in page["content"]] == ids[2:4]
    assert page["content"][0]["_links"] == {
        "self": {"href": BASE + API + "/targetfilters/%d" % ids[2]}}


def test_the_list_sorts_and_filters_by_name(http):
    for name in ("beta", "alpha", "gamma ray"):
        create(http, name=name, query="name==x")
    names = [f["name"] for f in http.get(API + "/targetfilters?sort=name:DESC").json["content"]]
    assert names == ["gamma ray", "beta", "alpha"]
    found = http.get(API + "/targetfilters", {"q": "name=='gamma ray'"}).json
    assert (found["total"], found["content"][0]["name"]) == (1, "gamma ray")
    assert http.get(API + "/targetfilters?q=name==*a").json["total"] == 2  # not gamma ray
    assert http.get(API + "/targetfilters?q=name==al*").json["total"] == 1


def test_the_list_refuses_unknown_query_and_sort_fields(http):
    error(http.get(API + "/targetfilters?q=query==x", status=400), 400, RSQL_FIELD)
    error(http.get(API + "/targetfilters?q=autoAssignDistributionSet==x", status=400), 400,
          RSQL_FIELD)
    error(http.get(API + "/targetfilters?sort=query:ASC", status=400), 400, SORT_FIELD)


def test_the_list_finds_filters_by_their_sets_name_and_version(http, server):
    assigning = create(http, name="a", query="name==a")
    create(http, name="b", query="name==b")
    auto_assign(http, assigning["id"], {"id": complete_set(server, "gw-os", "2.1").id})
    found = http.get(API + "/targetfilters", {
        "q": "autoAssignDistributionSet.name==gw-os;autoAssignDistributionSet.version==2.1"}).json
    assert [item["id"] for item in found["content"]] == [assigning["id"]]
    assert http.get(API + "/targetfilters?q=autoAssignDistributionSet.version==2.0").json[
        "total"] == 0


def test_representation_full_and_a_single_get_link_the_auto_assigned_set(http, server):
    created = create(http)
    auto_assign(http, created["id"], {"id": complete_set(server, "gw os", "2.1").id})
    href = BASE + API + "/distributionsets?q=name==gw%20os;version==2.1&offset=0&limit=50"
    full = http.get(API + "/targetfilters?representation=full").json["content"][0]
    assert full["_links"] == {"self": links(created["id"])["self"], "DS": {"href": href}}
    single = http.get(API + "/targetfilters/%d" % created["id"]).json
    assert single["_links"] == dict(links(created["id"]), DS={"href": href})
    compact = http.get(API + "/targetfilters").json["content"][0]
    assert set(compact["_links"]) == {"self"}


# --- autoAssignDS ---------------------------------------------------------------------------

def test_auto_assign_defaults_to_forced_and_weight_1000(http, server):
    created = create(http)
    distribution_set = complete_set(server)
    response = auto_assign(http, created["id"], {"id": distribution_set.id})
    document = response.json
    assert (document["autoAssignDistributionSet"], document["autoAssignActionType"],
            document["autoAssignWeight"], document["confirmationRequired"]) == \
        (distribution_set.id, "forced", 1000, None)
    assert document["_links"] == links(created["id"])
    assert document["lastModifiedAt"] >= created["lastModifiedAt"]
    assert http.get(API + "/targetfilters/%d" % created["id"]).json[
        "autoAssignDistributionSet"] == distribution_set.id


@pytest.mark.parametrize("kind", ["forced", "soft", "downloadonly", "SOFT"])
def test_auto_assign_takes_forced_soft_and_downloadonly_with_a_weight(http, server, kind):
    created = create(http)
    document = auto_assign(http, created["id"], {"id": str(complete_set(server).id),
                                                 "type": kind, "weight": 200}).json
    assert (document["autoAssignActionType"], document["autoAssignWeight"]) == \
        (kind.lower(), 200)


def test_auto_assign_with_timeforced_is_400_invalid_auto_assign_action_type(http, server):
    created = create(http)
    document = error(auto_assign(http, created["id"], {"id": complete_set(server).id,
                                                       "type": "timeforced"}, status=400),
                     400, INVALID_TYPE)
    assert document["exceptionClass"] == \
        "org.eclipse.hawkbit.repository.exception.InvalidAutoAssignActionTypeException"
    assert http.get(API + "/targetfilters/%d" % created["id"]).json[
        "autoAssignDistributionSet"] is None


@pytest.mark.parametrize("body, code", [
    ({"type": "forced"}, CONSTRAINT),
    ({"id": None}, CONSTRAINT),
    ({"id": "one"}, NOT_READABLE),
    ({"id": 1, "type": "unknown"}, NOT_READABLE),
    ({"id": 1, "weight": 1001}, CONSTRAINT),
    ({"id": 1, "weight": -1}, CONSTRAINT),
    ({"id": 1, "weight": "heavy"}, NOT_READABLE),
    ({"id": 1, "confirmationRequired": "maybe"}, NOT_READABLE),
], ids=["no id", "null id", "id no number", "unknown type", "weight 1001", "weight -1",
        "weight no number", "confirmation no boolean"])
def test_auto_assign_with_a_bad_body_is_400_and_changes_nothing(http, server, body, code):
    created = create(http)
    complete_set(server)
    error(auto_assign(http, created["id"], body, status=400), 400, code)
    assert http.get(API + "/targetfilters/%d" % created["id"]).json == \
        dict(created, _links=links(created["id"]))


def test_auto_assign_of_an_unknown_set_is_404(http):
    created = create(http)
    document = error(auto_assign(http, created["id"], {"id": 777}, status=404), 404, NOT_FOUND)
    assert document["info"] == {"type": "DistributionSet", "entityId": 777}


def test_auto_assign_of_an_incomplete_set_is_400_incomplete(http, server):
    created = create(http)
    incomplete = server.distribution_set([], name="empty")  # os_app needs an os module
    error(auto_assign(http, created["id"], {"id": incomplete.id}, status=400), 400, INCOMPLETE)


def test_auto_assign_of_a_soft_deleted_set_is_404_deleted(http, server):
    created = create(http)
    distribution_set = complete_set(server)
    server.target("dev-1")
    server.assign(distribution_set, "dev-1")
    http.delete(API + "/distributionsets/%d" % distribution_set.id, status=204)
    assert http.get(API + "/distributionsets/%d" % distribution_set.id).json["deleted"] is True
    error(auto_assign(http, created["id"], {"id": distribution_set.id}, status=404), 404,
          DELETED)


def test_auto_assign_locks_the_set_as_an_assignment_does(http, server):
    distribution_set = complete_set(server)
    auto_assign(http, create(http)["id"], {"id": distribution_set.id})
    document = http.get(API + "/distributionsets/%d" % distribution_set.id).json
    assert document["locked"] is True
    assert document["modules"][0]["locked"] is True


def test_confirmation_required_defaults_to_the_flow_and_shows_while_the_flow_is_on(http,
                                                                                   server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    distribution_set = complete_set(server)
    by_default = auto_assign(http, create(http, name="a")["id"], {"id": distribution_set.id})
    assert by_default.json["confirmationRequired"] is True
    without = auto_assign(http, create(http, name="b")["id"],
                          {"id": distribution_set.id, "confirmationRequired": False})
    assert without.json["confirmationRequired"] is False
    server.configure(**{"user.confirmation.flow.enabled": False})
    assert http.get(API + "/targetfilters/%d" % by_default.json["id"]).json[
        "confirmationRequired"] is None


def test_auto_assign_again_replaces_the_set_and_its_settings(http, server):
    created = create(http)
    first, second = complete_set(server, "one"), complete_set(server, "two")
    auto_assign(http, created["id"], {"id": first.id, "type": "soft", "weight": 5})
    document = auto_assign(http, created["id"], {"id": second.id}).json
    assert (document["autoAssignDistributionSet"], document["autoAssignActionType"],
            document["autoAssignWeight"]) == (second.id, "forced", 1000)


def test_get_auto_assign_ds_is_204_without_a_set_and_the_set_with_one(http, server):
    created = create(http)
    path = API + "/targetfilters/%d/autoAssignDS" % created["id"]
    assert http.get(path, status=204).body == b""
    distribution_set = complete_set(server)
    auto_assign(http, created["id"], {"id": distribution_set.id})
    document = http.get(path).json
    assert document == http.get(API + "/distributionsets/%d" % distribution_set.id).json
    assert set(document["_links"]) == {"self", "modules", "type", "metadata"}


def test_delete_auto_assign_ds_is_204_and_leaves_the_filter_without_a_set(http, server):
    created = create(http)
    auto_assign(http, created["id"], {"id": complete_set(server).id, "type": "soft"})
    path = API + "/targetfilters/%d/autoAssignDS" % created["id"]
    assert http.delete(path, status=204).body == b""
    document = http.get(API + "/targetfilters/%d" % created["id"]).json
    assert (document["autoAssignDistributionSet"], document["autoAssignActionType"],
            document["autoAssignWeight"], document["confirmationRequired"]) == \
        (None, None, None, None)
    http.get(path, status=204)
    http.delete(path, status=204)  # again: nothing to remove, still 204


def test_deleting_a_set_stops_its_auto_assignment_soft_or_hard(http, server):
    kept, gone = complete_set(server, "kept"), complete_set(server, "gone")
    server.target("dev-1")
    server.assign(kept, "dev-1")  # an action refers to it: a soft delete
    first, second = create(http, name="a")["id"], create(http, name="b")["id"]
    auto_assign(http, first, {"id": kept.id})
    auto_assign(http, second, {"id": gone.id})
    for distribution_set in (kept, gone):
        http.delete(API + "/distributionsets/%d" % distribution_set.id, status=204)
    for filter_id in (first, second):
        assert http.get(API + "/targetfilters/%d" % filter_id).json[
            "autoAssignDistributionSet"] is None
    http.get(API + "/distributionsets/%d" % gone.id, status=404)  # hard deleted


def test_a_new_auto_assignment_or_query_starts_a_full_pass(http, server):
    created = create(http, name="a", query="name==a")
    distribution_set = complete_set(server)
    auto_assign(http, created["id"], {"id": distribution_set.id})
    server.target("dev-1")
    autoassign.run(0)
    from storage.models import TargetFilter
    assert TargetFilter.get_by_id(created["id"]).checked_change == autoassign.newest_change()
    http.put_json(API + "/targetfilters/%d" % created["id"], {"name": "renamed"})
    assert TargetFilter.get_by_id(created["id"]).checked_change > 0
    http.put_json(API + "/targetfilters/%d" % created["id"], {"query": "name==b"})
    assert TargetFilter.get_by_id(created["id"]).checked_change == 0


# --- the filters of a set -------------------------------------------------------------------

def test_the_auto_assign_target_filters_of_a_set(http, server):
    distribution_set, other = complete_set(server, "one"), complete_set(server, "two")
    first, second, third = (create(http, name=name)["id"] for name in ("a", "b", "c"))
    for filter_id, target in ((first, distribution_set), (second, other),
                              (third, distribution_set)):
        auto_assign(http, filter_id, {"id": target.id})
    path = API + "/distributionsets/%d/autoAssignTargetFilters" % distribution_set.id
    page = http.get(path).json
    assert (page["total"], page["size"]) == (2, 2)
    assert [item["id"] for item in page["content"]] == [first, third]
    assert page["content"][0]["_links"] == {"self": links(first)["self"]}
    assert [item["id"] for item in http.get(path + "?q=name==c").json["content"]] == [third]
    assert [item["id"] for item in http.get(path + "?sort=id:DESC&limit=1").json[
        "content"]] == [third]
    error(http.get(path + "?q=nope==1", status=400), 400, RSQL_FIELD)


def test_the_auto_assign_target_filters_of_an_unknown_set_is_404(http):
    error(http.get(API + "/distributionsets/777/autoAssignTargetFilters", status=404), 404,
          NOT_FOUND)
