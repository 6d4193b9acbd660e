"""Management API over HTTP: module and set types, software modules and their metadata,
artifacts (upload, list, get, delete, download), distribution sets and assigning them to
targets (mgmt-contract.md §1, §3, §4, §5.5, §5.6, §8, §9, §10, §13).

Project decisions tested as such (they differ from hawkBit on purpose):
* an upload above [limits] max_artifact_bytes answers 413 (hawkBit: 429) with errorCode
  hawkbit.server.error.quota.fileSizeExceeded, and stores nothing;
* an upload is atomic: on any failure no blob file is left under <data_dir>/artifacts (an empty
  tmp/ aside) and no artifact row exists;
* artifact filenames keep only the last path component; '..' or a NUL is refused with 400;
* deleting a module or set that actions still reference is a soft delete and never breaks the
  DDI download of a running deployment.
"""

import hashlib
import os
import time
import urllib.parse

import pytest

import ddi_lite
import storage
from conftest import DEVICE, Server, now_ms, token
from storage.models import Artifact
from mgmt import (ADMIN, ALREADY_EXISTS, API, BASE, CONSTRAINT, DELETED, INCOMPLETE,
                  MULTI_ASSIGNMENT, NOT_FOUND, NOT_READABLE)

CID = "dev-1"
TOKEN = "token-1"
PAYLOAD = b"RAUC bundle payload \x00\x01\x02" * 40

LOCKED = "hawkbit.server.error.locked"
UNSUPPORTED = "hawkbit.server.error.distributionset.modules.unsupported"
WINDOW_INVALID = "hawkbit.server.error.maintenanceScheduleInvalid"
ENCRYPTION = "hawkbit.server.error.artifact.encryptionNotSupported"
FILE_TOO_LARGE = "hawkbit.server.error.quota.fileSizeExceeded"
BINARY_DELETED = "hawkbit.server.error.artifact.binaryDeleted"

CLOSED_WINDOW = {"schedule": "0 0 0 1 1 ? 2099", "duration": "00:10:00", "timezone": "+00:00"}
OPEN_WINDOW = {"schedule": "0 * * * * ?", "duration": "01:00:00", "timezone": "+00:00"}


# --- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture
def http(server):
    server.http.set_authorization(ADMIN)
    return server.http


@pytest.fixture
def small(tmp_path):
    """A server whose artifacts may have at most 1000 bytes."""
    config = ddi_lite.load_config(environ={}, overrides={
        "server.data_dir": str(tmp_path / "small"), "server.trusted_proxies": "",
        "limits.max_artifact_bytes": "1000"})
    server = Server(config)
    server.configure(**{"authentication.targettoken.enabled": True})
    server.http.set_authorization(ADMIN)
    yield server
    storage.close_store()


def error(response, status, code):
    assert response.status_int == status, response.body
    assert response.json["errorCode"] == code, response.json
    return response.json


def create_modules(http, items, status=201):
    return http.post_json(API + "/softwaremodules", items, status=status)


def module(http, name="software module 4711.2", version="1.0", type_key="os", **fields):
    body = dict(fields, name=name, version=version, type=type_key)
    return create_modules(http, [body]).json[0]


def create_sets(http, items, status=201):
    return http.post_json(API + "/distributionsets", items, status=status)


def distribution_set(http, module_ids, name="distribution 1.0", version="1.0", type_key="os"):
    body = {"name": name, "version": version, "description": "Test distribution",
            "modules": [{"id": module_id} for module_id in module_ids]}
    if type_key is not None:
        body["type"] = type_key
    return create_sets(http, [body]).json[0]


def artifacts_url(module_id, query=None):
    url = "%s/softwaremodules/%d/artifacts" % (API, module_id)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url


def download_url(module_id, artifact_id):
    return "%s/%d/download" % (artifacts_url(module_id), artifact_id)


def upload(http, module_id, content=PAYLOAD, filename="bundle.raucb_0", query=None,
           fields=None, status=201):
    return http.post(artifacts_url(module_id, query), params=fields or {},
                     upload_files=[("file", filename, content)], status=status)


def multipart(parts, boundary="ddi-lite-test-boundary"):
    """A multipart/form-data body from (name, filename or None, bytes) parts, in order."""
    chunks = []
    for name, filename, data in parts:
        disposition = 'Content-Disposition: form-data; name="%s"' % name
        if filename is not None:
            disposition += '; filename="%s"' % filename
        chunks.append(b"--" + boundary.encode() + b"\r\n" + disposition.encode() + b"\r\n")
        if filename is not None:
            chunks.append(b"Content-Type: application/octet-stream\r\n")
        chunks.append(b"\r\n" + data + b"\r\n")
    chunks.append(b"--" + boundary.encode() + b"--\r\n")
    return b"".join(chunks), "multipart/form-data; boundary=" + boundary


def post_multipart(http, module_id, parts, status):
    body, content_type = multipart(parts)
    # Not http.post: WebTest would re-encode a multipart body and put the fields first.
    return http.request(artifacts_url(module_id), method="POST", body=body,
                        content_type=content_type, status=status)


def artifact_root(server):
    return os.path.join(server.config["server", "data_dir"], "artifacts")


def stored_files(server):
    """Every file below <data_dir>/artifacts, relative to it."""
    root = artifact_root(server)
    found = []
    for directory, _, files in os.walk(root):
        found.extend(os.path.relpath(os.path.join(directory, name), root) for name in files)
    return sorted(found)


def blob_path(server, content):
    sha1 = hashlib.sha1(content).hexdigest()
    return os.path.join(artifact_root(server), sha1[:2], sha1)


def assert_nothing_stored(server, http, module_id):
    assert stored_files(server) == []
    assert os.listdir(os.path.join(artifact_root(server), "tmp")) == []
    assert Artifact.select().count() == 0
    assert http.get(artifacts_url(module_id)).json == []


def target(http, controller_id=CID, security_token=TOKEN):
    http.post_json(API + "/targets", [{"controllerId": controller_id, "name": controller_id,
                                       "securityToken": security_token}], status=201)


def assign(http, set_id, items, status=200, offline=False):
    url = "%s/distributionsets/%d/assignedTargets" % (API, set_id)
    if offline:
        url += "?offline=true"
    return http.post_json(url, items, status=status)


def deployable(http, content=PAYLOAD, filename="bundle.raucb_0", name="rootfs"):
    """A target, an os module with one artifact and an os set holding it: (module, set)."""
    target(http)
    sm = module(http, name=name)
    upload(http, sm["id"], content, filename)
    ds = distribution_set(http, [sm["id"]], name="set of " + name)
    return sm, ds


def device_get(server, path, status=200, controller_id=CID, security_token=TOKEN):
    return server.http.get("%s/%s%s" % (DEVICE, controller_id, path),
                           headers=token(security_token), status=status)


def deployment(server, action_id):
    return device_get(server, "/deploymentBase/%d" % action_id).json["deployment"]


def actions_of(http, controller_id=CID):
    return http.get("%s/targets/%s/actions" % (API, controller_id)).json


def type_id(http, collection, key):
    page = http.get("%s/%s?q=key==%s" % (API, collection, key)).json
    assert page["total"] == 1
    return page["content"][0]["id"]


# --- types (§8) -----------------------------------------------------------------------------

def test_bootstrap_module_types_are_os_and_application(http):
    page = http.get(API + "/softwaremoduletypes").json
    assert page["total"] == 2 and page["size"] == 2
    assert [(t["key"], t["name"], t["maxAssignments"], t["minArtifacts"], t["deleted"])
            for t in page["content"]] == [("os", "OS", 1, 0, False),
                                          ("application", "Application", 2147483647, 0, False)]
    for entry in page["content"]:
        assert entry["_links"] == {"self": {
            "href": "%s%s/softwaremoduletypes/%d" % (BASE, API, entry["id"])}}


def test_bootstrap_set_types_are_os_app_and_os_app(http):
    page = http.get(API + "/distributionsettypes").json
    assert page["total"] == 3 and page["size"] == 3
    assert [(t["key"], t["name"]) for t in page["content"]] == [
        ("os", "OS only"), ("app", "App(s) only"), ("os_app", "OS with app(s)")]
    assert "runtime" not in [t["key"] for t in http.get(API + "/softwaremoduletypes").json[
        "content"]]


def test_module_type_list_is_paged(http):
    first = http.get(API + "/softwaremoduletypes?limit=1").json
    assert (first["total"], first["size"], first["content"][0]["key"]) == (2, 1, "os")
    second = http.get(API + "/softwaremoduletypes?offset=1&limit=1").json
    assert (second["total"], second["size"], second["content"][0]["key"]) == (2, 1,
                                                                              "application")


def test_module_type_query_by_key_and_get_by_id(http):
    page = http.get(API + "/softwaremoduletypes?q=key==os").json
    assert page["total"] == 1 and page["content"][0]["key"] == "os"
    one = http.get("%s/softwaremoduletypes/%d" % (API, page["content"][0]["id"])).json
    assert one == page["content"][0]


def test_unknown_module_type_is_404(http):
    error(http.get(API + "/softwaremoduletypes/9999", status=404), 404, NOT_FOUND)


def test_set_type_query_by_key_and_get_has_module_type_links(http):
    set_type = type_id(http, "distributionsettypes", "os_app")
    document = http.get("%s/distributionsettypes/%d" % (API, set_type)).json
    path = "%s%s/distributionsettypes/%d" % (BASE, API, set_type)
    assert document["key"] == "os_app" and document["deleted"] is False
    assert document["_links"] == {
        "self": {"href": path},
        "mandatorymodules": {"href": path + "/mandatorymoduletypes"},
        "optionalmodules": {"href": path + "/optionalmoduletypes"}}


@pytest.mark.parametrize("set_key, mandatory, optional", [
    ("os", ["os"], []), ("app", ["application"], []), ("os_app", ["os"], ["application"])])
def test_set_type_mandatory_and_optional_module_types_are_plain_arrays(
        http, set_key, mandatory, optional):
    set_type = type_id(http, "distributionsettypes", set_key)
    url = "%s/distributionsettypes/%d/" % (API, set_type)
    got_mandatory = http.get(url + "mandatorymoduletypes").json
    got_optional = http.get(url + "optionalmoduletypes").json
    assert isinstance(got_mandatory, list) and isinstance(got_optional, list)
    assert [t["key"] for t in got_mandatory] == mandatory
    assert [t["key"] for t in got_optional] == optional


def test_set_type_single_mandatory_and_optional_entries(http):
    os_app = type_id(http, "distributionsettypes", "os_app")
    os_type = type_id(http, "softwaremoduletypes", "os")
    app_type = type_id(http, "softwaremoduletypes", "application")
    url = "%s/distributionsettypes/%d/" % (API, os_app)
    assert http.get(url + "mandatorymoduletypes/%d" % os_type).json["key"] == "os"
    assert http.get(url + "optionalmoduletypes/%d" % app_type).json["key"] == "application"
    error(http.get(url + "optionalmoduletypes/%d" % os_type, status=404), 404, NOT_FOUND)
    error(http.get(url + "mandatorymoduletypes/%d" % app_type, status=404), 404, NOT_FOUND)


def test_unknown_set_type_is_404_also_for_its_module_types(http):
    error(http.get(API + "/distributionsettypes/9999", status=404), 404, NOT_FOUND)
    error(http.get(API + "/distributionsettypes/9999/mandatorymoduletypes", status=404),
          404, NOT_FOUND)
    error(http.get(API + "/distributionsettypes/9999/optionalmoduletypes", status=404),
          404, NOT_FOUND)


# --- software modules (§9.1, §9.2) ----------------------------------------------------------

def test_create_module_rauc_example_answers_201_array(http):
    response = create_modules(http, [{"name": "software module 4711.2", "version": "1.0",
                                      "type": "os"}])
    assert response.status_int == 201
    assert response.content_type == "application/hal+json"
    [created] = response.json
    assert isinstance(created["id"], int)
    assert {key: created[key] for key in ("name", "version", "type", "typeName", "encrypted",
                                          "locked", "deleted", "complete", "createdBy",
                                          "lastModifiedBy")} == {
        "name": "software module 4711.2", "version": "1.0", "type": "os", "typeName": "OS",
        "encrypted": False, "locked": False, "deleted": False, "complete": True,
        "createdBy": "admin", "lastModifiedBy": "admin"}
    assert "description" not in created and "vendor" not in created
    assert created["_links"] == {"self": {
        "href": "%s%s/softwaremodules/%d" % (BASE, API, created["id"])}}


def test_create_modules_answers_in_request_order(http):
    items = [{"name": "c", "version": "1", "type": "application"},
             {"name": "a", "version": "1", "type": "os", "vendor": "ACME",
              "description": "rootfs"},
             {"name": "b", "version": "2", "type": "application"}]
    created = create_modules(http, items).json
    assert [(m["name"], m["type"], m["typeName"]) for m in created] == [
        ("c", "application", "Application"), ("a", "os", "OS"), ("b", "application",
                                                                  "Application")]
    assert created[1]["vendor"] == "ACME" and created[1]["description"] == "rootfs"
    assert created[0]["id"] < created[1]["id"] < created[2]["id"]


def test_create_module_duplicate_of_stored_module_is_409(http):
    module(http, name="fw", version="1.0")
    error(create_modules(http, [{"name": "fw", "version": "1.0", "type": "os"}], status=409),
          409, ALREADY_EXISTS)
    assert http.get(API + "/softwaremodules").json["total"] == 1


def test_create_modules_duplicate_inside_one_request_is_409_and_creates_nothing(http):
    error(create_modules(http, [{"name": "fw", "version": "1.0", "type": "os"},
                                {"name": "other", "version": "1.0", "type": "os"},
                                {"name": "fw", "version": "1.0", "type": "os"}], status=409),
          409, ALREADY_EXISTS)
    assert http.get(API + "/softwaremodules").json["total"] == 0


def test_same_name_and_version_with_another_type_is_no_duplicate(http):
    created = create_modules(http, [{"name": "fw", "version": "1.0", "type": "os"},
                                    {"name": "fw", "version": "1.0", "type": "application"}])
    assert [m["type"] for m in created.json] == ["os", "application"]


def test_create_module_with_unknown_type_is_404_and_creates_nothing(http):
    error(create_modules(http, [{"name": "ok", "version": "1", "type": "os"},
                                {"name": "fw", "version": "1", "type": "runtime"}],
                         status=404), 404, NOT_FOUND)
    assert http.get(API + "/softwaremodules").json["total"] == 0


def test_create_module_without_type_is_400_constraint_violation(http):
    error(create_modules(http, [{"name": "fw", "version": "1.0"}], status=400), 400,
          CONSTRAINT)


def test_create_encrypted_module_is_400_encryption_not_supported(http):
    error(create_modules(http, [{"name": "fw", "version": "1.0", "type": "os",
                                 "encrypted": True}], status=400), 400, ENCRYPTION)
    assert http.get(API + "/softwaremodules").json["total"] == 0


def test_create_module_name_longer_than_128_is_400(http):
    error(create_modules(http, [{"name": "n" * 129, "version": "1.0", "type": "os"}],
                         status=400), 400, CONSTRAINT)
    assert module(http, name="n" * 128)["name"] == "n" * 128


def test_create_module_version_longer_than_64_is_400(http):
    error(create_modules(http, [{"name": "fw", "version": "v" * 65, "type": "os"}],
                         status=400), 400, CONSTRAINT)
    assert http.get(API + "/softwaremodules").json["total"] == 0


def test_create_module_without_name_is_400(http):
    error(create_modules(http, [{"version": "1.0", "type": "os"}], status=400), 400,
          CONSTRAINT)


def test_create_modules_needs_an_array(http):
    error(create_modules(http, {"name": "fw", "version": "1.0", "type": "os"}, status=400),
          400, NOT_READABLE)


def test_create_module_with_trailing_slash_and_hal_json_body(http):
    response = http.post(API + "/softwaremodules/", b'[{"name": "fw", "version": "1.0", '
                         b'"type": "os"}]', content_type="application/hal+json;charset=UTF-8",
                         status=201)
    assert response.json[0]["name"] == "fw"


def test_create_module_coerces_a_json_number_version_to_a_string(http):
    created = create_modules(http, [{"name": "fw", "version": 1.1, "type": "os"}]).json[0]
    assert created["version"] == "1.1"


def test_module_list_is_paged(http):
    for index in range(3):
        module(http, name="fw-%d" % index)
    first = http.get(API + "/softwaremodules?offset=0&limit=2").json
    assert (first["total"], first["size"]) == (3, 2)
    assert [m["name"] for m in first["content"]] == ["fw-0", "fw-1"]
    rest = http.get(API + "/softwaremodules?offset=2&limit=2").json
    assert (rest["total"], rest["size"], rest["content"][0]["name"]) == (3, 1, "fw-2")
    assert rest["content"][0]["_links"] == {"self": {
        "href": "%s%s/softwaremodules/%d" % (BASE, API, rest["content"][0]["id"])}}


def test_module_list_sorts(http):
    for name in ("b", "c", "a"):
        module(http, name=name)
    page = http.get(API + "/softwaremodules?sort=name:DESC").json
    assert [m["name"] for m in page["content"]] == ["c", "b", "a"]


def test_module_list_filters_by_name_and_by_type(http):
    module(http, name="rootfs", type_key="os")
    module(http, name="app-1", type_key="application")
    module(http, name="app-2", type_key="application")
    by_name = http.get(API + "/softwaremodules?q=name==rootfs").json
    assert [m["name"] for m in by_name["content"]] == ["rootfs"] and by_name["total"] == 1
    by_type = http.get(API + "/softwaremodules?q=type==application").json
    assert [m["name"] for m in by_type["content"]] == ["app-1", "app-2"]
    assert http.get(API + "/softwaremodules?q=type==os").json["total"] == 1


def test_module_list_filters_by_a_non_ascii_name(http):
    module(http, name="gr\u00fc\u00dfe")
    module(http, name="other")
    page = http.get(API + "/softwaremodules?" + urllib.parse.urlencode(
        {"q": "name==gr\u00fc\u00dfe"})).json
    assert [m["name"] for m in page["content"]] == ["gr\u00fc\u00dfe"]


def test_module_list_rejects_unknown_query_and_sort_fields(http):
    error(http.get(API + "/softwaremodules?q=colour==red", status=400), 400,
          "hawkbit.server.error.rest.param.rsqlInvalidField")
    error(http.get(API + "/softwaremodules?sort=colour:ASC", status=400), 400,
          "hawkbit.server.error.rest.param.invalidField")


def test_module_list_soft_deleted_mode(http):
    kept = module(http, name="kept")
    gone = module(http, name="gone")
    distribution_set(http, [gone["id"]])
    http.delete("%s/softwaremodules/%d" % (API, gone["id"]), status=204)

    def names(query):
        return [m["name"] for m in http.get(API + "/softwaremodules" + query).json["content"]]

    assert names("") == ["kept"]
    assert names("?soft_deleted_mode=EXCLUDE_SOFT_DELETED") == ["kept"]
    assert names("?soft_deleted_mode=INCLUDE_SOFT_DELETED") == ["kept", "gone"]
    assert names("?soft_deleted_mode=ONLY_SOFT_DELETED") == ["gone"]
    assert kept["id"] < gone["id"]


def test_get_module_has_all_four_links(http):
    created = module(http, vendor="ACME")
    document = http.get("%s/softwaremodules/%d" % (API, created["id"])).json
    path = "%s%s/softwaremodules/%d" % (BASE, API, created["id"])
    os_type = type_id(http, "softwaremoduletypes", "os")
    assert document["vendor"] == "ACME" and document["name"] == created["name"]
    assert document["_links"] == {
        "self": {"href": path}, "artifacts": {"href": path + "/artifacts"},
        "type": {"href": "%s%s/softwaremoduletypes/%d" % (BASE, API, os_type)},
        "metadata": {"href": path + "/metadata"}}


def test_get_unknown_module_is_404(http):
    error(http.get(API + "/softwaremodules/4711", status=404), 404, NOT_FOUND)


def test_update_module_changes_description_and_vendor_but_not_name(http):
    created = module(http, name="fw", version="1.0")
    response = http.put_json("%s/softwaremodules/%d" % (API, created["id"]),
                             {"description": "new text", "vendor": "ACME", "name": "renamed",
                              "version": "9.9", "type": "application"})
    assert response.status_int == 200
    document = response.json
    assert (document["description"], document["vendor"]) == ("new text", "ACME")
    assert (document["name"], document["version"], document["type"]) == ("fw", "1.0", "os")
    assert set(document["_links"]) == {"self", "artifacts", "type", "metadata"}
    stored = http.get("%s/softwaremodules/%d" % (API, created["id"])).json
    assert (stored["description"], stored["vendor"], stored["name"]) == ("new text", "ACME",
                                                                         "fw")


def test_update_module_accepts_the_whole_document_it_got(http):
    created = module(http)
    document = http.get("%s/softwaremodules/%d" % (API, created["id"])).json
    document["description"] = "put back"
    updated = http.put_json("%s/softwaremodules/%d" % (API, created["id"]), document).json
    assert updated["description"] == "put back" and updated["locked"] is False


def test_update_soft_deleted_module_is_404_deleted(http):
    created = module(http)
    distribution_set(http, [created["id"]])
    http.delete("%s/softwaremodules/%d" % (API, created["id"]), status=204)
    error(http.put_json("%s/softwaremodules/%d" % (API, created["id"]),
                        {"description": "x"}, status=404), 404, DELETED)


def test_delete_unused_module_is_hard(http):
    created = module(http)
    response = http.delete("%s/softwaremodules/%d" % (API, created["id"]), status=204)
    assert response.body == b"" and "Content-Type" not in response.headers
    error(http.get("%s/softwaremodules/%d" % (API, created["id"]), status=404), 404, NOT_FOUND)
    assert http.get(API + "/softwaremodules?soft_deleted_mode=INCLUDE_SOFT_DELETED").json[
        "total"] == 0


def test_hard_delete_of_a_module_removes_its_unshared_blobs(server, http):
    gone, kept = module(http, name="gone"), module(http, name="kept")
    upload(http, gone["id"], b"only here", "a.bin")
    upload(http, gone["id"], PAYLOAD, "b.bin")
    shared = upload(http, kept["id"], PAYLOAD, "c.bin").json
    http.delete("%s/softwaremodules/%d" % (API, gone["id"]), status=204)
    assert not os.path.exists(blob_path(server, b"only here"))
    assert os.path.isfile(blob_path(server, PAYLOAD))
    assert http.get(download_url(kept["id"], shared["id"])).body == PAYLOAD


def test_delete_module_in_a_set_is_soft_and_repeatable(http):
    created = module(http)
    distribution_set(http, [created["id"]])
    http.delete("%s/softwaremodules/%d" % (API, created["id"]), status=204)
    document = http.get("%s/softwaremodules/%d" % (API, created["id"])).json
    assert document["deleted"] is True
    http.delete("%s/softwaremodules/%d" % (API, created["id"]), status=204)
    assert http.get("%s/softwaremodules/%d" % (API, created["id"])).json["deleted"] is True


def test_soft_deleted_module_keeps_artifacts_but_loses_download_links(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    distribution_set(http, [sm["id"]])
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    got = http.get("%s/%d" % (artifacts_url(sm["id"]), artifact["id"])).json
    assert got["_links"] == {"self": artifact["_links"]["self"]}
    [listed] = http.get(artifacts_url(sm["id"], {"representation": "full"})).json
    assert listed["_links"] == {"self": artifact["_links"]["self"]}


def test_module_of_a_hard_deleted_set_is_hard_deleted(http):
    sm = module(http)
    ds = distribution_set(http, [sm["id"]])
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    error(http.get("%s/softwaremodules/%d" % (API, sm["id"]), status=404), 404, NOT_FOUND)


def test_delete_unknown_module_is_404(http):
    error(http.delete(API + "/softwaremodules/4711", status=404), 404, NOT_FOUND)


def test_delete_module_of_a_locked_set_is_423(http):
    created = module(http)
    ds = distribution_set(http, [created["id"]])
    http.put_json("%s/distributionsets/%d" % (API, ds["id"]), {"locked": True})
    error(http.delete("%s/softwaremodules/%d" % (API, created["id"]), status=423), 423, LOCKED)
    assert http.get("%s/softwaremodules/%d" % (API, created["id"])).json["deleted"] is False


def test_delete_module_of_a_locked_but_deleted_set_is_allowed(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    assert http.get("%s/softwaremodules/%d" % (API, sm["id"])).json["deleted"] is True


# --- software module metadata (§9.3) --------------------------------------------------------

def metadata_url(module_id, key=None):
    url = "%s/softwaremodules/%d/metadata" % (API, module_id)
    return url if key is None else url + "/" + key


def test_module_metadata_create_answers_201_empty_and_lists(http):
    sm = module(http)
    response = http.post_json(metadata_url(sm["id"]), [
        {"key": "b", "value": "2", "targetVisible": True}, {"key": "a", "value": "1"}],
        status=201)
    assert response.body == b""
    page = http.get(metadata_url(sm["id"])).json
    assert page["total"] == 2 and page["size"] == 2
    assert sorted(page["content"], key=lambda e: e["key"]) == [
        {"key": "a", "value": "1", "targetVisible": False},
        {"key": "b", "value": "2", "targetVisible": True}]


def test_module_metadata_post_upserts_existing_keys(http):
    sm = module(http)
    http.post_json(metadata_url(sm["id"]), [{"key": "k", "value": "old"}], status=201)
    http.post_json(metadata_url(sm["id"]), [{"key": "k", "value": "new",
                                            "targetVisible": True}], status=201)
    assert http.get(metadata_url(sm["id"], "k")).json == {"key": "k", "value": "new",
                                                          "targetVisible": True}
    assert http.get(metadata_url(sm["id"])).json["total"] == 1


def test_module_metadata_put_updates_and_creates(http):
    sm = module(http)
    http.post_json(metadata_url(sm["id"]), [{"key": "k", "value": "v"}], status=201)
    response = http.put_json(metadata_url(sm["id"], "k"), {"value": "w"}, status=204)
    assert response.body == b""
    assert http.get(metadata_url(sm["id"], "k")).json == {"key": "k", "value": "w",
                                                          "targetVisible": False}
    http.put_json(metadata_url(sm["id"], "k"), {"targetVisible": True}, status=204)
    assert http.get(metadata_url(sm["id"], "k")).json == {"key": "k", "value": "w",
                                                          "targetVisible": True}
    http.put_json(metadata_url(sm["id"], "fresh"), {"value": "x"}, status=204)
    assert http.get(metadata_url(sm["id"], "fresh")).json["value"] == "x"


def test_module_metadata_delete_and_404s(http):
    sm = module(http)
    http.post_json(metadata_url(sm["id"]), [{"key": "k", "value": "v"}], status=201)
    assert http.delete(metadata_url(sm["id"], "k"), status=204).body == b""
    error(http.get(metadata_url(sm["id"], "k"), status=404), 404, NOT_FOUND)
    error(http.delete(metadata_url(sm["id"], "k"), status=404), 404, NOT_FOUND)
    error(http.get(metadata_url(4711), status=404), 404, NOT_FOUND)


def test_module_metadata_of_a_soft_deleted_module_cannot_change(http):
    sm = module(http)
    distribution_set(http, [sm["id"]])
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    error(http.post_json(metadata_url(sm["id"]), [{"key": "k", "value": "v"}], status=404),
          404, DELETED)


def test_target_visible_module_metadata_reaches_the_device(server, http):
    sm, ds = deployable(http)
    http.post_json(metadata_url(sm["id"]), [
        {"key": "shown", "value": "to device", "targetVisible": True},
        {"key": "hidden", "value": "operator only", "targetVisible": False}], status=201)
    action_id = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    [chunk] = deployment(server, action_id)["chunks"]
    assert chunk["metadata"] == [{"key": "shown", "value": "to device"}]


# --- artifacts: upload (§9.4, §9.5) ---------------------------------------------------------

def test_upload_answers_201_with_hashes_size_and_links(http):
    sm = module(http)
    response = upload(http, sm["id"], PAYLOAD, "bundle.raucb_0")
    assert response.status_int == 201
    artifact = response.json
    assert artifact["hashes"] == {"md5": hashlib.md5(PAYLOAD).hexdigest(),
                                  "sha1": hashlib.sha1(PAYLOAD).hexdigest(),
                                  "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    assert artifact["size"] == len(PAYLOAD)
    assert artifact["providedFilename"] == "bundle.raucb_0"
    assert artifact["createdBy"] == "admin"
    path = "%s%s/softwaremodules/%d/artifacts/%d" % (BASE, API, sm["id"], artifact["id"])
    assert artifact["_links"] == {"self": {"href": path},
                                  "download": {"href": path + "/download"}}


def test_upload_stores_the_blob_content_addressed(server, http):
    sm = module(http)
    upload(http, sm["id"], PAYLOAD)
    with open(blob_path(server, PAYLOAD), "rb") as stored:
        assert stored.read() == PAYLOAD


def test_upload_filename_query_parameter_overrides_part_filename(http):
    sm = module(http)
    artifact = upload(http, sm["id"], filename="part.bin",
                      query={"filename": "bundle.raucb"}).json
    assert artifact["providedFilename"] == "bundle.raucb"


def test_upload_filename_form_field_overrides_part_filename(http):
    sm = module(http)
    artifact = upload(http, sm["id"], filename="part.bin",
                      fields={"filename": "named.raucb"}).json
    assert artifact["providedFilename"] == "named.raucb"


def test_upload_ignores_unknown_query_parameters(http):
    sm = module(http)
    artifact = upload(http, sm["id"], query={"shalsum": "garbage", "foo": "bar"}).json
    assert artifact["hashes"]["sha1"] == hashlib.sha1(PAYLOAD).hexdigest()


def test_upload_without_any_filename_is_400_and_stores_nothing(server, http):
    sm = module(http)
    post_multipart(http, sm["id"], [("file", None, PAYLOAD)], status=400)
    assert_nothing_stored(server, http, sm["id"])


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_matching_checksum_query_parameter_is_201(http, kind):
    sm = module(http)
    digest = hashlib.new(kind, PAYLOAD).hexdigest().upper()
    artifact = upload(http, sm["id"], query={kind + "sum": digest}).json
    assert artifact["hashes"][kind] == digest.lower()


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_mismatching_checksum_query_parameter_is_400_and_stores_nothing(
        server, http, kind):
    sm = module(http)
    wrong = hashlib.new(kind, b"other bytes").hexdigest()
    error(upload(http, sm["id"], query={kind + "sum": wrong}, status=400), 400,
          "hawkbit.server.error.artifact.uploadFailed.checksum.%s.match" % kind)
    assert_nothing_stored(server, http, sm["id"])


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_matching_checksum_form_field_before_the_file_is_201(http, kind):
    sm = module(http)
    response = post_multipart(http, sm["id"], [
        (kind + "sum", None, hashlib.new(kind, PAYLOAD).hexdigest().encode()),
        ("file", "bundle.raucb_0", PAYLOAD)], status=201)
    assert response.json["hashes"][kind] == hashlib.new(kind, PAYLOAD).hexdigest()


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_mismatching_checksum_form_field_before_the_file_is_400(server, http,
                                                                             kind):
    sm = module(http)
    response = upload(http, sm["id"], fields={kind + "sum": hashlib.new(kind, b"x").hexdigest()},
                      status=400)
    error(response, 400, "hawkbit.server.error.artifact.uploadFailed.checksum.%s.match" % kind)
    assert_nothing_stored(server, http, sm["id"])


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_matching_checksum_form_field_after_the_file_is_201(http, kind):
    sm = module(http)
    response = post_multipart(http, sm["id"], [
        ("file", "bundle.raucb_0", PAYLOAD),
        (kind + "sum", None, hashlib.new(kind, PAYLOAD).hexdigest().encode())], status=201)
    assert response.json["hashes"][kind] == hashlib.new(kind, PAYLOAD).hexdigest()


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_upload_with_mismatching_checksum_form_field_after_the_file_is_400_and_stores_nothing(
        server, http, kind):
    sm = module(http)
    response = post_multipart(http, sm["id"], [
        ("file", "bundle.raucb_0", PAYLOAD),
        (kind + "sum", None, hashlib.new(kind, b"x").hexdigest().encode())], status=400)
    error(response, 400, "hawkbit.server.error.artifact.uploadFailed.checksum.%s.match" % kind)
    assert_nothing_stored(server, http, sm["id"])


def test_upload_mismatch_after_the_file_keeps_a_blob_another_artifact_uses(server, http):
    sm = module(http)
    upload(http, sm["id"], PAYLOAD, "first.bin")
    post_multipart(http, sm["id"], [
        ("file", "second.bin", PAYLOAD),
        ("sha1sum", None, hashlib.sha1(b"x").hexdigest().encode())], status=400)
    assert os.path.isfile(blob_path(server, PAYLOAD))
    assert [a["providedFilename"] for a in http.get(artifacts_url(sm["id"])).json] == [
        "first.bin"]


def test_upload_without_file_part_is_400_and_stores_nothing(server, http):
    sm = module(http)
    response = post_multipart(http, sm["id"], [("upload", "bundle.raucb_0", PAYLOAD)],
                              status=400)
    assert response.status_int == 400
    assert_nothing_stored(server, http, sm["id"])


def test_upload_that_is_not_multipart_is_400_and_stores_nothing(server, http):
    sm = module(http)
    http.post(artifacts_url(sm["id"]), PAYLOAD, content_type="application/octet-stream",
              status=400)
    assert_nothing_stored(server, http, sm["id"])


def test_upload_of_an_empty_file_is_400_with_empty_body(server, http):
    sm = module(http)
    response = upload(http, sm["id"], b"", status=400)
    assert response.body == b""
    assert_nothing_stored(server, http, sm["id"])


def test_upload_of_a_filename_already_in_the_module_is_409(server, http):
    sm = module(http)
    first = upload(http, sm["id"], PAYLOAD, "bundle.raucb_0").json
    error(upload(http, sm["id"], b"different bytes", "bundle.raucb_0", status=409), 409,
          ALREADY_EXISTS)
    [listed] = http.get(artifacts_url(sm["id"])).json
    assert (listed["id"], listed["hashes"]) == (first["id"], first["hashes"])
    assert not os.path.exists(blob_path(server, b"different bytes"))


def test_duplicate_filename_with_the_same_bytes_keeps_the_existing_blob(server, http):
    sm = module(http)
    upload(http, sm["id"], PAYLOAD, "bundle.raucb_0")
    error(upload(http, sm["id"], PAYLOAD, "bundle.raucb_0", status=409), 409, ALREADY_EXISTS)
    with open(blob_path(server, PAYLOAD), "rb") as stored:
        assert stored.read() == PAYLOAD
    assert [f for f in stored_files(server) if not f.startswith("tmp")] == [
        os.path.relpath(blob_path(server, PAYLOAD), artifact_root(server))]


def test_same_filename_in_another_module_is_fine(http):
    first, second = module(http, name="a"), module(http, name="b")
    upload(http, first["id"], filename="bundle.raucb_0")
    assert upload(http, second["id"], filename="bundle.raucb_0").status_int == 201


def test_upload_to_a_locked_module_is_423_and_stores_nothing(server, http):
    sm = module(http)
    http.put_json("%s/softwaremodules/%d" % (API, sm["id"]), {"locked": True})
    error(upload(http, sm["id"], status=423), 423, LOCKED)
    assert_nothing_stored(server, http, sm["id"])


def test_unlocked_module_accepts_uploads_again(http):
    sm = module(http)
    http.put_json("%s/softwaremodules/%d" % (API, sm["id"]), {"locked": True})
    unlocked = http.put_json("%s/softwaremodules/%d" % (API, sm["id"]), {"locked": False}).json
    assert unlocked["locked"] is False
    assert upload(http, sm["id"]).status_int == 201


def test_upload_to_a_soft_deleted_module_is_404_deleted(server, http):
    sm = module(http)
    distribution_set(http, [sm["id"]])
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    error(upload(http, sm["id"], status=404), 404, DELETED)
    assert stored_files(server) == []


def test_upload_to_an_unknown_module_is_404(server, http):
    error(upload(http, 4711, status=404), 404, NOT_FOUND)
    assert stored_files(server) == []


def test_upload_above_the_size_limit_is_413_and_stores_nothing(small):
    sm = module(small.http)
    response = upload(small.http, sm["id"], b"x" * 1001, status=413)
    error(response, 413, FILE_TOO_LARGE)
    assert_nothing_stored(small, small.http, sm["id"])


def test_upload_far_above_the_size_limit_is_413_and_stores_nothing(small):
    sm = module(small.http)
    error(upload(small.http, sm["id"], b"x" * 200000, status=413), 413, FILE_TOO_LARGE)
    assert_nothing_stored(small, small.http, sm["id"])


def test_upload_of_exactly_the_size_limit_is_201(small):
    sm = module(small.http)
    assert upload(small.http, sm["id"], b"x" * 1000).json["size"] == 1000


@pytest.mark.parametrize("given", ["/home/builder/images/bundle.raucb",
                                   "images/bundle.raucb", "C:\\images\\bundle.raucb"])
def test_upload_keeps_only_the_last_path_component_of_the_part_filename(http, given):
    sm = module(http)
    assert upload(http, sm["id"], filename=given).json["providedFilename"] == "bundle.raucb"


def test_upload_keeps_only_the_last_path_component_of_the_filename_parameter(http):
    sm = module(http)
    artifact = upload(http, sm["id"], query={"filename": "../../etc/bundle.raucb"}).json
    assert artifact["providedFilename"] == "bundle.raucb"


@pytest.mark.parametrize("given", ["..", "images/..", ".", "bad\x00name.bin"])
def test_upload_with_unusable_filename_is_400_and_stores_nothing(server, http, given):
    sm = module(http)
    response = upload(http, sm["id"], query={"filename": given}, status=400)
    assert response.status_int == 400
    assert_nothing_stored(server, http, sm["id"])


def test_upload_with_dotdot_part_filename_is_400_and_stores_nothing(server, http):
    sm = module(http)
    post_multipart(http, sm["id"], [("file", "..", PAYLOAD)], status=400)
    assert_nothing_stored(server, http, sm["id"])


def test_upload_with_dotdot_filename_field_after_the_file_is_400_and_stores_nothing(server,
                                                                                  http):
    sm = module(http)
    post_multipart(http, sm["id"], [("file", "bundle.raucb_0", PAYLOAD),
                                    ("filename", None, b"..")], status=400)
    assert_nothing_stored(server, http, sm["id"])


def test_upload_filename_form_field_after_the_file_overrides_part_filename(http):
    sm = module(http)
    response = post_multipart(http, sm["id"], [("file", "part.bin", PAYLOAD),
                                               ("filename", None, b"late.raucb")], status=201)
    assert response.json["providedFilename"] == "late.raucb"


# --- artifacts: list, get, delete, download (§9.6) ------------------------------------------

def test_artifact_list_is_a_plain_array_with_self_links_only(http):
    sm = module(http)
    first = upload(http, sm["id"], b"one", "a.bin").json
    second = upload(http, sm["id"], b"two", "b.bin").json
    listed = http.get(artifacts_url(sm["id"])).json
    assert isinstance(listed, list)
    assert [a["id"] for a in listed] == [first["id"], second["id"]]
    assert [a["providedFilename"] for a in listed] == ["a.bin", "b.bin"]
    assert all(set(a["_links"]) == {"self"} for a in listed)


def test_artifact_list_with_full_representation_has_download_links(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    [listed] = http.get(artifacts_url(sm["id"], {"representation": "full"})).json
    assert listed["_links"] == artifact["_links"]


def test_artifact_list_of_unknown_module_is_404(http):
    error(http.get(artifacts_url(4711), status=404), 404, NOT_FOUND)


def test_get_artifact(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    got = http.get("%s/%d" % (artifacts_url(sm["id"]), artifact["id"])).json
    assert got == artifact


def test_get_artifact_of_another_module_is_404(http):
    first, second = module(http, name="a"), module(http, name="b")
    artifact = upload(http, first["id"]).json
    error(http.get("%s/%d" % (artifacts_url(second["id"]), artifact["id"]), status=404),
          404, NOT_FOUND)
    error(http.get("%s/4711" % artifacts_url(first["id"]), status=404), 404, NOT_FOUND)


def test_delete_artifact_removes_the_blob_when_unshared(server, http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    assert os.path.isfile(blob_path(server, PAYLOAD))
    response = http.delete("%s/%d" % (artifacts_url(sm["id"]), artifact["id"]), status=204)
    assert response.body == b""
    assert http.get(artifacts_url(sm["id"])).json == []
    assert not os.path.exists(blob_path(server, PAYLOAD))
    error(http.get("%s/%d" % (artifacts_url(sm["id"]), artifact["id"]), status=404), 404,
          NOT_FOUND)


def test_delete_artifact_keeps_the_blob_another_artifact_shares(server, http):
    first, second = module(http, name="a"), module(http, name="b")
    artifact = upload(http, first["id"], PAYLOAD, "a.bin").json
    upload(http, second["id"], PAYLOAD, "b.bin")
    http.delete("%s/%d" % (artifacts_url(first["id"]), artifact["id"]), status=204)
    with open(blob_path(server, PAYLOAD), "rb") as stored:
        assert stored.read() == PAYLOAD
    assert http.get(artifacts_url(second["id"]) + "/%d" % (artifact["id"] + 1)).json[
        "providedFilename"] == "b.bin"


def test_delete_artifact_of_another_module_is_404(http):
    first, second = module(http, name="a"), module(http, name="b")
    artifact = upload(http, first["id"]).json
    error(http.delete("%s/%d" % (artifacts_url(second["id"]), artifact["id"]), status=404),
          404, NOT_FOUND)
    assert len(http.get(artifacts_url(first["id"])).json) == 1


def test_delete_artifact_of_a_locked_module_is_423(server, http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    http.put_json("%s/softwaremodules/%d" % (API, sm["id"]), {"locked": True})
    error(http.delete("%s/%d" % (artifacts_url(sm["id"]), artifact["id"]), status=423), 423,
          LOCKED)
    assert os.path.isfile(blob_path(server, PAYLOAD))


def test_download_answers_the_bytes_with_headers(http):
    sm = module(http)
    artifact = upload(http, sm["id"], PAYLOAD, "bundle.raucb_0").json
    response = http.get(download_url(sm["id"], artifact["id"]))
    assert response.status_int == 200
    assert response.body == PAYLOAD
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(PAYLOAD))
    assert response.headers["ETag"] == '"%s"' % hashlib.sha1(PAYLOAD).hexdigest()
    assert response.headers["Content-Disposition"] == "attachment;filename=bundle.raucb_0"
    assert response.headers["Accept-Ranges"] == "bytes"


def test_upload_filename_query_parameter_is_decoded_as_utf8(http):
    sm = module(http)
    artifact = upload(http, sm["id"], query={"filename": "b\u00fcndle.bin"}).json
    assert artifact["providedFilename"] == "b\u00fcndle.bin"


def test_upload_non_ascii_part_filename_is_kept(http):
    sm = module(http)
    response = post_multipart(http, sm["id"], [
        ("file", "b\u00fcndle.bin", PAYLOAD)], status=201)
    assert response.json["providedFilename"] == "b\u00fcndle.bin"


def test_download_of_a_non_ascii_filename_uses_rfc_6266_encoding(http):
    sm = module(http)
    artifact = post_multipart(http, sm["id"], [
        ("file", "part.bin", PAYLOAD),
        ("filename", None, "b\u00fcndle.bin".encode("utf-8"))], status=201).json
    assert artifact["providedFilename"] == "b\u00fcndle.bin"
    disposition = http.get(download_url(sm["id"], artifact["id"])).headers[
        "Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''b%C3%BCndle.bin" in disposition


def test_download_with_range_is_206(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    response = http.get(download_url(sm["id"], artifact["id"]),
                        headers={"Range": "bytes=10-19"}, status=206)
    assert response.body == PAYLOAD[10:20]
    assert response.headers["Content-Range"] == "bytes 10-19/%d" % len(PAYLOAD)
    assert response.headers["Content-Length"] == "10"


def test_download_with_unsatisfiable_range_is_416(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    response = http.get(download_url(sm["id"], artifact["id"]),
                        headers={"Range": "bytes=%d-" % (len(PAYLOAD) + 10)}, status=416)
    assert response.headers["Content-Range"] == "bytes */%d" % len(PAYLOAD)


def test_download_with_non_matching_if_match_is_412(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    response = http.get(download_url(sm["id"], artifact["id"]),
                        headers={"If-Match": '"%s"' % ("0" * 40)}, status=412)
    assert response.body == b""
    http.get(download_url(sm["id"], artifact["id"]),
             headers={"If-Match": '"%s"' % hashlib.sha1(PAYLOAD).hexdigest()}, status=200)


def test_download_of_a_soft_deleted_module_is_410(http):
    sm = module(http)
    artifact = upload(http, sm["id"]).json
    distribution_set(http, [sm["id"]])
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    error(http.get(download_url(sm["id"], artifact["id"]), status=410), 410, BINARY_DELETED)


def test_download_of_unknown_artifact_is_404(http):
    sm = module(http)
    error(http.get(download_url(sm["id"], 4711), status=404), 404, NOT_FOUND)


# --- distribution sets (§10.1 - §10.3) ------------------------------------------------------

def test_create_set_rauc_single_module_example(http):
    sm = module(http)
    [created] = create_sets(http, [{"name": "distribution 1.0 (4711.2)",
                                    "description": "Test distribution", "version": "1.0",
                                    "modules": [{"id": sm["id"]}], "type": "os"}]).json
    assert isinstance(created["id"], int)
    assert {key: created[key] for key in ("name", "description", "version", "type",
                                          "typeName", "locked", "deleted", "valid",
                                          "complete", "requiredMigrationStep")} == {
        "name": "distribution 1.0 (4711.2)", "description": "Test distribution",
        "version": "1.0", "type": "os", "typeName": "OS only", "locked": False,
        "deleted": False, "valid": True, "complete": True, "requiredMigrationStep": False}
    assert [m["id"] for m in created["modules"]] == [sm["id"]]
    assert created["_links"] == {"self": {
        "href": "%s%s/distributionsets/%d" % (BASE, API, created["id"])}}


def test_create_set_rauc_two_application_modules_example(http):
    first = module(http, name="app A", type_key="application")
    second = module(http, name="app B", type_key="application")
    [created] = create_sets(http, [{"name": "distribution 1.0 (apps)",
                                    "description": "Test distribution", "version": "1.0",
                                    "modules": [{"id": first["id"]}, {"id": second["id"]}],
                                    "type": "app"}]).json
    assert (created["type"], created["typeName"], created["complete"]) == ("app",
                                                                          "App(s) only", True)
    assert sorted(m["id"] for m in created["modules"]) == [first["id"], second["id"]]


def test_create_set_without_type_uses_os_app(http):
    sm = module(http)
    created = distribution_set(http, [sm["id"]], type_key=None)
    assert (created["type"], created["typeName"]) == ("os_app", "OS with app(s)")


def test_create_sets_answers_in_request_order(http):
    created = create_sets(http, [{"name": "z", "version": "1"}, {"name": "a", "version": "1"}])
    assert [s["name"] for s in created.json] == ["z", "a"]


def test_create_set_with_unknown_module_is_404_and_creates_nothing(http):
    sm = module(http)
    error(create_sets(http, [{"name": "ok", "version": "1", "modules": [{"id": sm["id"]}]},
                             {"name": "bad", "version": "1", "modules": [{"id": 4711}]}],
                      status=404), 404, NOT_FOUND)
    assert http.get(API + "/distributionsets").json["total"] == 0


def test_create_set_with_unsupported_module_type_is_400(http):
    app = module(http, type_key="application")
    error(create_sets(http, [{"name": "s", "version": "1", "type": "os",
                              "modules": [{"id": app["id"]}]}], status=400), 400, UNSUPPORTED)
    assert http.get(API + "/distributionsets").json["total"] == 0


def test_create_set_with_unknown_type_is_404(http):
    error(create_sets(http, [{"name": "s", "version": "1", "type": "nope"}], status=404),
          404, NOT_FOUND)


def test_create_duplicate_set_is_409(http):
    create_sets(http, [{"name": "s", "version": "1", "type": "os"}])
    error(create_sets(http, [{"name": "s", "version": "1", "type": "os"}], status=409), 409,
          ALREADY_EXISTS)
    assert http.get(API + "/distributionsets").json["total"] == 1


def test_create_sets_duplicate_inside_one_request_is_409_and_creates_nothing(http):
    error(create_sets(http, [{"name": "s", "version": "1"}, {"name": "s", "version": "1"}],
                      status=409), 409, ALREADY_EXISTS)
    assert http.get(API + "/distributionsets").json["total"] == 0


def test_get_set_embeds_modules_and_has_four_links(http):
    sm = module(http)
    ds = distribution_set(http, [sm["id"]])
    document = http.get("%s/distributionsets/%d" % (API, ds["id"])).json
    path = "%s%s/distributionsets/%d" % (BASE, API, ds["id"])
    os_type = type_id(http, "distributionsettypes", "os")
    assert (document["complete"], document["valid"], document["locked"],
            document["deleted"]) == (True, True, False, False)
    [embedded] = document["modules"]
    assert embedded["id"] == sm["id"] and embedded["type"] == "os"
    assert embedded["_links"] == {"self": {
        "href": "%s%s/softwaremodules/%d" % (BASE, API, sm["id"])}}
    assert document["_links"] == {
        "self": {"href": path},
        "modules": {"href": path + "/assignedSM?offset=0&limit=50"},
        "type": {"href": "%s%s/distributionsettypes/%d" % (BASE, API, os_type)},
        "metadata": {"href": path + "/metadata"}}


def test_set_without_its_mandatory_module_is_incomplete(http):
    ds = create_sets(http, [{"name": "empty", "version": "1", "type": "os"}]).json[0]
    assert ds["complete"] is False and ds["modules"] == []
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["complete"] is False


def test_get_unknown_set_is_404(http):
    error(http.get(API + "/distributionsets/4711", status=404), 404, NOT_FOUND)


def test_set_list_filters_with_q(http):
    create_sets(http, [{"name": "alpha", "version": "1", "type": "os"},
                       {"name": "beta", "version": "1", "type": "app"}])
    assert [s["name"] for s in http.get(API + "/distributionsets?q=name==beta").json[
        "content"]] == ["beta"]
    assert [s["name"] for s in http.get(API + "/distributionsets?q=type==os").json[
        "content"]] == ["alpha"]


def test_set_list_newest_first_with_limit_1(http):
    for name in ("old", "middle", "new"):
        create_sets(http, [{"name": name, "version": "1"}])
        time.sleep(0.01)
    page = http.get(API + "/distributionsets?sort=createdAt:DESC&limit=1").json
    assert (page["total"], page["size"], page["content"][0]["name"]) == (3, 1, "new")
    assert set(page["content"][0]["_links"]) == {"self"}


def test_update_set(http):
    ds = create_sets(http, [{"name": "s", "version": "1"}]).json[0]
    response = http.put_json("%s/distributionsets/%d" % (API, ds["id"]),
                             {"name": "renamed", "description": "changed", "version": "2"})
    assert response.status_int == 200
    assert (response.json["name"], response.json["description"], response.json["version"]) == (
        "renamed", "changed", "2")
    assert set(response.json["_links"]) == {"self", "modules", "type", "metadata"}
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["name"] == "renamed"


def test_update_set_accepts_the_whole_document_it_got(http):
    sm = module(http)
    ds = distribution_set(http, [sm["id"]])
    document = http.get("%s/distributionsets/%d" % (API, ds["id"])).json
    document["description"] = "put back"
    updated = http.put_json("%s/distributionsets/%d" % (API, ds["id"]), document).json
    assert updated["description"] == "put back"
    assert [m["id"] for m in updated["modules"]] == [sm["id"]]


def test_create_set_with_trailing_slash(http):
    response = http.post_json(API + "/distributionsets/", [{"name": "s", "version": "1"}],
                              status=201)
    assert response.json[0]["name"] == "s"


def test_update_set_to_existing_name_and_version_is_409(http):
    create_sets(http, [{"name": "a", "version": "1"}])
    other = create_sets(http, [{"name": "b", "version": "1"}]).json[0]
    error(http.put_json("%s/distributionsets/%d" % (API, other["id"]), {"name": "a"},
                        status=409), 409, ALREADY_EXISTS)


def test_changing_required_migration_step_of_a_locked_set_is_423(http):
    ds = create_sets(http, [{"name": "s", "version": "1"}]).json[0]
    http.put_json("%s/distributionsets/%d" % (API, ds["id"]), {"locked": True})
    error(http.put_json("%s/distributionsets/%d" % (API, ds["id"]),
                        {"requiredMigrationStep": True}, status=423), 423, LOCKED)
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json[
        "requiredMigrationStep"] is False


def test_delete_unused_set_is_hard(http):
    ds = create_sets(http, [{"name": "s", "version": "1"}]).json[0]
    assert http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204).body == b""
    error(http.get("%s/distributionsets/%d" % (API, ds["id"]), status=404), 404, NOT_FOUND)


def test_delete_set_an_action_references_is_soft_and_repeatable(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["deleted"] is True
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    assert http.get(API + "/distributionsets").json["total"] == 0
    assert [s["id"] for s in http.get(
        API + "/distributionsets?soft_deleted_mode=ONLY_SOFT_DELETED").json["content"]] == [
        ds["id"]]


def test_delete_set_does_not_cancel_its_open_action(http):
    sm, ds = deployable(http)
    action_id = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    action = http.get("%s/targets/%s/actions/%d" % (API, CID, action_id)).json
    assert (action["status"], action["active"]) == ("running", True)


def test_delete_unknown_set_is_404(http):
    error(http.delete(API + "/distributionsets/4711", status=404), 404, NOT_FOUND)


def test_update_soft_deleted_set_is_404_deleted(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    error(http.put_json("%s/distributionsets/%d" % (API, ds["id"]), {"description": "x"},
                        status=404), 404, DELETED)


def assigned_sm_url(set_id, module_id=None):
    url = "%s/distributionsets/%d/assignedSM" % (API, set_id)
    return url if module_id is None else "%s/%d" % (url, module_id)


def test_assigned_modules_are_a_page(http):
    first = module(http, name="a", type_key="application")
    second = module(http, name="b", type_key="application")
    ds = distribution_set(http, [first["id"], second["id"]], type_key="app")
    page = http.get(assigned_sm_url(ds["id"])).json
    assert (page["total"], page["size"]) == (2, 2)
    assert [m["id"] for m in page["content"]] == [first["id"], second["id"]]
    limited = http.get(assigned_sm_url(ds["id"]) + "?limit=1&offset=1").json
    assert (limited["total"], limited["size"], limited["content"][0]["id"]) == (2, 1,
                                                                                second["id"])


def test_add_and_remove_assigned_modules(http):
    ds = create_sets(http, [{"name": "s", "version": "1", "type": "os_app"}]).json[0]
    os_module = module(http, name="rootfs")
    app = module(http, name="app", type_key="application")
    response = http.post_json(assigned_sm_url(ds["id"]), [{"id": os_module["id"]},
                                                         {"id": app["id"]}], status=204)
    assert response.body == b""
    document = http.get("%s/distributionsets/%d" % (API, ds["id"])).json
    assert sorted(m["id"] for m in document["modules"]) == [os_module["id"], app["id"]]
    assert document["complete"] is True
    http.delete(assigned_sm_url(ds["id"], os_module["id"]), status=204)
    document = http.get("%s/distributionsets/%d" % (API, ds["id"])).json
    assert [m["id"] for m in document["modules"]] == [app["id"]]
    assert document["complete"] is False


def test_add_unknown_or_unsupported_module_to_set(http):
    ds = create_sets(http, [{"name": "s", "version": "1", "type": "os"}]).json[0]
    app = module(http, type_key="application")
    error(http.post_json(assigned_sm_url(ds["id"]), [{"id": 4711}], status=404), 404, NOT_FOUND)
    error(http.post_json(assigned_sm_url(ds["id"]), [{"id": app["id"]}], status=400), 400,
          UNSUPPORTED)
    assert http.get(assigned_sm_url(ds["id"])).json["total"] == 0


def test_changing_modules_of_a_locked_set_is_423(http):
    sm = module(http)
    ds = distribution_set(http, [sm["id"]], type_key="os_app")
    app = module(http, name="app", type_key="application")
    http.put_json("%s/distributionsets/%d" % (API, ds["id"]), {"locked": True})
    error(http.post_json(assigned_sm_url(ds["id"]), [{"id": app["id"]}], status=423), 423,
          LOCKED)
    error(http.delete(assigned_sm_url(ds["id"], sm["id"]), status=423), 423, LOCKED)
    assert [m["id"] for m in http.get(assigned_sm_url(ds["id"])).json["content"]] == [sm["id"]]


def test_assigned_and_installed_targets_follow_the_deployment(server, http):
    sm, ds = deployable(http)
    target(http, "dev-2", "token-2")
    url = "%s/distributionsets/%d/" % (API, ds["id"])
    assert http.get(url + "assignedTargets").json == {"content": [], "total": 0, "size": 0}
    action_id = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    assigned = http.get(url + "assignedTargets").json
    assert [t["controllerId"] for t in assigned["content"]] == [CID]
    assert assigned["content"][0]["_links"]["self"]["href"] == "%s%s/targets/%s" % (BASE, API,
                                                                                    CID)
    assert http.get(url + "installedTargets").json["total"] == 0
    server.http.post_json("%s/%s/deploymentBase/%d/feedback" % (DEVICE, CID, action_id),
                          {"id": str(action_id), "status": {"execution": "closed",
                                                            "result": {"finished": "success"}}},
                          headers=token(TOKEN), status=200)
    installed = http.get(url + "installedTargets").json
    assert (installed["total"], [t["controllerId"] for t in installed["content"]]) == (1, [CID])
    assert [t["controllerId"] for t in http.get(url + "assignedTargets").json["content"]] == [
        CID]


def set_metadata_url(set_id, key=None):
    url = "%s/distributionsets/%d/metadata" % (API, set_id)
    return url if key is None else url + "/" + key


def test_set_metadata_crud(http):
    ds = create_sets(http, [{"name": "s", "version": "1"}]).json[0]
    assert http.post_json(set_metadata_url(ds["id"]), [{"key": "k", "value": "v"}],
                          status=201).body == b""
    assert http.get(set_metadata_url(ds["id"])).json == {
        "content": [{"key": "k", "value": "v"}], "total": 1, "size": 1}
    http.post_json(set_metadata_url(ds["id"]), [{"key": "k", "value": "w"}], status=201)
    assert http.get(set_metadata_url(ds["id"], "k")).json == {"key": "k", "value": "w"}
    http.put_json(set_metadata_url(ds["id"], "k"), {"value": "x"}, status=204)
    assert http.get(set_metadata_url(ds["id"], "k")).json == {"key": "k", "value": "x"}
    http.delete(set_metadata_url(ds["id"], "k"), status=204)
    error(http.get(set_metadata_url(ds["id"], "k"), status=404), 404, NOT_FOUND)
    error(http.delete(set_metadata_url(ds["id"], "k"), status=404), 404, NOT_FOUND)


# --- assignment (§10.4 - §10.6) -------------------------------------------------------------

def test_assignment_answers_counts_and_action_links(http):
    sm, ds = deployable(http)
    response = assign(http, ds["id"], [{"id": CID}])
    assert response.status_int == 200
    body = response.json
    assert (body["assigned"], body["alreadyAssigned"], body["total"]) == (1, 0, 1)
    [action] = body["assignedActions"]
    assert isinstance(action["id"], int)
    assert action["_links"] == {"self": {
        "href": "%s%s/targets/%s/actions/%d" % (BASE, API, CID, action["id"])}}


def test_assigned_target_sees_deployment_base_on_root_poll(server, http):
    sm, ds = deployable(http)
    action_id = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    poll = device_get(server, "").json
    href = poll["_links"]["deploymentBase"]["href"]
    assert href.startswith("%s%s/%s/deploymentBase/%d?c=" % (BASE, DEVICE, CID, action_id))
    document = deployment(server, action_id)
    [chunk] = document["chunks"]
    assert chunk["name"] == sm["name"]
    assert [a["filename"] for a in chunk["artifacts"]] == ["bundle.raucb_0"]


def test_assignment_sets_the_target_pending(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    assert http.get("%s/targets/%s" % (API, CID)).json["updateStatus"] == "pending"
    assert http.get("%s/targets/%s/assignedDS" % (API, CID)).json["id"] == ds["id"]


@pytest.mark.parametrize("request_fields, download, update", [
    ({}, "forced", "forced"),
    ({"type": "forced"}, "forced", "forced"),
    ({"type": "soft"}, "attempt", "attempt"),
    ({"type": "downloadonly"}, "forced", "skip"),
    ({"type": "timeforced", "forcetime": "FUTURE"}, "attempt", "attempt"),
    ({"type": "timeforced", "forcetime": "PAST"}, "forced", "forced"),
])
def test_assignment_type_reaches_the_device(server, http, request_fields, download, update):
    sm, ds = deployable(http)
    item = dict(request_fields, id=CID)
    if item.get("forcetime") == "FUTURE":
        item["forcetime"] = now_ms() + 3600 * 1000
    elif item.get("forcetime") == "PAST":
        item["forcetime"] = now_ms() - 1000
    action_id = assign(http, ds["id"], [item]).json["assignedActions"][0]["id"]
    document = deployment(server, action_id)
    assert (document["download"], document["update"]) == (download, update)
    assert "maintenanceWindow" not in document


def test_timeforced_assignment_shows_its_force_time(http):
    sm, ds = deployable(http)
    forcetime = now_ms() + 3600 * 1000
    action_id = assign(http, ds["id"], [{"id": CID, "type": "timeforced",
                                         "forcetime": forcetime}]).json[
        "assignedActions"][0]["id"]
    action = http.get("%s/targets/%s/actions/%d" % (API, CID, action_id)).json
    assert (action["forceType"], action["forceTime"]) == ("timeforced", forcetime)


def test_assignment_with_future_maintenance_window(server, http):
    sm, ds = deployable(http)
    action_id = assign(http, ds["id"], [{"id": CID, "maintenanceWindow": CLOSED_WINDOW}]).json[
        "assignedActions"][0]["id"]
    document = deployment(server, action_id)
    assert document["maintenanceWindow"] == "unavailable"
    assert (document["download"], document["update"]) == ("forced", "skip")


def test_assignment_with_open_maintenance_window(server, http):
    sm, ds = deployable(http)
    action_id = assign(http, ds["id"], [{"id": CID, "maintenanceWindow": OPEN_WINDOW}]).json[
        "assignedActions"][0]["id"]
    document = deployment(server, action_id)
    assert document["maintenanceWindow"] == "available"
    assert (document["download"], document["update"]) == ("forced", "forced")


@pytest.mark.parametrize("window", [
    {"schedule": "0 0 0 1 1 ? 2099", "duration": "00:10:00"},
    {"schedule": "0 0 0 1 1 ? 2099", "timezone": "+00:00"},
    {"duration": "00:10:00", "timezone": "+00:00"},
    {"schedule": "this is no cron", "duration": "00:10:00", "timezone": "+00:00"},
    {"schedule": "0 0 0 1 1 ? 2000", "duration": "00:10:00", "timezone": "+00:00"},
], ids=["no-timezone", "no-duration", "no-schedule", "bad-cron", "no-future-window"])
def test_assignment_with_invalid_maintenance_window_is_400(http, window):
    sm, ds = deployable(http)
    error(assign(http, ds["id"], [{"id": CID, "maintenanceWindow": window}], status=400), 400,
          WINDOW_INVALID)
    assert actions_of(http)["total"] == 0


@pytest.mark.parametrize("weight", [-1, 1001])
def test_assignment_weight_out_of_range_is_400(http, weight):
    sm, ds = deployable(http)
    error(assign(http, ds["id"], [{"id": CID, "weight": weight}], status=400), 400, CONSTRAINT)
    assert actions_of(http)["total"] == 0


def test_assignment_weight_in_range_is_shown_on_the_action(http):
    sm, ds = deployable(http)
    action_id = assign(http, ds["id"], [{"id": CID, "weight": 0}]).json[
        "assignedActions"][0]["id"]
    assert http.get("%s/targets/%s/actions/%d" % (API, CID, action_id)).json["weight"] == 0


def test_assignment_with_unknown_type_is_400(http):
    sm, ds = deployable(http)
    error(assign(http, ds["id"], [{"id": CID, "type": "eventually"}], status=400), 400,
          NOT_READABLE)
    assert actions_of(http)["total"] == 0


def test_same_target_twice_is_400_multi_assignment(http):
    sm, ds = deployable(http)
    error(assign(http, ds["id"], [{"id": CID}, {"id": CID, "type": "soft"}], status=400), 400,
          MULTI_ASSIGNMENT)
    assert actions_of(http)["total"] == 0


def test_unknown_target_is_silently_dropped(http):
    sm, ds = deployable(http)
    body = assign(http, ds["id"], [{"id": "nobody"}, {"id": CID}]).json
    assert (body["assigned"], body["alreadyAssigned"], body["total"]) == (1, 0, 1)
    assert len(body["assignedActions"]) == 1


def test_assigned_actions_follow_request_order(http):
    sm, ds = deployable(http)
    target(http, "dev-2", "token-2")
    body = assign(http, ds["id"], [{"id": "dev-2"}, {"id": CID}]).json
    assert body["assigned"] == 2
    hrefs = [a["_links"]["self"]["href"] for a in body["assignedActions"]]
    assert hrefs == ["%s%s/targets/dev-2/actions/%d" % (BASE, API, body["assignedActions"][0][
        "id"]), "%s%s/targets/%s/actions/%d" % (BASE, API, CID, body["assignedActions"][1]["id"])]


def test_assignment_body_must_be_an_array(http):
    sm, ds = deployable(http)
    error(assign(http, ds["id"], {"id": CID}, status=400), 400, NOT_READABLE)
    assert actions_of(http)["total"] == 0


def test_reassigning_the_same_set_is_already_assigned(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    body = assign(http, ds["id"], [{"id": CID}]).json
    assert body == {"assigned": 0, "alreadyAssigned": 1, "total": 1, "assignedActions": []}
    assert actions_of(http)["total"] == 1


def test_assigning_a_new_set_cancels_the_open_action(http):
    sm, ds = deployable(http)
    first = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    other = module(http, name="rootfs 2")
    ds2 = distribution_set(http, [other["id"]], name="distribution 2.0")
    second = assign(http, ds2["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    assert second != first
    old = http.get("%s/targets/%s/actions/%d" % (API, CID, first)).json
    assert (old["status"], old["type"], old["active"]) == ("canceling", "cancel", True)
    new = http.get("%s/targets/%s/actions/%d" % (API, CID, second)).json
    assert (new["status"], new["type"]) == ("running", "update")


def test_offline_assignment_records_the_installation(http):
    sm, ds = deployable(http)
    body = assign(http, ds["id"], [{"id": CID}], offline=True).json
    assert (body["assigned"], body["alreadyAssigned"], body["total"]) == (1, 0, 1)
    action_id = body["assignedActions"][0]["id"]
    document = http.get("%s/targets/%s" % (API, CID)).json
    assert document["updateStatus"] == "in_sync"
    assert http.get("%s/targets/%s/installedDS" % (API, CID)).json["id"] == ds["id"]
    assert http.get("%s/targets/%s/assignedDS" % (API, CID)).json["id"] == ds["id"]
    action = http.get("%s/targets/%s/actions/%d" % (API, CID, action_id)).json
    assert (action["status"], action["active"]) == ("finished", False)


def test_offline_assignment_skips_a_pending_target(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    other = module(http, name="rootfs 2")
    ds2 = distribution_set(http, [other["id"]], name="distribution 2.0")
    body = assign(http, ds2["id"], [{"id": CID}], offline=True).json
    assert body == {"assigned": 0, "alreadyAssigned": 1, "total": 1, "assignedActions": []}
    assert http.get("%s/targets/%s/assignedDS" % (API, CID)).json["id"] == ds["id"]


def test_assigning_an_incomplete_set_is_400(http):
    target(http)
    ds = create_sets(http, [{"name": "empty", "version": "1", "type": "os"}]).json[0]
    error(assign(http, ds["id"], [{"id": CID}], status=400), 400, INCOMPLETE)
    assert actions_of(http)["total"] == 0


def test_assigning_a_soft_deleted_set_is_404_deleted(http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    target(http, "dev-2", "token-2")
    error(assign(http, ds["id"], [{"id": "dev-2"}], status=404), 404, DELETED)
    assert actions_of(http, "dev-2")["total"] == 0


def test_assigning_an_unknown_set_is_404(http):
    target(http)
    error(assign(http, 4711, [{"id": CID}], status=404), 404, NOT_FOUND)


def test_assignment_locks_the_set_and_its_modules(http):
    sm, ds = deployable(http)
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["locked"] is False
    assign(http, ds["id"], [{"id": CID}])
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["locked"] is True
    assert http.get("%s/softwaremodules/%d" % (API, sm["id"])).json["locked"] is True
    [embedded] = http.get("%s/distributionsets/%d" % (API, ds["id"])).json["modules"]
    assert embedded["locked"] is True


def test_no_implicit_lock_when_it_is_disabled(server, http):
    server.configure(**{"implicit.lock.enabled": False})
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["locked"] is False
    assert http.get("%s/softwaremodules/%d" % (API, sm["id"])).json["locked"] is False


def test_upload_to_a_module_locked_by_assignment_is_423(server, http):
    sm, ds = deployable(http)
    assign(http, ds["id"], [{"id": CID}])
    error(upload(http, sm["id"], b"more bytes", "bundle.raucb_1", status=423), 423, LOCKED)
    assert not os.path.exists(blob_path(server, b"more bytes"))
    assert len(http.get(artifacts_url(sm["id"])).json) == 1


# --- deletion during a deployment (§5.6, project decision) ----------------------------------

def test_deleting_set_and_module_during_a_deployment_keeps_the_device_going(server, http):
    sm, ds = deployable(http, PAYLOAD, "bundle.raucb_0")
    action_id = assign(http, ds["id"], [{"id": CID}]).json["assignedActions"][0]["id"]
    http.delete("%s/distributionsets/%d" % (API, ds["id"]), status=204)
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    http.delete("%s/softwaremodules/%d" % (API, sm["id"]), status=204)
    assert http.get("%s/distributionsets/%d" % (API, ds["id"])).json["deleted"] is True
    assert http.get("%s/softwaremodules/%d" % (API, sm["id"])).json["deleted"] is True

    poll = device_get(server, "").json
    assert "deploymentBase" in poll["_links"]
    [chunk] = deployment(server, action_id)["chunks"]
    [artifact] = chunk["artifacts"]
    assert artifact["hashes"]["sha1"] == hashlib.sha1(PAYLOAD).hexdigest()
    href = artifact["_links"]["download-http"]["href"]
    assert href.startswith(BASE)
    response = server.http.get(href[len(BASE):], headers=token(TOKEN), status=200)
    assert response.body == PAYLOAD


def test_upload_works_with_the_multipart_release_python_3_9_gets(server, monkeypatch):
    """multipart 1.x, the last release for Python 3.9, hands out bytearray chunks."""
    import multipart
    parse = multipart.PushMultipartParser.parse

    def parse_as_1_x(self, chunk):
        for event in parse(self, chunk):
            yield bytearray(event) if isinstance(event, bytes) else event
    monkeypatch.setattr(multipart.PushMultipartParser, "parse", parse_as_1_x)
    server.http.set_authorization(("Basic", ("admin", "admin")))
    module = server.http.post_json("/rest/v1/softwaremodules",
                                   [{"name": "m", "version": "1", "type": "os"}]).json[0]
    artifact = server.http.post("/rest/v1/softwaremodules/%d/artifacts" % module["id"],
                                upload_files=[("file", "fw.bin", b"firmware")]).json
    assert artifact["size"] == 8
    assert artifact["hashes"]["sha1"] == hashlib.sha1(b"firmware").hexdigest()
