"""Management API over HTTP: creating, changing and deleting software module types and
distribution set types (mgmt-contract §8.3, §8.4, the Tier 2 writes).

hawkBit's rules: keys and names are unique (types marked deleted keep theirs); only description
and colour change; a type something uses is only marked deleted; the module types of a set
type cannot change once sets of that type exist (403 entityreadonly).

Project decisions tested as such: a type marked deleted cannot be changed (404
hawkbit.server.error.deleted, as hawkBit does for module types); adding module types to a set
type takes `{"id": n}` or an array of them; a module type given as both mandatory and optional
is mandatory, and adding one to the other list moves it.
"""

import pytest

import storage
from conftest import Server
from mgmt import (ALREADY_EXISTS, API, AUDIT, BASE, CONSTRAINT, DELETED, NOT_FOUND, NOT_READABLE,
                  QUOTA)


READ_ONLY = "hawkbit.server.error.entityreadonly"


def error(response, status, code):
    assert response.status_int == status, response.body
    assert response.content_type == "application/json"
    assert response.json["errorCode"] == code, response.json
    return response.json


def module_type(api, status=201, **fields):
    return api.http.post_json(API + "/softwaremoduletypes", [fields], status=status)


def set_type(api, status=201, **fields):
    return api.http.post_json(API + "/distributionsettypes", [fields], status=status)


def type_id(api, collection, key):
    return api.http.get(API + "/" + collection, {"q": "key==" + key}).json["content"][0]["id"]


def member_keys(api, set_type_id, which):
    return [t["key"] for t in api.http.get(API + "/distributionsettypes/%d/%smoduletypes"
                                           % (set_type_id, which)).json]


# --- software module types ----------------------------------------------------------------------

def test_create_module_types_with_defaults_and_given_values(api):
    created = api.http.post_json(API + "/softwaremoduletypes", [
        {"key": "runtime", "name": "Runtime"},
        {"key": "firmware", "name": "Firmware", "description": "MCU image", "colour": "red",
         "maxAssignments": 3, "minArtifacts": 1}], status=201).json
    plain, full = created
    assert set(plain) == AUDIT | {"id", "key", "name", "maxAssignments", "minArtifacts",
                                  "deleted", "_links"}
    assert (plain["maxAssignments"], plain["minArtifacts"], plain["deleted"]) == (1, 0, False)
    assert (full["description"], full["colour"], full["maxAssignments"],
            full["minArtifacts"]) == ("MCU image", "red", 3, 1)
    assert plain["_links"] == {
        "self": {"href": BASE + API + "/softwaremoduletypes/%d" % plain["id"]}}
    # A module of the new type can be created.
    api.http.post_json(API + "/softwaremodules",
                       [{"type": "runtime", "name": "jre", "version": "17"}], status=201)


@pytest.mark.parametrize("body, status, code", [
    ([{"name": "No key"}], 400, CONSTRAINT),
    ([{"key": "nokey"}], 400, CONSTRAINT),
    ([{"key": " ", "name": "Blank"}], 400, CONSTRAINT),
    ([{"key": "k" * 65, "name": "Long"}], 400, CONSTRAINT),
    ([{"key": "k", "name": "K", "maxAssignments": 0}], 400, CONSTRAINT),
    ([{"key": "k", "name": "K", "minArtifacts": -1}], 400, CONSTRAINT),
    ([{"key": "k", "name": "K", "maxAssignments": "many"}], 400, NOT_READABLE),
    ({"key": "k", "name": "K"}, 400, NOT_READABLE),
    ([{"key": "os", "name": "Another OS"}], 409, ALREADY_EXISTS),
    ([{"key": "other", "name": "OS"}], 409, ALREADY_EXISTS),
    ([{"key": "k", "name": "K"}, {"key": "k", "name": "K2"}], 409, ALREADY_EXISTS),
])
def test_bad_module_type_bodies_create_nothing(api, body, status, code):
    error(api.http.post_json(API + "/softwaremoduletypes", body, status=status), status, code)
    assert api.http.get(API + "/softwaremoduletypes").json["total"] == 2  # os, application


def test_update_module_type_changes_description_and_colour_only(api):
    type_id_ = module_type(api, key="runtime", name="Runtime").json[0]["id"]
    updated = api.http.put_json(API + "/softwaremoduletypes/%d" % type_id_, {
        "description": "JVM", "colour": "blue", "key": "x", "name": "X",
        "maxAssignments": 9}, status=200).json
    assert (updated["key"], updated["name"], updated["description"], updated["colour"],
            updated["maxAssignments"]) == ("runtime", "Runtime", "JVM", "blue", 1)
    error(api.http.put_json(API + "/softwaremoduletypes/4711", {"colour": "x"}, status=404),
          404, NOT_FOUND)
    error(api.http.put_json(API + "/softwaremoduletypes/%d" % type_id_, {"colour": "c" * 17},
                            status=400), 400, CONSTRAINT)


def test_delete_an_unused_module_type_removes_it(api):
    type_id_ = module_type(api, key="runtime", name="Runtime").json[0]["id"]
    assert api.http.delete(API + "/softwaremoduletypes/%d" % type_id_,
                           status=204).body == b""
    error(api.http.get(API + "/softwaremoduletypes/%d" % type_id_, status=404), 404, NOT_FOUND)
    # Its key is free again.
    module_type(api, key="runtime", name="Runtime")


def test_a_module_type_in_use_is_only_marked_deleted(api):
    used_by_module = module_type(api, key="runtime", name="Runtime").json[0]["id"]
    api.module(type_key="runtime")
    used_by_set_type = module_type(api, key="fpga", name="FPGA").json[0]["id"]
    set_type(api, key="board", name="Board", mandatorymodules=[{"id": used_by_set_type}])
    for type_id_ in (used_by_module, used_by_set_type):
        api.http.delete(API + "/softwaremoduletypes/%d" % type_id_, status=204)
        assert api.http.get(API + "/softwaremoduletypes/%d" % type_id_).json["deleted"] is True
        error(api.http.put_json(API + "/softwaremoduletypes/%d" % type_id_, {"colour": "x"},
                                status=404), 404, DELETED)
    listed = [t["key"] for t in api.http.get(API + "/softwaremoduletypes").json["content"]]
    assert listed == ["os", "application"]
    # A deleted type keeps its key, and takes no new modules.
    error(module_type(api, key="runtime", name="Runtime 2", status=409), 409, ALREADY_EXISTS)
    error(api.http.post_json(API + "/softwaremodules", [
        {"type": "runtime", "name": "jre", "version": "18"}], status=400), 400, CONSTRAINT)


# --- distribution set types -----------------------------------------------------------------------

def test_create_set_types_with_mandatory_and_optional_module_types(api):
    os_type = type_id(api, "softwaremoduletypes", "os")
    app_type = type_id(api, "softwaremoduletypes", "application")
    created = api.http.post_json(API + "/distributionsettypes", [{
        "key": "gw", "name": "Gateway image", "description": "d", "colour": "c",
        "mandatorymodules": [{"id": os_type}], "optionalmodules": [{"id": app_type}]},
        {"key": "empty", "name": "Empty"}], status=201).json
    first = created[0]
    assert set(first) == AUDIT | {"id", "key", "name", "description", "colour", "deleted",
                                  "_links"}
    assert (first["key"], first["name"], first["deleted"]) == ("gw", "Gateway image", False)
    assert member_keys(api, first["id"], "mandatory") == ["os"]
    assert member_keys(api, first["id"], "optional") == ["application"]
    assert member_keys(api, created[1]["id"], "mandatory") == []
    # A set of the new type is complete with its os module.
    module = api.module()
    distribution_set = api.http.post_json(API + "/distributionsets", [{
        "name": "gw-fw", "version": "1", "type": "gw", "modules": [{"id": module.id}]}]).json[0]
    assert distribution_set["complete"] is True


def test_a_module_type_given_as_mandatory_and_optional_is_mandatory(api):
    os_type = type_id(api, "softwaremoduletypes", "os")
    created = set_type(api, key="gw", name="GW", mandatorymodules=[{"id": os_type}],
                       optionalmodules=[{"id": os_type}]).json[0]
    assert member_keys(api, created["id"], "mandatory") == ["os"]
    assert member_keys(api, created["id"], "optional") == []


@pytest.mark.parametrize("body, status, code", [
    ([{"key": "gw"}], 400, CONSTRAINT),
    ([{"name": "GW"}], 400, CONSTRAINT),
    ([{"key": "gw", "name": "GW", "mandatorymodules": [{"id": 4711}]}], 404, NOT_FOUND),
    ([{"key": "gw", "name": "GW", "optionalmodules": [{"id": "x"}]}], 400, NOT_READABLE),
    ([{"key": "os", "name": "Other"}], 409, ALREADY_EXISTS),
    ([{"key": "other", "name": "OS only"}], 409, ALREADY_EXISTS),
    ({"key": "gw", "name": "GW"}, 400, NOT_READABLE),
])
def test_bad_set_type_bodies_create_nothing(api, body, status, code):
    error(api.http.post_json(API + "/distributionsettypes", body, status=status), status, code)
    assert api.http.get(API + "/distributionsettypes").json["total"] == 3


def test_update_set_type_changes_description_and_colour_only(api):
    created = set_type(api, key="gw", name="GW").json[0]
    updated = api.http.put_json(API + "/distributionsettypes/%d" % created["id"], {
        "description": "gateway", "colour": "green", "key": "x"}, status=200).json
    assert (updated["key"], updated["description"], updated["colour"]) == \
        ("gw", "gateway", "green")
    assert "mandatorymodules" in updated["_links"]


def test_add_and_remove_module_types_while_no_set_has_the_type(api):
    os_type = type_id(api, "softwaremoduletypes", "os")
    app_type = type_id(api, "softwaremoduletypes", "application")
    gw = set_type(api, key="gw", name="GW").json[0]["id"]
    url = API + "/distributionsettypes/%d/" % gw
    assert api.http.post_json(url + "mandatorymoduletypes", {"id": os_type},
                              status=204).body == b""
    api.http.post_json(url + "optionalmoduletypes", [{"id": app_type}], status=204)
    assert (member_keys(api, gw, "mandatory"), member_keys(api, gw, "optional")) == \
        (["os"], ["application"])
    # Adding it to the other list moves it.
    api.http.post_json(url + "mandatorymoduletypes", {"id": app_type}, status=204)
    assert (member_keys(api, gw, "mandatory"), member_keys(api, gw, "optional")) == \
        (["os", "application"], [])
    assert api.http.delete(url + "mandatorymoduletypes/%d" % os_type,
                           status=204).body == b""
    api.http.delete(url + "optionalmoduletypes/%d" % app_type, status=204)  # either list
    assert (member_keys(api, gw, "mandatory"), member_keys(api, gw, "optional")) == ([], [])
    error(api.http.post_json(url + "mandatorymoduletypes", {"id": 4711}, status=404), 404,
          NOT_FOUND)
    error(api.http.delete(url + "mandatorymoduletypes/4711", status=404), 404, NOT_FOUND)
    error(api.http.post_json(url + "mandatorymoduletypes", {"key": "os"}, status=400), 400,
          CONSTRAINT)
    error(api.http.post_json(API + "/distributionsettypes/4711/mandatorymoduletypes",
                             {"id": os_type}, status=404), 404, NOT_FOUND)


def test_module_types_of_a_set_type_that_sets_have_are_read_only(api):
    os_app = type_id(api, "distributionsettypes", "os_app")
    app_type = type_id(api, "softwaremoduletypes", "application")
    api.distribution_set([api.module()])  # os_app
    url = API + "/distributionsettypes/%d/" % os_app
    body = error(api.http.post_json(url + "mandatorymoduletypes", {"id": app_type},
                                    status=403), 403, READ_ONLY)
    assert body["exceptionClass"] == \
        "org.eclipse.hawkbit.repository.exception.EntityReadOnlyException"
    error(api.http.delete(url + "optionalmoduletypes/%d" % app_type, status=403), 403,
          READ_ONLY)
    assert member_keys(api, os_app, "optional") == ["application"]


def test_at_most_fifty_module_types_per_set_type(api):
    created = api.http.post_json(API + "/softwaremoduletypes", [
        {"key": "m%d" % n, "name": "M%d" % n} for n in range(49)]).json
    gw = set_type(api, key="gw", name="GW",
                  optionalmodules=[{"id": t["id"]} for t in created]).json[0]["id"]
    api.http.post_json(API + "/distributionsettypes/%d/mandatorymoduletypes" % gw,
                       {"id": type_id(api, "softwaremoduletypes", "os")}, status=204)
    error(api.http.post_json(API + "/distributionsettypes/%d/mandatorymoduletypes" % gw,
                             {"id": type_id(api, "softwaremoduletypes", "application")},
                             status=429), 429, QUOTA)


def test_delete_set_type_unused_is_gone_used_is_marked_deleted(api):
    unused = set_type(api, key="gw", name="GW").json[0]["id"]
    api.http.delete(API + "/distributionsettypes/%d" % unused, status=204)
    error(api.http.get(API + "/distributionsettypes/%d" % unused, status=404), 404, NOT_FOUND)
    os_app = type_id(api, "distributionsettypes", "os_app")
    api.distribution_set([api.module()])
    api.http.delete(API + "/distributionsettypes/%d" % os_app, status=204)
    assert api.http.get(API + "/distributionsettypes/%d" % os_app).json["deleted"] is True
    assert "os_app" not in [t["key"] for t in
                            api.http.get(API + "/distributionsettypes").json["content"]]
    error(api.http.put_json(API + "/distributionsettypes/%d" % os_app, {"colour": "x"},
                            status=404), 404, DELETED)
    error(api.http.post_json(API + "/distributionsets", [
        {"name": "n", "version": "1", "type": "os_app"}], status=400), 400, CONSTRAINT)
    error(api.http.delete(API + "/distributionsettypes/4711", status=404), 404, NOT_FOUND)


def test_a_server_whose_default_types_were_deleted_starts_again(api, config):
    """The bootstrap types are made on a new database only: after an operator deleted them
    and reused a key, a restart neither brings them back nor fails on the key."""
    for key in ("os", "app", "os_app"):
        api.http.delete(API + "/distributionsettypes/%d" % type_id(
            api, "distributionsettypes", key), status=204)
    for key in ("os", "application"):
        api.http.delete(API + "/softwaremoduletypes/%d" % type_id(
            api, "softwaremoduletypes", key), status=204)
    set_type(api, key="os", name="My OS")
    storage.close_store()
    restarted = Server(config)
    restarted.http.set_authorization(("Basic", ("admin", "admin")))
    listed = restarted.http.get(API + "/distributionsettypes").json["content"]
    assert [(t["key"], t["name"]) for t in listed] == [("os", "My OS")]
    assert restarted.http.get(API + "/softwaremoduletypes").json["total"] == 0
