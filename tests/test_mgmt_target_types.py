"""Management API over HTTP: target types and their compatible distribution set types
(mgmt-contract §12.4), a target's type, and the rule they make: a set whose type the target's
type does not list cannot be assigned to it (400 hawkbit.server.error.target.type.incompatible),
whichever way it is assigned: from the set, from the target, offline, or by the device
reporting what it runs (DDI installedBase).

Project decisions tested as such: a target type's `deleted` is always false (a type in use is
never deleted: 409); the target-side assignment body names the set types by `[{"id": n}]`
only.
"""

import pytest

from conftest import DEVICE, token
from mgmt import ALREADY_EXISTS, API, AUDIT, BASE, CONSTRAINT, NOT_FOUND, NOT_READABLE, QUOTA, error


INCOMPATIBLE = "hawkbit.server.error.target.type.incompatible"
IN_USE = "hawkbit.server.error.target.type.used"
KEY_OR_NAME = "hawkbit.server.error.target.type.keyOrNameRequired"
EXCEPTIONS = "org.eclipse.hawkbit.repository.exception."


def set_type_id(api, key):
    return api.http.get(API + "/distributionsettypes", {"q": "key==" + key}).json[
        "content"][0]["id"]


def create_type(api, status=201, **fields):
    return api.http.post_json(API + "/targettypes", [fields], status=status)


def gateway_type(api, *set_type_keys):
    """A target type `gateway` compatible with these set types: its id."""
    return create_type(api, key="gateway", name="Gateway", compatibledistributionsettypes=[
        {"id": set_type_id(api, key)} for key in set_type_keys]).json[0]["id"]


def actions_of(api, controller_id):
    return api.http.get(API + "/targets/%s/actions" % controller_id).json["total"]


# --- the types ----------------------------------------------------------------------------------

def test_create_target_types_answers_201_with_each_type(api):
    os_app = set_type_id(api, "os_app")
    created = api.http.post_json(API + "/targettypes", [
        {"key": "gw", "name": "Gateway", "description": "edge gateway", "colour": "#123456",
         "compatibledistributionsettypes": [{"id": os_app}]},
        {"name": "Sensor"}, {"key": "cam"}], status=201).json
    first = created[0]
    assert set(first) == AUDIT | {"id", "key", "name", "description", "colour", "deleted",
                                  "_links"}
    assert (first["key"], first["name"], first["description"], first["colour"],
            first["deleted"]) == ("gw", "Gateway", "edge gateway", "#123456", False)
    assert first["_links"] == {"self": {"href": BASE + API + "/targettypes/%d" % first["id"]}}
    # Key and name default to each other.
    assert [(t["key"], t["name"]) for t in created[1:]] == [("Sensor", "Sensor"), ("cam", "cam")]
    compatible = api.http.get(API + "/targettypes/%d/compatibledistributionsettypes"
                              % first["id"]).json
    assert [t["key"] for t in compatible] == ["os_app"]


def test_get_target_type_links_its_compatible_set_types(api):
    type_id = gateway_type(api)
    document = api.http.get(API + "/targettypes/%d" % type_id).json
    assert document["_links"] == {
        "self": {"href": BASE + API + "/targettypes/%d" % type_id},
        "compatibledistributionsettypes": {
            "href": BASE + API + "/targettypes/%d/compatibledistributionsettypes" % type_id}}
    body = error(api.http.get(API + "/targettypes/4711", status=404), 404, NOT_FOUND)
    assert body["info"] == {"type": "TargetType", "entityId": 4711}


@pytest.mark.parametrize("body, status, code", [
    ([{"description": "neither key nor name"}], 400, KEY_OR_NAME),
    ([{"key": " ", "name": ""}], 400, KEY_OR_NAME),
    ([{"key": "k" * 65}], 400, CONSTRAINT),
    ([{"name": "n" * 129}], 400, CONSTRAINT),
    ([{"name": "ok", "colour": "c" * 17}], 400, CONSTRAINT),
    ([{"name": "ok", "compatibledistributionsettypes": [{"id": 4711}]}], 404, NOT_FOUND),
    ([{"name": "ok", "compatibledistributionsettypes": [{}]}], 400, CONSTRAINT),
    ([{"name": "ok", "compatibledistributionsettypes": {"id": 1}}], 400, NOT_READABLE),
    ({"name": "not an array"}, 400, NOT_READABLE),
])
def test_bad_target_type_bodies_create_nothing(api, body, status, code):
    body_error = error(api.http.post_json(API + "/targettypes", body, status=status), status,
                       code)
    if code == KEY_OR_NAME:
        assert body_error["exceptionClass"] == \
            EXCEPTIONS + "TargetTypeKeyOrNameRequiredException"
    assert api.http.get(API + "/targettypes").json["total"] == 0


def test_duplicate_key_or_name_is_409_and_creates_none_of_the_request(api):
    create_type(api, key="gw", name="Gateway")
    error(api.http.post_json(API + "/targettypes", [{"key": "new"}, {"key": "gw"}],
                             status=409), 409, ALREADY_EXISTS)
    error(create_type(api, key="other", name="Gateway", status=409), 409, ALREADY_EXISTS)
    assert api.http.get(API + "/targettypes").json["total"] == 1


def test_list_pages_filters_and_sorts(api):
    for key in ("b", "a", "c"):
        create_type(api, key=key, name=key.upper())
    page = api.http.get(API + "/targettypes", {"limit": 2}).json
    assert (page["total"], page["size"], [t["key"] for t in page["content"]]) == \
        (3, 2, ["b", "a"])
    keys = [t["key"] for t in api.http.get(API + "/targettypes", {
        "q": "key=in=(a,c)", "sort": "name:DESC"}).json["content"]]
    assert keys == ["c", "a"]
    assert "compatibledistributionsettypes" not in page["content"][0]["_links"]


def test_update_changes_name_description_and_colour_but_not_the_key(api):
    type_id = create_type(api, key="gw", name="Gateway").json[0]["id"]
    create_type(api, key="other", name="Other")
    updated = api.http.put_json(API + "/targettypes/%d" % type_id, {
        "key": "ignored", "name": "Edge gateway", "colour": "red"}, status=200).json
    assert (updated["key"], updated["name"], updated["colour"]) == ("gw", "Edge gateway", "red")
    assert "compatibledistributionsettypes" in updated["_links"]
    error(api.http.put_json(API + "/targettypes/%d" % type_id, {"name": "Other"}, status=409),
          409, ALREADY_EXISTS)
    error(api.http.put_json(API + "/targettypes/%d" % type_id, {"name": " "}, status=400), 400,
          CONSTRAINT)
    error(api.http.put_json(API + "/targettypes/4711", {"name": "x"}, status=404), 404,
          NOT_FOUND)


def test_delete_an_unused_type_is_204_and_one_in_use_is_409(api):
    type_id = gateway_type(api)
    api.http.post_json(API + "/targets", [{"controllerId": "dev-1", "targetType": type_id}])
    body = error(api.http.delete(API + "/targettypes/%d" % type_id, status=409), 409, IN_USE)
    assert body["exceptionClass"] == EXCEPTIONS + "TargetTypeInUseException"
    api.http.delete(API + "/targets/dev-1/targettype", status=204)
    assert api.http.delete(API + "/targettypes/%d" % type_id, status=204).body == b""
    api.http.get(API + "/targettypes/%d" % type_id, status=404)
    error(api.http.delete(API + "/targettypes/%d" % type_id, status=404), 404, NOT_FOUND)


# --- compatible distribution set types -----------------------------------------------------------

def test_add_and_remove_compatible_set_types(api):
    type_id = gateway_type(api)
    url = API + "/targettypes/%d/compatibledistributionsettypes" % type_id
    os_type, app_type = set_type_id(api, "os"), set_type_id(api, "app")
    assert api.http.get(url).json == []
    assert api.http.post_json(url, [{"id": app_type}, {"id": os_type}], status=204).body == b""
    api.http.post_json(url, [{"id": os_type}], status=204)  # already there: nothing changes
    listed = api.http.get(url).json
    assert [t["key"] for t in listed] == ["os", "app"]
    assert listed[0]["_links"]["self"]["href"] == \
        BASE + API + "/distributionsettypes/%d" % os_type
    assert api.http.delete(url + "/%d" % os_type, status=204).body == b""
    api.http.delete(url + "/%d" % os_type, status=204)  # not there any more: nothing to do
    assert [t["key"] for t in api.http.get(url).json] == ["app"]


def test_compatible_set_types_of_unknown_ids_are_404(api):
    type_id = gateway_type(api)
    url = API + "/targettypes/%d/compatibledistributionsettypes" % type_id
    body = error(api.http.post_json(url, [{"id": set_type_id(api, "os")}, {"id": 4711}],
                                    status=404), 404, NOT_FOUND)
    assert body["info"] == {"type": "DistributionSetType", "entityId": [4711]}
    assert api.http.get(url).json == []
    error(api.http.delete(url + "/4711", status=404), 404, NOT_FOUND)
    error(api.http.get(API + "/targettypes/4711/compatibledistributionsettypes", status=404),
          404, NOT_FOUND)
    error(api.http.post_json(API + "/targettypes/4711/compatibledistributionsettypes",
                             [{"id": set_type_id(api, "os")}], status=404), 404, NOT_FOUND)
    error(api.http.post_json(url, {"id": 1}, status=400), 400, NOT_READABLE)


def test_at_most_fifty_compatible_set_types(api):
    created = api.http.post_json(API + "/distributionsettypes", [
        {"key": "t%d" % n, "name": "T%d" % n} for n in range(48)]).json
    type_id = gateway_type(api, "os", "app")
    url = API + "/targettypes/%d/compatibledistributionsettypes" % type_id
    api.http.post_json(url, [{"id": t["id"]} for t in created], status=204)
    assert len(api.http.get(url).json) == 50
    error(api.http.post_json(url, [{"id": set_type_id(api, "os_app")}], status=429), 429, QUOTA)


def test_a_deleted_set_type_leaves_every_compatible_list(api):
    created = api.http.post_json(API + "/distributionsettypes",
                                 [{"key": "rt", "name": "Runtime"}]).json[0]
    type_id = gateway_type(api, "os", "rt")
    api.http.delete(API + "/distributionsettypes/%d" % created["id"], status=204)
    listed = api.http.get(API + "/targettypes/%d/compatibledistributionsettypes" % type_id).json
    assert [t["key"] for t in listed] == ["os"]


# --- a target's type ----------------------------------------------------------------------------

def test_a_target_created_with_a_type_shows_it(api):
    type_id = gateway_type(api)
    created = api.http.post_json(API + "/targets", [
        {"controllerId": "dev-1", "targetType": type_id}, {"controllerId": "dev-2"}]).json
    assert (created[0]["targetType"], created[0]["targetTypeName"]) == (type_id, "Gateway")
    assert "targetType" not in created[1] and "targetTypeName" not in created[1]
    target = api.http.get(API + "/targets/dev-1").json
    assert target["_links"]["targetType"] == {"href": BASE + API + "/targettypes/%d" % type_id}
    assert "targetType" not in api.http.get(API + "/targets/dev-2").json["_links"]
    listed = api.http.get(API + "/targets").json["content"]
    assert [t.get("targetTypeName") for t in listed] == ["Gateway", None]


def test_a_target_created_with_an_unknown_type_is_404_and_not_created(api):
    body = error(api.http.post_json(API + "/targets", [
        {"controllerId": "dev-1"}, {"controllerId": "dev-2", "targetType": 4711}], status=404),
        404, NOT_FOUND)
    assert body["info"] == {"type": "TargetType", "entityId": 4711}
    assert api.http.get(API + "/targets").json["total"] == 0


def test_update_changes_or_takes_away_the_targets_type(api):
    type_id = gateway_type(api)
    other = create_type(api, key="cam", name="Camera").json[0]["id"]
    api.target("dev-1")
    updated = api.http.put_json(API + "/targets/dev-1", {"targetType": type_id}).json
    assert updated["targetTypeName"] == "Gateway"
    updated = api.http.put_json(API + "/targets/dev-1", {"targetType": str(other)}).json
    assert (updated["targetType"], updated["targetTypeName"]) == (other, "Camera")
    assert api.http.put_json(API + "/targets/dev-1", {"name": "x"}).json["targetType"] == other
    updated = api.http.put_json(API + "/targets/dev-1", {"targetType": -1}).json
    assert "targetType" not in updated and "targetType" not in updated["_links"]
    error(api.http.put_json(API + "/targets/dev-1", {"targetType": 4711}, status=404), 404,
          NOT_FOUND)


def test_assign_and_unassign_a_type_on_the_targets_own_resource(api):
    type_id = gateway_type(api)
    api.target("dev-1")
    url = API + "/targets/dev-1/targettype"
    assert api.http.post_json(url, {"id": type_id}, status=204).body == b""
    assert api.http.get(API + "/targets/dev-1").json["targetType"] == type_id
    assert api.http.delete(url, status=204).body == b""
    assert "targetType" not in api.http.get(API + "/targets/dev-1").json
    error(api.http.post_json(url, {"id": 4711}, status=404), 404, NOT_FOUND)
    error(api.http.post_json(url, {}, status=400), 400, CONSTRAINT)
    error(api.http.post_json(url, [{"id": type_id}], status=400), 400, NOT_READABLE)
    error(api.http.post_json(API + "/targets/ghost/targettype", {"id": type_id}, status=404),
          404, NOT_FOUND)
    error(api.http.delete(API + "/targets/ghost/targettype", status=404), 404, NOT_FOUND)


def test_the_type_in_a_target_query(api):
    gateway = gateway_type(api)
    camera = create_type(api, key="cam", name="Camera").json[0]["id"]
    api.http.post_json(API + "/targets", [
        {"controllerId": "gw-1", "targetType": gateway},
        {"controllerId": "cam-1", "targetType": camera}, {"controllerId": "plain"}])

    def found(q):
        return [t["controllerId"] for t in
                api.http.get(API + "/targets", {"q": q}).json["content"]]
    assert found("type==gateway") == ["gw-1"]
    assert found("type.key==CAM") == ["cam-1"]
    assert found("type.name==Gate*") == ["gw-1"]
    assert found("type.id==%d" % camera) == ["cam-1"]
    assert found("targetType.key==gateway") == ["gw-1"]
    assert found("type=is=null") == ["plain"]
    assert found("type!=gateway") == ["cam-1", "plain"]
    by_type = api.http.get(API + "/targets", {"sort": "type.name:ASC"}).json["content"]
    assert [t["controllerId"] for t in by_type][1:] == ["cam-1", "gw-1"]


# --- the compatibility rule, on every way of assigning -------------------------------------------

@pytest.fixture
def incompatible(api):
    """dev-1 of type Gateway (compatible with os only), dev-2 without a type, an app set and
    an os set: their ids."""
    type_id = gateway_type(api, "os")
    api.http.post_json(API + "/targets", [
        {"controllerId": "dev-1", "targetType": type_id, "securityToken": "token-1"},
        {"controllerId": "dev-2"}])
    app = api.distribution_set([api.module(name="app", type_key="application")],
                               name="app-set", type_key="app")
    os_set = api.distribution_set([api.module(name="fw")], name="os-set", type_key="os")
    return app.id, os_set.id


def check_incompatible(response):
    body = error(response, 400, INCOMPATIBLE)
    assert body["exceptionClass"] == EXCEPTIONS + "IncompatibleTargetTypeException"
    assert body["message"] == \
        "Targets of types [Gateway] are not compatible with distribution set of type App(s) only"


@pytest.mark.parametrize("offline", [False, True])
def test_set_side_assignment_of_an_incompatible_set_is_400_and_assigns_nothing(
        api, incompatible, offline):
    app, _ = incompatible
    url = API + "/distributionsets/%d/assignedTargets%s" % (app, "?offline=true" * offline)
    check_incompatible(api.http.post_json(url, [{"id": "dev-2"}, {"id": "dev-1"}], status=400))
    assert (actions_of(api, "dev-1"), actions_of(api, "dev-2")) == (0, 0)
    assert api.http.get(API + "/distributionsets/%d" % app).json["locked"] is False


@pytest.mark.parametrize("offline", [False, True])
def test_target_side_assignment_of_an_incompatible_set_is_400(api, incompatible, offline):
    app, _ = incompatible
    url = API + "/targets/dev-1/assignedDS%s" % ("?offline=true" * offline)
    check_incompatible(api.http.post_json(url, {"id": app}, status=400))
    check_incompatible(api.http.post_json(url, [{"id": app}], status=400))
    assert actions_of(api, "dev-1") == 0
    assert api.http.get(API + "/targets/dev-1/assignedDS", status=204).body == b""


def test_a_device_reporting_an_incompatible_installed_set_is_400(api, incompatible):
    response = api.http.put_json(DEVICE + "/dev-1/installedBase",
                                 {"name": "app-set", "version": "1.0"},
                                 headers=token("token-1"),
                                 status=400)
    check_incompatible(response)
    assert actions_of(api, "dev-1") == 0


def test_compatible_sets_and_untyped_targets_assign_as_before(api, incompatible):
    app, os_set = incompatible
    result = api.http.post_json(API + "/distributionsets/%d/assignedTargets" % app,
                                [{"id": "dev-2"}]).json
    assert result["assigned"] == 1
    result = api.http.post_json(API + "/targets/dev-1/assignedDS", {"id": os_set}).json
    assert result["assigned"] == 1


def test_making_the_set_type_compatible_lets_the_assignment_through(api, incompatible):
    app, _ = incompatible
    type_id = api.http.get(API + "/targets/dev-1").json["targetType"]
    url = API + "/distributionsets/%d/assignedTargets" % app
    check_incompatible(api.http.post_json(url, [{"id": "dev-1"}], status=400))
    api.http.post_json(API + "/targettypes/%d/compatibledistributionsettypes" % type_id,
                       [{"id": set_type_id(api, "app")}], status=204)
    assert api.http.post_json(url, [{"id": "dev-1"}]).json["assigned"] == 1


def test_taking_the_type_away_makes_any_set_assignable(api, incompatible):
    app, _ = incompatible
    api.http.delete(API + "/targets/dev-1/targettype", status=204)
    result = api.http.post_json(API + "/targets/dev-1/assignedDS?offline=true",
                                {"id": app}).json
    assert result["assigned"] == 1
