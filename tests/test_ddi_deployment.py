"""DDI deployment life cycle over HTTP: deploymentBase, deployment and cancel feedback,
cancelAction, installedBase, the confirmation flow and auto-confirm (ddi-contract.md §4.3-§4.13,
§5, §6, §9; ddi-clients.md §1.5, §2.5, §3, §4, §9).

Project decisions tested as such (they differ from hawkBit on purpose):
* feedback for an action that is no longer active answers 200 with an empty body, is kept as a
  late report (a WARNING entry) and never changes the action (hawkBit: 410);
* successful feedback is 200 with an empty body, never 201/204;
* action ids are JSON strings and start at 100;
* GET deploymentBase of an inactive action answers 200 but never modifies it.
"""

import hashlib
import re

import cbor2
import pytest

import ddi_lite
import storage
from conftest import DEVICE, Server, now_ms, token
from storage import assignments
from storage.db import write
from storage.models import Action, ActionStatus, SoftwareModuleMetadata, Target

CID = "dev-1"
BASE = "http://localhost" + DEVICE + "/" + CID
SERVER_PREFIX = "Update Server: "
NOT_READABLE = "hawkbit.server.error.rest.body.notReadable"
CLOSED_WINDOW = ("0 0 0 1 1 ? 2099", "00:10:00", "+00:00")   # next opens in 2099
OPEN_WINDOW = ("0 * * * * ?", "01:00:00", "+00:00")          # opens every minute for an hour


# --- helpers -----------------------------------------------------------------------------------

def path(resource, action_id=None, cid=CID):
    suffix = "" if action_id is None else "/%s" % action_id
    return "%s/%s/%s%s" % (DEVICE, cid, resource, suffix)


def report(execution="proceeding", finished="none", details=None, **status_fields):
    status = {"execution": execution, "result": {"finished": finished}}
    if details is not None:
        status["details"] = details
    status.update(status_fields)
    return {"status": status}


def post_feedback(server, action_id, body, channel="deploymentBase", status=200, cid=CID,
                  tok="token-1"):
    return server.http.post_json(path(channel, action_id, cid) + "/feedback", body,
                                 headers=token(tok), status=status)


def get(server, url, status=200, tok="token-1"):
    return server.http.get(url, headers=token(tok), status=status)


def deployment_base(server, action_id, query="", status=200):
    return get(server, path("deploymentBase", action_id) + query, status=status)


def root_poll(server, cid=CID, tok="token-1"):
    return get(server, "%s/%s" % (DEVICE, cid), tok=tok).json


def links(document):
    return {rel: link["href"] for rel, link in document.get("_links", {}).items()}


def entries(action_id):
    return list(ActionStatus.select().where(ActionStatus.action == action_id)
                .order_by(ActionStatus.id))


def reload(action):
    return Action.get_by_id(action.id)


def target_row(cid=CID):
    return Target.get(Target.controller_id == cid)


def assert_empty(response):
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"


def cancel(action):
    assignments.cancel(action, now_ms(), "admin")
    return reload(action)


def clear_config_data_request(server):
    server.http.put_json(path("configData"), {"data": {"serial": "0001"}}, headers=token(),
                         status=200)
    assert "configData" not in links(root_poll(server))


def finished_action(server, **options):
    action = server.deployment(**options)
    post_feedback(server, action.id, report("closed", "success"))
    return reload(action)


def history(server, action_id, count=-1):
    return deployment_base(server, action_id, "?actionHistory=%d" % count).json.get(
        "actionHistory")


def own_server(tmp_path, **limits):
    overrides = {"server.data_dir": str(tmp_path / "own-data"), "server.trusted_proxies": ""}
    overrides.update({"limits." + key: str(value) for key, value in limits.items()})
    server = Server(ddi_lite.load_config(environ={}, overrides=overrides))
    server.configure(**{"authentication.targettoken.enabled": True})
    return server


@pytest.fixture
def confirming(server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    return server


# --- deploymentBase: the document ---------------------------------------------------------------

def test_first_action_id_is_100(server):
    action = server.deployment()
    assert action.id == 100


def test_deployment_base_id_is_the_action_id_as_a_json_string(server):
    action = server.deployment()
    document = deployment_base(server, action.id).json
    assert document["id"] == str(action.id)
    assert isinstance(document["id"], str)


def test_deployment_base_has_no_top_level_links(server):
    action = server.deployment()
    document = deployment_base(server, action.id).json
    assert set(document) == {"id", "deployment"}


@pytest.mark.parametrize("action_type, forced_offset, download, update", [
    ("FORCED", None, "forced", "forced"),
    ("SOFT", None, "attempt", "attempt"),
    ("TIMEFORCED", 3600_000, "attempt", "attempt"),
    ("TIMEFORCED", -60_000, "forced", "forced"),
    ("DOWNLOAD_ONLY", None, "forced", "skip"),
], ids=["forced", "soft", "timeforced-before-forced-time", "timeforced-after-forced-time",
        "download-only"])
def test_download_and_update_follow_the_action_type(server, action_type, forced_offset,
                                                     download, update):
    forced_time = now_ms() + forced_offset if forced_offset is not None else None
    action = server.deployment(action_type=action_type, forced_time=forced_time)
    deployment = deployment_base(server, action.id).json["deployment"]
    assert (deployment["download"], deployment["update"]) == (download, update)


def test_maintenance_window_key_is_absent_without_a_schedule(server):
    action = server.deployment()
    assert "maintenanceWindow" not in deployment_base(server, action.id).json["deployment"]


@pytest.mark.parametrize("action_type, download", [("FORCED", "forced"), ("SOFT", "attempt")])
def test_closed_maintenance_window_skips_the_update_but_not_the_download(server, action_type,
                                                                         download):
    action = server.deployment(action_type=action_type, window=CLOSED_WINDOW)
    deployment = deployment_base(server, action.id).json["deployment"]
    assert deployment["download"] == download
    assert deployment["update"] == "skip"
    assert deployment["maintenanceWindow"] == "unavailable"


@pytest.mark.parametrize("action_type, handling", [("FORCED", "forced"), ("SOFT", "attempt")])
def test_open_maintenance_window_is_available_and_lets_the_update_run(server, action_type,
                                                                      handling):
    action = server.deployment(action_type=action_type, window=OPEN_WINDOW)
    deployment = deployment_base(server, action.id).json["deployment"]
    assert deployment["download"] == handling
    assert deployment["update"] == handling
    assert deployment["maintenanceWindow"] == "available"


def test_download_only_stays_skip_inside_an_open_window(server):
    action = server.deployment(action_type="DOWNLOAD_ONLY", window=OPEN_WINDOW)
    deployment = deployment_base(server, action.id).json["deployment"]
    assert (deployment["download"], deployment["update"]) == ("forced", "skip")
    assert deployment["maintenanceWindow"] == "available"


def test_application_module_is_shown_as_part_bapp(server):
    server.target()
    module = server.module(name="telemetry-agent", version="1.4.0", type_key="application",
                           files={"agent.bin": b"agent"})
    action = server.assign(server.distribution_set([module], type_key="app"), CID)
    chunks = deployment_base(server, action.id).json["deployment"]["chunks"]
    assert len(chunks) == 1
    assert chunks[0]["part"] == "bApp"
    assert chunks[0]["name"] == "telemetry-agent"
    assert chunks[0]["version"] == "1.4.0"


def test_os_module_keeps_its_type_key_as_part(server):
    server.target()
    module = server.module(name="gateway-rootfs", version="2024.03.1", files={"a.swu": b"a"})
    action = server.assign(server.distribution_set([module]), CID)
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert (chunk["part"], chunk["name"], chunk["version"]) == ("os", "gateway-rootfs",
                                                                "2024.03.1")


def test_every_module_of_the_set_is_a_chunk(server):
    server.target()
    rootfs = server.module(name="rootfs", version="2.0", files={"r.swu": b"r"})
    agent = server.module(name="agent", version="3.1", type_key="application")
    action = server.assign(server.distribution_set([rootfs, agent]), CID)
    chunks = deployment_base(server, action.id).json["deployment"]["chunks"]
    assert sorted((c["part"], c["name"], c["version"]) for c in chunks) == [
        ("bApp", "agent", "3.1"), ("os", "rootfs", "2.0")]


def test_chunk_without_files_has_an_empty_artifacts_list(server):
    action = server.deployment(files={})
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert chunk["artifacts"] == []


def test_artifact_hashes_are_lowercase_hex_of_the_content(server):
    content = b"firmware image \x00\x01" * 50
    action = server.deployment(files={"fw.swu": content})
    artifact = deployment_base(server, action.id).json["deployment"]["chunks"][0]["artifacts"][0]
    assert artifact["filename"] == "fw.swu"
    assert artifact["hashes"] == {"sha1": hashlib.sha1(content).hexdigest(),
                                  "md5": hashlib.md5(content).hexdigest(),
                                  "sha256": hashlib.sha256(content).hexdigest()}
    for value in artifact["hashes"].values():
        assert re.fullmatch("[0-9a-f]+", value)


def test_artifact_size_is_an_integer(server):
    action = server.deployment(files={"fw.swu": b"x" * 2560})
    artifact = deployment_base(server, action.id).json["deployment"]["chunks"][0]["artifacts"][0]
    assert artifact["size"] == 2560
    assert type(artifact["size"]) is int


def test_artifact_has_four_absolute_links_with_percent_encoded_filename(server):
    server.target()
    module = server.module(name="spaced", files={"my fw 1.0.swu": b"abc"})
    action = server.assign(server.distribution_set([module]), CID)
    artifact = deployment_base(server, action.id).json["deployment"]["chunks"][0]["artifacts"][0]
    href = "%s/softwaremodules/%d/artifacts/my%%20fw%%201.0.swu" % (BASE, module.id)
    assert artifact["filename"] == "my fw 1.0.swu"
    assert links(artifact) == {"download": href, "download-http": href,
                               "md5sum": href + ".MD5SUM", "md5sum-http": href + ".MD5SUM"}


def test_encrypted_is_absent_for_a_plain_module(server):
    action = server.deployment()
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert "encrypted" not in chunk


def test_encrypted_is_true_for_an_encrypted_module(server):
    server.target()
    module = server.module(name="secret", files={"s.swu": b"s"}, encrypted=True)
    action = server.assign(server.distribution_set([module]), CID)
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert chunk["encrypted"] is True


def _module_with_metadata(server, entries_):
    server.target()
    module = server.module(name="with-meta", files={"m.swu": b"m"})
    with write():
        for key, value, visible in entries_:
            SoftwareModuleMetadata.create(module=module, key=key, value=value,
                                          target_visible=visible)
    return server.assign(server.distribution_set([module]), CID)


def test_metadata_lists_only_target_visible_entries(server):
    action = _module_with_metadata(server, [("min-bootloader", "2.1", True),
                                            ("internal-note", "do not show", False),
                                            ("board", "rev-b", True)])
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert sorted(chunk["metadata"], key=lambda m: m["key"]) == [
        {"key": "board", "value": "rev-b"}, {"key": "min-bootloader", "value": "2.1"}]


def test_metadata_is_absent_when_no_entry_is_target_visible(server):
    action = _module_with_metadata(server, [("internal-note", "hidden", False)])
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert "metadata" not in chunk


def test_metadata_is_absent_when_the_module_has_none(server):
    action = server.deployment()
    chunk = deployment_base(server, action.id).json["deployment"]["chunks"][0]
    assert "metadata" not in chunk


# --- deploymentBase: actionHistory and query parameters ----------------------------------------

def test_action_history_is_absent_by_default(server):
    action = server.deployment()
    assert "actionHistory" not in deployment_base(server, action.id).json


def test_action_history_is_absent_when_zero_is_asked_for(server):
    action = server.deployment()
    assert "actionHistory" not in deployment_base(server, action.id, "?actionHistory=0").json


def test_action_history_returns_the_newest_n_messages_first(server):
    action = server.deployment()
    for detail in ("one", "two", "three"):
        post_feedback(server, action.id, report(details=[detail]))
    assert history(server, action.id, 2) == {"status": "RUNNING", "messages": ["three", "two"]}


def test_action_history_counts_messages_not_entries(server):
    action = server.deployment()
    post_feedback(server, action.id, report(details=["a", "b"]))
    post_feedback(server, action.id, report(details=["c", "d"]))
    messages = history(server, action.id, 3)["messages"]
    assert len(messages) == 3
    assert set(messages[:2]) == {"c", "d"}
    assert messages[2] in ("a", "b")


def test_action_history_leaves_out_server_messages(server):
    action = server.deployment()
    deployment_base(server, action.id)                      # RETRIEVED, server line
    post_feedback(server, action.id, report())              # default server line only
    post_feedback(server, action.id, report(details=["Writing image"]))
    messages = history(server, action.id)["messages"]
    assert messages == ["Writing image", "Assignment initiated by user 'admin'"]
    assert not any(m.startswith(SERVER_PREFIX) for m in messages)


def test_action_history_includes_the_reported_status_code(server):
    action = server.deployment()
    post_feedback(server, action.id, report(code=42))
    assert history(server, action.id)["messages"][0] == "Device reported status code: 42"


def test_negative_action_history_returns_at_most_100_messages(server):
    action = server.deployment()
    for batch in range(3):
        post_feedback(server, action.id,
                      report(details=["line %d.%d" % (batch, n) for n in range(40)]))
    messages = history(server, action.id, -1)["messages"]
    assert len(messages) == 100
    assert "Assignment initiated by user 'admin'" not in messages


def test_action_history_above_100_is_capped_at_100(server):
    action = server.deployment()
    for batch in range(3):
        post_feedback(server, action.id,
                      report(details=["line %d.%d" % (batch, n) for n in range(40)]))
    assert len(history(server, action.id, 1000)["messages"]) == 100


def test_non_numeric_c_is_a_bad_request(server):
    action = server.deployment()
    deployment_base(server, action.id, "?c=abc", status=400)


def test_non_numeric_action_history_is_a_bad_request(server):
    action = server.deployment()
    deployment_base(server, action.id, "?actionHistory=all", status=400)


def test_empty_c_is_accepted(server):
    action = server.deployment()
    assert deployment_base(server, action.id, "?c=").json["id"] == str(action.id)


def test_any_integer_c_is_accepted_and_ignored(server):
    action = server.deployment()
    assert deployment_base(server, action.id, "?c=-1340577238").json["id"] == str(action.id)


def test_non_numeric_action_id_is_a_bad_request(server):
    server.deployment()
    deployment_base(server, "latest", status=400)


# --- deploymentBase: RETRIEVED bookkeeping and availability ------------------------------------

def test_first_get_shows_running_and_second_shows_retrieved(server):
    action = server.deployment()
    assert history(server, action.id, 1)["status"] == "RUNNING"
    assert history(server, action.id, 1)["status"] == "RETRIEVED"


def test_get_registers_retrieved_on_the_action(server):
    action = server.deployment()
    deployment_base(server, action.id)
    assert reload(action).status == "RETRIEVED"
    newest = entries(action.id)[-1]
    assert newest.status == "RETRIEVED"
    assert newest.messages == [
        "Update Server: Target retrieved update action and should start now the download."]


def test_repeated_gets_add_only_one_retrieved_entry(server):
    action = server.deployment()
    for _ in range(4):
        deployment_base(server, action.id)
    assert [e.status for e in entries(action.id)].count("RETRIEVED") == 1


def test_get_after_a_feedback_registers_retrieved_again(server):
    action = server.deployment()
    deployment_base(server, action.id)
    post_feedback(server, action.id, report(details=["Downloading"]))
    deployment_base(server, action.id)
    assert [e.status for e in entries(action.id)] == ["RUNNING", "RETRIEVED", "RUNNING",
                                                      "RETRIEVED"]


def test_root_poll_c_changes_after_the_first_retrieval(server):
    action = server.deployment()
    before = links(root_poll(server))["deploymentBase"]
    deployment_base(server, action.id)
    after = links(root_poll(server))["deploymentBase"]
    assert before != after
    assert after.startswith("%s/deploymentBase/%d?c=" % (BASE, action.id))


def test_deployment_base_of_a_canceling_action_is_an_empty_404(server):
    action = cancel(server.deployment())
    assert action.status == "CANCELING"
    assert_empty(deployment_base(server, action.id, status=404))


def test_deployment_base_of_a_waiting_action_is_an_empty_404(confirming):
    action = confirming.deployment()
    assert action.status == "WAIT_FOR_CONFIRMATION"
    assert_empty(deployment_base(confirming, action.id, status=404))


def test_deployment_base_of_an_unknown_action_is_entity_not_found(server):
    server.deployment()
    body = deployment_base(server, 99999, status=404).json
    assert body["exceptionClass"] == \
        "org.eclipse.hawkbit.repository.exception.EntityNotFoundException"
    assert body["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert body["message"] == "Action with given identifier {99999} does not exist."
    assert body["info"]["type"] == "Action"
    assert str(body["info"]["entityId"]) == "99999"
    assert set(body) == {"exceptionClass", "errorCode", "message", "info"}


def test_deployment_base_of_another_targets_action_is_not_valid_for_this_target(server):
    server.deployment()
    foreign = server.deployment(controller_id="dev-2")
    body = deployment_base(server, foreign.id, status=404).json
    assert body["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert body["message"] == "Not a valid action (%d) for target: dev-1" % foreign.id
    assert "info" not in body


def test_deployment_base_of_a_finished_action_answers_200(server):
    action = finished_action(server)
    document = deployment_base(server, action.id).json
    assert document["id"] == str(action.id)
    assert document["deployment"]["update"] == "forced"


def test_deployment_base_of_a_finished_action_does_not_change_it(server):
    action = finished_action(server)
    before = [(e.id, e.status) for e in entries(action.id)]
    deployment_base(server, action.id)
    after = reload(action)
    assert (after.status, after.active, after.revision) == ("FINISHED", False, action.revision)
    assert [(e.id, e.status) for e in entries(action.id)] == before
    assert links(root_poll(server))["installedBase"] == "%s/installedBase/%d" % (BASE, action.id)


def test_deployment_base_of_a_failed_action_does_not_change_it(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "failure"))
    count = len(entries(action.id))
    deployment_base(server, action.id)
    assert reload(action).status == "ERROR"
    assert len(entries(action.id)) == count


def test_deployment_base_stays_offered_while_the_device_only_reports_proceeding(server):
    action = server.deployment()
    deployment_base(server, action.id)
    for detail in ("Update Installed, Testing Pending.", "All Chunks Installed."):
        post_feedback(server, action.id, report(details=[detail]))
        href = links(root_poll(server))["deploymentBase"]
        assert href.startswith("%s/deploymentBase/%d?c=" % (BASE, action.id))
        assert deployment_base(server, action.id).json["id"] == str(action.id)
    assert reload(action).active is True


# --- deployment feedback: acceptance of real client bodies --------------------------------------

def test_feedback_answers_200_with_an_empty_body(server):
    action = server.deployment()
    response = post_feedback(server, action.id, report(details=["Downloading"]))
    assert response.status_int == 200
    assert_empty(response)


def test_closing_feedback_answers_200_with_an_empty_body(server):
    action = server.deployment()
    response = post_feedback(server, action.id, report("closed", "success"))
    assert response.status_int == 200
    assert_empty(response)


def _client_bodies(action_id):
    log_lines = ["[INFO ] : SWUPDATE running :  [install_single_image] : line %d" % n
                 for n in range(48)]
    return {
        "swupdate-2022.12-chunk-start": (
            {"id": action_id, "time": "20261121T195452",
             "status": {"result": {"progress": {"cnt": 0, "of": 1}, "finished": "none"},
                        "execution": "proceeding",
                        "details": ["Installing Update Chunk Artifacts."]}},
            ["Installing Update Chunk Artifacts."]),
        "swupdate-2022.12-log-batch-cnt-above-of": (
            {"id": action_id, "time": "20261121T195453",
             "status": {"result": {"progress": {"cnt": 3, "of": 0}, "finished": "none"},
                        "execution": "proceeding", "details": log_lines}},
            log_lines),
        "swupdate-2022.12-testing-pending": (
            {"id": action_id, "time": "20261121T200001",
             "status": {"result": {"progress": {"cnt": 0, "of": 0}, "finished": "none"},
                        "execution": "proceeding",
                        "details": ["Update Installed, Testing Pending."]}},
            ["Update Installed, Testing Pending."]),
        "rauc-hawkbit-updater-string-id": (
            {"id": str(action_id), "time": "20261121T200104",
             "status": {"result": {"finished": "none"}, "execution": "proceeding",
                        "details": ["Download complete. 0.85 MB/s"]}},
            ["Download complete. 0.85 MB/s"]),
        "rauc-hawkbit-empty-progress": (
            {"id": str(action_id), "time": "20261121T195744",
             "status": {"result": {"progress": {}, "finished": "none"},
                        "execution": "proceeding", "details": ["Installing."]}},
            ["Installing."]),
        "rauc-hawkbit-percentage-progress": (
            {"id": str(action_id), "time": "20261121T195744",
             "status": {"result": {"progress": {"percentage": 100}, "finished": "none"},
                        "execution": "proceeding", "details": ["Installing done."]}},
            ["Installing done."]),
        "rauc-hawkbit-proceeding-failure-pair": (
            {"id": str(action_id), "time": "20261121T195745",
             "status": {"result": {"progress": {}, "finished": "failure"},
                        "execution": "proceeding", "details": ["LastError: no space"]}},
            ["LastError: no space"]),
        "hawkbit-rs-arbitrary-progress": (
            {"id": str(action_id),
             "status": {"execution": "proceeding",
                        "result": {"finished": "none", "progress": {"awesome": True}},
                        "details": ["Some stuffs"]}},
            ["Some stuffs"]),
        "hawkbit-rs-empty-details": (
            {"id": str(action_id),
             "status": {"execution": "proceeding", "result": {"finished": "none"},
                        "details": []}},
            ["Update Server: Target reported proceeding"]),
        "details-missing": (
            {"status": {"execution": "proceeding", "result": {"finished": "none"}}},
            ["Update Server: Target reported proceeding"]),
    }


@pytest.mark.parametrize("client", sorted(_client_bodies(0)))
def test_informational_feedback_of_real_clients_is_accepted_and_keeps_the_action_open(
        server, client):
    action = server.deployment()
    body, messages = _client_bodies(action.id)[client]
    assert_empty(post_feedback(server, action.id, body))
    newest = entries(action.id)[-1]
    assert (newest.status, newest.messages) == ("RUNNING", messages)
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert target_row().update_status == "PENDING"


def test_feedback_id_different_from_the_path_is_ignored(server):
    action = server.deployment()
    body = report(details=["progress"])
    body["id"] = 7
    post_feedback(server, action.id, body)
    assert entries(action.id)[-1].messages == ["progress"]


def test_swupdate_final_success_report_closes_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, {
        "id": action.id, "time": "20261121T200501",
        "status": {"result": {"progress": {"cnt": 0, "of": 0}, "finished": "success"},
                   "execution": "closed", "details": ["Update Installed."]}})
    assert (reload(action).status, reload(action).active) == ("FINISHED", False)


def test_swupdate_failure_report_fails_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, {
        "id": action.id, "time": "20261121T200502",
        "status": {"result": {"progress": {"cnt": 0, "of": 0}, "finished": "failure"},
                   "execution": "closed", "details": ["Update Failed."]}})
    assert (reload(action).status, reload(action).active) == ("ERROR", False)


def test_rauc_hawkbit_updater_install_result_closes_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, {
        "id": str(action.id), "time": "20261121T200104",
        "status": {"result": {"finished": "success"}, "execution": "closed",
                   "details": ["Software bundle installed successfully."]}})
    assert entries(action.id)[-1].messages == ["Software bundle installed successfully."]
    assert reload(action).status == "FINISHED"


def test_rauc_hawkbit_updater_download_only_report_closes_a_download_only_action(server):
    action = server.deployment(action_type="DOWNLOAD_ONLY")
    post_feedback(server, action.id, {
        "id": str(action.id), "time": "20261121T200104",
        "status": {"result": {"finished": "success"}, "execution": "downloaded",
                   "details": ["File checksum OK."]}})
    assert (reload(action).status, reload(action).active) == ("DOWNLOADED", False)


def test_hawkbit_rs_closed_success_with_empty_details_closes_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, {"id": str(action.id), "status": {
        "execution": "closed", "result": {"finished": "success"}, "details": []}})
    assert reload(action).status == "FINISHED"
    assert entries(action.id)[-1].messages == ["Update Server: Target reported CLOSED with OK!"]


def test_status_code_is_stored_and_added_as_a_message(server):
    action = server.deployment()
    post_feedback(server, action.id, report(details=["Writing image"], code=12))
    newest = entries(action.id)[-1]
    assert newest.code == 12
    assert newest.messages == ["Writing image", "Device reported status code: 12"]


# --- deployment feedback: malformed bodies -------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"status": {"execution": "closed", "details": ["no result"]}},
    {"status": {"execution": "proceeding", "result": {}}},
    {"status": {"execution": "proceeding", "result": {"progress": {"cnt": 1, "of": 2}}}},
], ids=["result-missing", "finished-missing", "finished-missing-with-progress"])
def test_feedback_without_result_finished_is_body_not_readable(server, body):
    action = server.deployment()
    error = post_feedback(server, action.id, body, status=400).json
    assert error == {
        "exceptionClass": "org.eclipse.hawkbit.rest.exception.MessageNotReadableException",
        "errorCode": NOT_READABLE,
        "message": "The given request body is not well formed"}
    assert len(entries(action.id)) == 1


def test_feedback_with_unknown_execution_is_a_bad_request(server):
    action = server.deployment()
    error = post_feedback(server, action.id, report("finishing", "success"), status=400).json
    assert error["errorCode"] == NOT_READABLE
    assert reload(action).active is True


def test_feedback_with_unknown_finished_value_is_a_bad_request(server):
    action = server.deployment()
    error = post_feedback(server, action.id, report("closed", "ok"), status=400).json
    assert error["errorCode"] == NOT_READABLE
    assert reload(action).active is True


def test_feedback_without_status_is_a_bad_request(server):
    action = server.deployment()
    post_feedback(server, action.id, {"id": str(action.id), "time": "20261121T200104"},
                  status=400)


def test_malformed_json_feedback_is_a_bad_request(server):
    action = server.deployment()
    response = server.http.post(path("deploymentBase", action.id) + "/feedback",
                                params=b'{"status": {"execution": "closed", ',
                                content_type="application/json", headers=token(), status=400)
    assert response.json["errorCode"] == NOT_READABLE
    assert reload(action).active is True


def test_text_plain_feedback_is_unsupported_media_type(server):
    action = server.deployment()
    server.http.post(path("deploymentBase", action.id) + "/feedback",
                     params=b'{"status": {"execution": "closed", "result": {"finished": "success"}}}',
                     content_type="text/plain", headers=token(), status=415)
    assert reload(action).active is True


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_feedback_resource_allows_only_post(server, method):
    action = server.deployment()
    response = getattr(server.http, method)(path("deploymentBase", action.id) + "/feedback",
                                            headers=token(), status=405)
    assert "POST" in response.headers["Allow"]


def test_feedback_as_cbor_is_accepted(server):
    action = server.deployment()
    body = cbor2.dumps(report(details=["via cbor"], code=3))
    response = server.http.post(path("deploymentBase", action.id) + "/feedback", params=body,
                                content_type="application/cbor", headers=token(), status=200)
    assert_empty(response)
    assert entries(action.id)[-1].messages == ["via cbor", "Device reported status code: 3"]


def test_closing_feedback_as_cbor_finishes_the_action(server):
    action = server.deployment()
    server.http.post(path("deploymentBase", action.id) + "/feedback",
                     params=cbor2.dumps(report("closed", "success")),
                     content_type="application/cbor", headers=token(), status=200)
    assert reload(action).status == "FINISHED"


# --- deployment feedback: effects ---------------------------------------------------------------

def test_closed_success_finishes_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "success", ["Installed"]))
    after = reload(action)
    assert (after.status, after.active) == ("FINISHED", False)
    newest = entries(action.id)[-1]
    assert (newest.status, newest.messages) == ("FINISHED", ["Installed"])


def test_closed_success_puts_the_target_in_sync(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "success"))
    target = target_row()
    assert target.update_status == "IN_SYNC"
    assert target.installed_ds_id == action.distribution_set_id
    assert target.assigned_ds_id == action.distribution_set_id


def test_closed_success_offers_installed_base_and_no_action(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "success"))
    offered = links(root_poll(server))
    assert offered["installedBase"] == "%s/installedBase/%d" % (BASE, action.id)
    assert "deploymentBase" not in offered and "cancelAction" not in offered


def test_closed_success_requests_config_data_again(server):
    action = server.deployment()
    clear_config_data_request(server)
    post_feedback(server, action.id, report("closed", "success"))
    assert links(root_poll(server))["configData"] == BASE + "/configData"


def test_closed_none_is_success(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "none"))
    assert (reload(action).status, reload(action).active) == ("FINISHED", False)
    assert target_row().update_status == "IN_SYNC"


def test_closed_failure_fails_the_action(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "failure", ["Failed to install"]))
    after = reload(action)
    assert (after.status, after.active) == ("ERROR", False)
    assert entries(action.id)[-1].status == "ERROR"


def test_closed_failure_puts_the_target_in_error_and_clears_the_assignment(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "failure"))
    target = target_row()
    assert target.update_status == "ERROR"
    assert target.assigned_ds_id is None


def test_closed_failure_does_not_request_config_data(server):
    action = server.deployment()
    clear_config_data_request(server)
    post_feedback(server, action.id, report("closed", "failure"))
    assert links(root_poll(server)) == {}


def test_rejected_keeps_the_action_open_with_a_warning(server):
    action = server.deployment()
    post_feedback(server, action.id, report("rejected", "none"))
    newest = entries(action.id)[-1]
    assert (newest.status, newest.messages) == ("WARNING",
                                                ["Update Server: Target REJECTED update"])
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert "deploymentBase" in links(root_poll(server))


def test_canceled_on_the_deployment_channel_is_only_informational(server):
    action = server.deployment()
    post_feedback(server, action.id, report("canceled", "success"))
    assert entries(action.id)[-1].status == "CANCELED"
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert target_row().update_status == "PENDING"


def test_downloaded_closes_a_download_only_action(server):
    action = server.deployment(action_type="DOWNLOAD_ONLY")
    post_feedback(server, action.id, report("downloaded", "success"))
    after = reload(action)
    assert (after.status, after.active) == ("DOWNLOADED", False)
    assert target_row().update_status == "IN_SYNC"


@pytest.mark.parametrize("action_type", ["FORCED", "SOFT"])
def test_downloaded_is_informational_for_other_action_types(server, action_type):
    action = server.deployment(action_type=action_type)
    post_feedback(server, action.id, report("downloaded", "success"))
    assert entries(action.id)[-1].status == "DOWNLOADED"
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert target_row().update_status == "PENDING"


def test_download_is_informational(server):
    action = server.deployment()
    post_feedback(server, action.id, report("download", "none"))
    assert entries(action.id)[-1].status == "DOWNLOAD"
    assert reload(action).active is True


@pytest.mark.parametrize("execution", ["scheduled", "resumed"])
def test_scheduled_and_resumed_are_running_entries(server, execution):
    action = server.deployment()
    post_feedback(server, action.id, report(execution, "none"))
    assert entries(action.id)[-1].status == "RUNNING"
    assert reload(action).active is True


def test_informational_feedback_keeps_the_retrieved_status(server):
    action = server.deployment()
    deployment_base(server, action.id)
    post_feedback(server, action.id, report(details=["Installing"]))
    assert reload(action).status == "RETRIEVED"


def test_late_failure_after_success_is_kept_as_a_warning_and_changes_nothing(server):
    action = finished_action(server)
    response = post_feedback(server, action.id, report("closed", "failure", ["Late failure"]))
    assert_empty(response)
    after = reload(action)
    assert (after.status, after.active, after.revision) == ("FINISHED", False, action.revision)
    newest = entries(action.id)[-1]
    assert newest.status == "WARNING"
    assert newest.messages[0] == "Late failure"
    assert target_row().update_status == "IN_SYNC"
    assert target_row().assigned_ds_id == action.distribution_set_id


def test_second_closed_success_is_a_late_report(server):
    action = finished_action(server)
    installed_at = target_row().installation_date
    count = len(entries(action.id))
    assert_empty(post_feedback(server, action.id, report("closed", "success")))
    assert [e.status for e in entries(action.id)][count:] == ["WARNING"]
    assert reload(action).status == "FINISHED"
    assert target_row().installation_date == installed_at


def test_late_proceeding_after_failure_is_kept_and_does_not_reopen(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "failure"))
    assert_empty(post_feedback(server, action.id, report(details=["still running?"])))
    assert entries(action.id)[-1].status == "WARNING"
    assert (reload(action).status, reload(action).active) == ("ERROR", False)
    assert "deploymentBase" not in links(root_poll(server))


def test_late_feedback_for_a_canceled_action_is_kept_and_does_not_reopen(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    assert_empty(post_feedback(server, action.id, report("closed", "success", ["Installed"])))
    assert entries(action.id)[-1].status == "WARNING"
    assert (reload(action).status, reload(action).active) == ("CANCELED", False)


def test_feedback_for_a_waiting_action_is_an_empty_404(confirming):
    action = confirming.deployment()
    count = len(entries(action.id))
    assert_empty(post_feedback(confirming, action.id, report("closed", "success"), status=404))
    assert reload(action).status == "WAIT_FOR_CONFIRMATION"
    assert len(entries(action.id)) == count


def test_feedback_for_an_unknown_action_is_entity_not_found(server):
    server.deployment()
    error = post_feedback(server, 99999, report(), status=404).json
    assert error["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert error["message"] == "Action with given identifier {99999} does not exist."


def test_feedback_for_another_targets_action_is_refused(server):
    server.deployment()
    foreign = server.deployment(controller_id="dev-2")
    error = post_feedback(server, foreign.id, report("closed", "success"), status=404).json
    assert error["message"] == "Not a valid action (%d) for target: dev-1" % foreign.id
    assert reload(foreign).active is True


def test_feedback_timestamp_orders_the_history(server):
    action = server.deployment()
    post_feedback(server, action.id, dict(report(details=["reported later"]),
                                          timestamp=2_000_000_000_000))
    post_feedback(server, action.id, dict(report(details=["reported earlier"]),
                                          timestamp=1_000_000_000_000))
    messages = history(server, action.id)["messages"]
    assert messages.index("reported later") < messages.index("reported earlier")


def test_feedback_timestamp_is_the_status_entry_time(server):
    action = server.deployment()
    post_feedback(server, action.id, dict(report(details=["x"]), timestamp=1717071602371))
    assert entries(action.id)[-1].timestamp == 1717071602371


def test_feedback_timestamp_sets_the_installation_date(server):
    action = server.deployment()
    post_feedback(server, action.id, dict(report("closed", "success"), timestamp=1717071602371))
    assert target_row().installation_date == 1717071602371


def test_feedback_without_timestamp_uses_the_server_time_as_installation_date(server):
    action = server.deployment()
    before = now_ms()
    post_feedback(server, action.id, report("closed", "success"))
    assert before <= target_row().installation_date <= now_ms()


# --- deployment feedback: quotas ----------------------------------------------------------------

def test_feedback_beyond_the_status_entry_quota_is_too_many_entries(tmp_path):
    own = own_server(tmp_path, status_entries_per_action=3)
    try:
        action = own.deployment()                           # entry 1: the assignment
        post_feedback(own, action.id, report(details=["2"]))
        post_feedback(own, action.id, report(details=["3"]))
        error = post_feedback(own, action.id, report(details=["4"]), status=429).json
        assert error["errorCode"] == "hawkbit.server.error.quota.tooManyEntries"
        assert error["exceptionClass"] == \
            "org.eclipse.hawkbit.repository.exception.AssignmentQuotaExceededException"
        assert len(entries(action.id)) == 3
    finally:
        storage.close_store()


def test_closed_feedback_is_accepted_when_the_status_entry_quota_is_exhausted(tmp_path):
    own = own_server(tmp_path, status_entries_per_action=3)
    try:
        action = own.deployment()
        post_feedback(own, action.id, report(details=["2"]))
        post_feedback(own, action.id, report(details=["3"]))
        post_feedback(own, action.id, report(details=["4"]), status=429)
        assert_empty(post_feedback(own, action.id, report("closed", "success")))
        assert (reload(action).status, reload(action).active) == ("FINISHED", False)
    finally:
        storage.close_store()


def test_retrieved_entries_count_against_the_status_entry_quota(tmp_path):
    own = own_server(tmp_path, status_entries_per_action=3)
    try:
        action = own.deployment()
        deployment_base(own, action.id)                       # entry 2: RETRIEVED
        post_feedback(own, action.id, report(details=["3"]))
        post_feedback(own, action.id, report(details=["4"]), status=429)
    finally:
        storage.close_store()


def test_fifty_details_and_a_code_exceed_the_message_quota(server):
    action = server.deployment()
    body = report(details=["line %d" % n for n in range(50)], code=1)
    error = post_feedback(server, action.id, body, status=429).json
    assert error["errorCode"] == "hawkbit.server.error.quota.tooManyEntries"
    assert len(entries(action.id)) == 1


def test_fifty_details_without_a_code_fit_the_message_quota(server):
    action = server.deployment()
    post_feedback(server, action.id, report(details=["line %d" % n for n in range(50)]))
    assert len(entries(action.id)[-1].messages) == 50


def test_one_900_kb_detail_is_one_message_of_the_quota_stored_in_512_character_pieces(server):
    action = server.deployment()
    detail = "".join(chr(ord("a") + n % 26) for n in range(900 * 1000))
    post_feedback(server, action.id, report(details=[detail]), status=200)
    messages = entries(action.id)[-1].messages
    assert len(messages) == 1758 and all(len(message) <= 512 for message in messages)
    assert "".join(messages) == detail


# --- cancelAction -------------------------------------------------------------------------------

def test_cancel_action_of_a_canceling_action(server):
    action = cancel(server.deployment())
    document = get(server, path("cancelAction", action.id)).json
    assert document == {"id": str(action.id), "cancelAction": {"stopId": str(action.id)}}


def test_root_poll_offers_cancel_action_without_query_for_a_canceling_action(server):
    action = cancel(server.deployment())
    offered = links(root_poll(server))
    assert offered["cancelAction"] == "%s/cancelAction/%d" % (BASE, action.id)
    assert "deploymentBase" not in offered


def test_cancel_action_of_a_canceled_action_still_answers(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    document = get(server, path("cancelAction", action.id)).json
    assert document == {"id": str(action.id), "cancelAction": {"stopId": str(action.id)}}


def test_cancel_action_of_a_running_action_is_an_empty_404(server):
    action = server.deployment()
    assert_empty(get(server, path("cancelAction", action.id), status=404))


def test_cancel_action_registers_one_retrieved_entry(server):
    action = cancel(server.deployment())
    for _ in range(3):
        get(server, path("cancelAction", action.id))
    retrieved = [e for e in entries(action.id) if e.status == "RETRIEVED"]
    assert len(retrieved) == 1
    assert retrieved[0].messages == [
        "Update Server: Target retrieved cancel action and should start now the cancellation."]
    assert reload(action).status == "CANCELING"


def test_cancel_action_of_an_unknown_action_is_entity_not_found(server):
    server.deployment()
    error = get(server, path("cancelAction", 99999), status=404).json
    assert error["errorCode"] == "hawkbit.server.error.repo.entityNotFound"


# --- cancel feedback ----------------------------------------------------------------------------

def _cancel_second_deployment(server):
    first = finished_action(server)
    second = cancel(server.deployment())
    assert target_row().update_status == "PENDING"
    return first, second


def test_cancel_closed_success_cancels_the_action(server):
    _, action = _cancel_second_deployment(server)
    assert_empty(post_feedback(server, action.id, report("closed", "success"),
                               channel="cancelAction"))
    after = reload(action)
    assert (after.status, after.active) == ("CANCELED", False)
    assert entries(action.id)[-1].status == "CANCELED"


def test_cancel_closed_success_restores_the_installed_set_as_assigned(server):
    first, action = _cancel_second_deployment(server)
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    target = target_row()
    assert target.update_status == "IN_SYNC"
    assert target.assigned_ds_id == target.installed_ds_id == first.distribution_set_id


def test_cancel_closed_success_leaves_only_installed_base_offered(server):
    first, action = _cancel_second_deployment(server)
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    offered = links(root_poll(server))
    assert offered["installedBase"] == "%s/installedBase/%d" % (BASE, first.id)
    assert not {"cancelAction", "deploymentBase"} & set(offered)


def test_cancel_closed_none_completes_the_cancellation(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "none"), channel="cancelAction")
    assert (reload(action).status, reload(action).active) == ("CANCELED", False)


def test_swupdate_cancel_acknowledgement_completes_the_cancellation(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, {
        "id": action.id, "time": "20261121T195520",
        "status": {"result": {"finished": "success"}, "execution": "closed",
                   "details": ["cancellation acknowledged."]}}, channel="cancelAction")
    assert (reload(action).status, reload(action).active) == ("CANCELED", False)


def test_cancel_canceled_is_not_a_completion(server):
    action = cancel(server.deployment())
    assert_empty(post_feedback(server, action.id, report("canceled", "success"),
                               channel="cancelAction"))
    assert entries(action.id)[-1].status == "WARNING"
    after = reload(action)
    assert (after.status, after.active) == ("CANCELING", True)
    assert "cancelAction" in links(root_poll(server))


def test_cancel_rejected_puts_the_action_back_to_running(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, {
        "id": str(action.id), "time": "20261121T200104",
        "status": {"result": {"finished": "success"}, "execution": "rejected",
                   "details": ["Cancelation impossible, installation started already."]}},
        channel="cancelAction")
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert entries(action.id)[-1].status == "CANCEL_REJECTED"


def test_cancel_rejected_offers_the_deployment_again(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("rejected", "success", ["Cancelling not supported"]),
                  channel="cancelAction")
    offered = links(root_poll(server))
    assert offered["deploymentBase"].startswith("%s/deploymentBase/%d?c=" % (BASE, action.id))
    assert "cancelAction" not in offered
    assert deployment_base(server, action.id).json["id"] == str(action.id)


def test_cancel_closed_failure_puts_the_action_back_to_running(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "failure"), channel="cancelAction")
    after = reload(action)
    assert (after.status, after.active) == ("RUNNING", True)
    assert entries(action.id)[-1].status == "ERROR"


def test_cancel_closed_failure_offers_the_deployment_again(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "failure"), channel="cancelAction")
    offered = links(root_poll(server))
    assert offered["deploymentBase"].startswith("%s/deploymentBase/%d?c=" % (BASE, action.id))
    assert target_row().update_status == "PENDING"


def test_cancel_proceeding_is_informational(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("proceeding", "none", ["Cancelling"]),
                  channel="cancelAction")
    assert entries(action.id)[-1].status == "RUNNING"
    assert reload(action).status == "CANCELING"


def test_cancel_feedback_for_a_running_action_is_not_cancelable(server):
    action = server.deployment()
    error = post_feedback(server, action.id, report("closed", "success"),
                          channel="cancelAction", status=405).json
    assert error["errorCode"] == "hawkbit.server.error.action.notCancelable"
    assert error["exceptionClass"] == \
        "org.eclipse.hawkbit.repository.exception.CancelActionNotAllowedException"
    assert (reload(action).status, reload(action).active) == ("RUNNING", True)


def test_cancel_feedback_without_result_finished_is_body_not_readable(server):
    action = cancel(server.deployment())
    error = post_feedback(server, action.id, {"status": {"execution": "closed", "result": {}}},
                          channel="cancelAction", status=400).json
    assert error["errorCode"] == NOT_READABLE


def test_deployment_closed_success_finishes_a_canceling_action(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "success"))
    after = reload(action)
    assert (after.status, after.active) == ("FINISHED", False)
    assert target_row().installed_ds_id == action.distribution_set_id


def test_deployment_proceeding_on_a_canceling_action_keeps_it_canceling(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report(details=["still installing"]))
    assert (reload(action).status, reload(action).active) == ("CANCELING", True)


# --- installedBase GET --------------------------------------------------------------------------

def test_installed_base_of_a_finished_action_is_its_deployment_document(server):
    action = server.deployment(files={"fw.swu": b"abc"})
    expected = deployment_base(server, action.id).json
    post_feedback(server, action.id, report("closed", "success"))
    assert get(server, path("installedBase", action.id)).json == expected


def test_installed_base_of_a_soft_action_shows_attempt(server):
    action = finished_action(server, action_type="SOFT")
    deployment = get(server, path("installedBase", action.id)).json["deployment"]
    assert (deployment["download"], deployment["update"]) == ("attempt", "attempt")


def test_installed_base_adds_no_status_entry(server):
    action = finished_action(server)
    count = len(entries(action.id))
    get(server, path("installedBase", action.id))
    assert len(entries(action.id)) == count
    assert reload(action).status == "FINISHED"


def test_installed_base_with_action_history(server):
    action = server.deployment()
    post_feedback(server, action.id, report("closed", "success", ["Installed"]))
    document = get(server, path("installedBase", action.id) + "?actionHistory=1").json
    assert document["actionHistory"] == {"status": "FINISHED", "messages": ["Installed"]}


def test_installed_base_of_an_active_action_is_an_empty_404(server):
    action = server.deployment()
    assert_empty(get(server, path("installedBase", action.id), status=404))


def test_installed_base_of_a_canceling_action_is_an_empty_404(server):
    action = cancel(server.deployment())
    assert_empty(get(server, path("installedBase", action.id), status=404))


def test_installed_base_of_a_canceled_action_is_an_empty_404(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    assert_empty(get(server, path("installedBase", action.id), status=404))


def test_installed_base_of_an_unknown_action_is_entity_not_found(server):
    server.deployment()
    error = get(server, path("installedBase", 99999), status=404).json
    assert error["errorCode"] == "hawkbit.server.error.repo.entityNotFound"


# --- installedBase PUT --------------------------------------------------------------------------

def _reported_set(server, name="gateway-firmware", version="2024.03.1-RC"):
    module = server.module(name=name + "-rootfs", version=version, files={"g.swu": b"g"})
    return server.distribution_set([module], name=name, version=version)


def put_installed(server, body, status):
    return server.http.put_json(path("installedBase"), body, headers=token(), status=status)


def test_reporting_an_installed_set_records_it_with_201(server):
    server.target()
    installed = _reported_set(server)
    response = put_installed(server, {"name": "gateway-firmware", "version": "2024.03.1-RC"},
                             201)
    assert response.body == b""
    target = target_row()
    assert target.update_status == "IN_SYNC"
    assert target.installed_ds_id == target.assigned_ds_id == installed.id


def test_reported_installed_set_is_a_finished_inactive_action(server):
    server.target()
    installed = _reported_set(server)
    put_installed(server, {"name": "gateway-firmware", "version": "2024.03.1-RC"}, 201)
    recorded = list(Action.select().where(Action.distribution_set == installed.id))
    assert [(a.status, a.active) for a in recorded] == [("FINISHED", False)]
    assert links(root_poll(server))["installedBase"] == \
        "%s/installedBase/%d" % (BASE, recorded[0].id)


def test_reporting_the_assigned_set_again_answers_200(server):
    server.target()
    installed = _reported_set(server)
    put_installed(server, {"name": "gateway-firmware", "version": "2024.03.1-RC"}, 201)
    response = put_installed(server, {"name": "gateway-firmware", "version": "2024.03.1-RC"},
                             200)
    assert response.body == b""
    assert Action.select().where(Action.distribution_set == installed.id).count() == 1


def test_reporting_an_installed_set_while_pending_is_ignored_with_200(server):
    pending = server.deployment()
    installed = _reported_set(server)
    put_installed(server, {"name": "gateway-firmware", "version": "2024.03.1-RC"}, 200)
    assert Action.select().where(Action.distribution_set == installed.id).count() == 0
    target = target_row()
    assert target.update_status == "PENDING"
    assert target.assigned_ds_id == pending.distribution_set_id
    assert reload(pending).active is True


def test_installed_set_lookup_is_case_insensitive(server):
    server.target()
    installed = _reported_set(server)
    put_installed(server, {"name": "GATEWAY-Firmware", "version": "2024.03.1-rc"}, 201)
    assert target_row().installed_ds_id == installed.id


def test_reporting_an_unknown_set_is_entity_not_found(server):
    server.target()
    _reported_set(server)
    error = put_installed(server, {"name": "gateway-firmware", "version": "9.9"}, 404).json
    assert error["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert target_row().installed_ds_id is None


@pytest.mark.parametrize("body", [{"name": "gateway-firmware"}, {"version": "2024.03.1-RC"}],
                         ids=["version-missing", "name-missing"])
def test_reporting_an_installed_set_without_name_or_version_is_a_bad_request(server, body):
    server.target()
    _reported_set(server)
    error = put_installed(server, body, 400).json
    assert error["errorCode"] == NOT_READABLE


# --- confirmationBase ---------------------------------------------------------------------------

def test_confirmation_base_shows_inactive_auto_confirm_and_the_waiting_action(confirming):
    action = confirming.deployment()
    document = get(confirming, path("confirmationBase")).json
    assert document["autoConfirm"] == {"active": False, "activatedAt": 0}
    offered = links(document)
    assert set(offered) == {"activateAutoConfirm", "confirmationBase"}
    assert offered["activateAutoConfirm"] == BASE + "/confirmationBase/activateAutoConfirm"
    assert re.fullmatch(re.escape("%s/confirmationBase/%d?c=" % (BASE, action.id)) + "-?[0-9]+",
                        offered["confirmationBase"])


def test_confirmation_base_without_waiting_action_has_only_the_activate_link(confirming):
    confirming.target()
    document = get(confirming, path("confirmationBase")).json
    assert set(links(document)) == {"activateAutoConfirm"}


def test_root_poll_offers_confirmation_base_for_a_waiting_action(confirming):
    action = confirming.deployment()
    offered = links(root_poll(confirming))
    assert offered["confirmationBase"].startswith(
        "%s/confirmationBase/%d?c=" % (BASE, action.id))
    assert "deploymentBase" not in offered


def test_confirmation_base_action_uses_the_confirmation_key(confirming):
    action = confirming.deployment(files={"fw.swu": b"abc"})
    document = get(confirming, path("confirmationBase", action.id)).json
    assert set(document) == {"id", "confirmation"}
    assert document["id"] == str(action.id)
    assert document["confirmation"]["download"] == "forced"
    assert document["confirmation"]["update"] == "forced"
    assert document["confirmation"]["chunks"][0]["artifacts"][0]["filename"] == "fw.swu"


def test_confirmation_base_action_history_shows_waiting_status(confirming):
    action = confirming.deployment()
    document = get(confirming, path("confirmationBase", action.id) + "?actionHistory=5").json
    assert document["actionHistory"]["status"] == "WAIT_FOR_CONFIRMATION"
    assert "Assignment initiated by user 'admin'" in document["actionHistory"]["messages"]


def test_confirmation_base_action_registers_no_retrieved_entry(confirming):
    action = confirming.deployment()
    count = len(entries(action.id))
    get(confirming, path("confirmationBase", action.id))
    assert len(entries(action.id)) == count
    assert reload(action).status == "WAIT_FOR_CONFIRMATION"


def test_confirmation_base_action_of_a_confirmed_action_is_an_empty_404(confirming):
    action = confirming.deployment()
    post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                  channel="confirmationBase")
    assert_empty(get(confirming, path("confirmationBase", action.id), status=404))


def test_confirmed_feedback_sets_the_action_running(confirming):
    action = confirming.deployment()
    response = post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                             channel="confirmationBase")
    assert_empty(response)
    assert (reload(action).status, reload(action).active) == ("RUNNING", True)


def test_confirmed_action_is_offered_as_deployment_base(confirming):
    action = confirming.deployment()
    post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                  channel="confirmationBase")
    offered = links(root_poll(confirming))
    assert offered["deploymentBase"].startswith("%s/deploymentBase/%d?c=" % (BASE, action.id))
    assert "confirmationBase" not in offered
    assert deployment_base(confirming, action.id).json["id"] == str(action.id)


def test_confirmed_feedback_with_code_adds_the_confirmation_status_code(confirming):
    action = confirming.deployment()
    post_feedback(confirming, action.id, {"confirmation": "confirmed", "code": 7,
                                          "details": ["User accepted the update on the HMI"]},
                  channel="confirmationBase")
    newest = entries(action.id)[-1]
    assert newest.status == "RUNNING"
    assert newest.messages[:2] == ["User accepted the update on the HMI",
                                   "Confirmation status code: 7"]
    assert history(confirming, action.id, 2)["messages"] == [
        "User accepted the update on the HMI", "Confirmation status code: 7"]


def test_denied_feedback_keeps_the_action_waiting(confirming):
    action = confirming.deployment()
    assert_empty(post_feedback(confirming, action.id, {"confirmation": "denied"},
                               channel="confirmationBase"))
    assert (reload(action).status, reload(action).active) == ("WAIT_FOR_CONFIRMATION", True)
    assert entries(action.id)[-1].status == "WAIT_FOR_CONFIRMATION"
    assert "confirmationBase" in links(root_poll(confirming))


def test_confirmation_feedback_with_unknown_value_is_a_bad_request(confirming):
    action = confirming.deployment()
    post_feedback(confirming, action.id, {"confirmation": "maybe"}, channel="confirmationBase",
                  status=400)
    assert reload(action).status == "WAIT_FOR_CONFIRMATION"


def test_activate_auto_confirm_with_body_confirms_the_waiting_action(confirming):
    action = confirming.deployment()
    response = confirming.http.post_json(
        path("confirmationBase/activateAutoConfirm"),
        {"initiator": "fleet-admin", "remark": "Unattended site"}, headers=token(), status=200)
    assert_empty(response)
    assert reload(action).status == "RUNNING"
    newest = entries(action.id)[-1]
    assert newest.status == "RUNNING"
    assert newest.messages[0].startswith(
        "Assignment automatically confirmed by initiator 'fleet-admin'.")
    assert "Remark: Unattended site" in newest.messages[0]


def test_activate_auto_confirm_with_body_stores_initiator_and_remark(confirming):
    confirming.target()
    before = now_ms()
    confirming.http.post_json(path("confirmationBase/activateAutoConfirm"),
                              {"initiator": "fleet-admin", "remark": "Unattended site"},
                              headers=token(), status=200)
    document = get(confirming, path("confirmationBase")).json
    auto = document["autoConfirm"]
    assert (auto["active"], auto["initiator"], auto["remark"]) == (True, "fleet-admin",
                                                                   "Unattended site")
    assert before <= auto["activatedAt"] <= now_ms()
    assert set(links(document)) == {"deactivateAutoConfirm"}


def test_activate_auto_confirm_without_body_or_content_type(confirming):
    action = confirming.deployment()
    response = confirming.http.post(path("confirmationBase/activateAutoConfirm"),
                                    headers=token(), status=200)
    assert_empty(response)
    assert reload(action).status == "RUNNING"
    auto = get(confirming, path("confirmationBase")).json["autoConfirm"]
    assert auto["active"] is True
    assert "initiator" not in auto
    assert auto["remark"] == \
        "Initiated using the Device Direct Integration API without providing a remark."


def test_activating_auto_confirm_twice_is_a_conflict(confirming):
    confirming.target()
    confirming.http.post(path("confirmationBase/activateAutoConfirm"), headers=token(),
                         status=200)
    error = confirming.http.post(path("confirmationBase/activateAutoConfirm"), headers=token(),
                                 status=409).json
    assert error["errorCode"] == "hawkbit.server.error.repo.autoConfAlreadyActive"


def test_auto_confirm_initiator_longer_than_64_characters_is_a_constraint_violation(confirming):
    confirming.target()
    error = confirming.http.post_json(path("confirmationBase/activateAutoConfirm"),
                                      {"initiator": "x" * 65}, headers=token(), status=400).json
    assert error["errorCode"] == "hawkbit.server.error.repo.constraintViolation"
    assert get(confirming, path("confirmationBase")).json["autoConfirm"]["active"] is False


def test_auto_confirm_initiator_of_64_characters_is_accepted(confirming):
    confirming.target()
    confirming.http.post_json(path("confirmationBase/activateAutoConfirm"),
                              {"initiator": "x" * 64}, headers=token(), status=200)
    assert get(confirming, path("confirmationBase")).json["autoConfirm"]["initiator"] == "x" * 64


def test_deactivate_auto_confirm(confirming):
    confirming.target()
    confirming.http.post(path("confirmationBase/activateAutoConfirm"), headers=token(),
                         status=200)
    response = confirming.http.post(path("confirmationBase/deactivateAutoConfirm"),
                                    headers=token(), status=200)
    assert_empty(response)
    document = get(confirming, path("confirmationBase")).json
    assert document["autoConfirm"] == {"active": False, "activatedAt": 0}
    assert set(links(document)) == {"activateAutoConfirm"}


def test_deactivate_auto_confirm_when_inactive_is_fine(confirming):
    confirming.target()
    confirming.http.post(path("confirmationBase/deactivateAutoConfirm"), headers=token(),
                         status=200)


def test_new_assignment_after_auto_confirm_starts_running(confirming):
    confirming.target()
    confirming.http.post(path("confirmationBase/activateAutoConfirm"), headers=token(),
                         status=200)
    action = confirming.deployment()
    assert action.status == "RUNNING"
    assert "deploymentBase" in links(root_poll(confirming))


def test_new_assignment_after_deactivation_waits_again(confirming):
    confirming.target()
    confirming.http.post(path("confirmationBase/activateAutoConfirm"), headers=token(),
                         status=200)
    confirming.http.post(path("confirmationBase/deactivateAutoConfirm"), headers=token(),
                         status=200)
    action = confirming.deployment()
    assert action.status == "WAIT_FOR_CONFIRMATION"


def test_get_on_activate_auto_confirm_is_method_not_allowed(confirming):
    confirming.target()
    response = confirming.http.get(path("confirmationBase/activateAutoConfirm"),
                                   headers=token(), status=405)
    assert "POST" in response.headers["Allow"]


# --- further contract details -------------------------------------------------------------------

def test_action_history_without_a_value_is_no_history(server):
    action = server.deployment()
    assert "actionHistory" not in deployment_base(server, action.id, "?actionHistory").json


def test_deployment_base_answers_json_for_rauc_hawkbit_updaters_accept_header(server):
    action = server.deployment()
    response = server.http.get(path("deploymentBase", action.id),
                               headers=dict(token(), Accept="application/json;charset=UTF-8"),
                               status=200)
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert response.json["id"] == str(action.id)


def test_lapsed_maintenance_window_cancels_the_action_on_deployment_base(server):
    action = server.deployment(window=("0 0 0 1 1 ? 2020", "00:10:00", "+00:00"))
    assert_empty(deployment_base(server, action.id, status=404))
    assert (reload(action).status, reload(action).active) == ("CANCELING", True)
    assert entries(action.id)[-1].messages == ["manual cancelation requested"]


def test_feedback_with_charset_in_content_type_is_accepted(server):
    action = server.deployment()
    server.http.post(path("deploymentBase", action.id) + "/feedback",
                     params=b'{"status": {"execution": "proceeding", '
                            b'"result": {"finished": "none"}, "details": ["charset"]}}',
                     content_type="application/json;charset=UTF-8", headers=token(), status=200)
    assert entries(action.id)[-1].messages == ["charset"]


def test_feedback_without_content_type_is_read_as_json(server):
    action = server.deployment()
    server.http.post(path("deploymentBase", action.id) + "/feedback",
                     params=b'{"status": {"execution": "proceeding", '
                            b'"result": {"finished": "none"}, "details": ["no type"]}}',
                     headers=token(), extra_environ={"CONTENT_TYPE": ""}, status=200)
    assert entries(action.id)[-1].messages == ["no type"]


def test_feedback_detail_longer_than_512_characters_is_split(server):
    action = server.deployment()
    detail = "".join(chr(ord("a") + n % 26) for n in range(1100))
    post_feedback(server, action.id, report(details=[detail]))
    assert entries(action.id)[-1].messages == [detail[:512], detail[512:1024], detail[1024:]]


def test_cancel_completion_puts_the_server_line_before_the_details(server):
    action = cancel(server.deployment())
    post_feedback(server, action.id, report("closed", "success", ["cancellation acknowledged."],
                                            code=0), channel="cancelAction")
    assert entries(action.id)[-1].messages == [
        "Update Server: Cancellation completion is finished successfully.",
        "cancellation acknowledged.", "Device reported status code: 0"]


def test_cancel_feedback_for_a_canceled_action_is_accepted_and_changes_nothing(server):
    first, action = _cancel_second_deployment(server)
    post_feedback(server, action.id, report("closed", "success"), channel="cancelAction")
    assert_empty(post_feedback(server, action.id, report("closed", "success"),
                               channel="cancelAction"))
    assert (reload(action).status, reload(action).active) == ("CANCELED", False)
    target = target_row()
    assert (target.update_status, target.assigned_ds_id) == ("IN_SYNC",
                                                             first.distribution_set_id)


def test_older_canceling_action_hides_a_newer_assignment_until_the_cancel_is_closed(server):
    old = server.deployment()
    new = server.deployment()
    assert reload(old).status == "CANCELING"
    assert links(root_poll(server))["cancelAction"] == "%s/cancelAction/%d" % (BASE, old.id)
    post_feedback(server, old.id, report("closed", "success"), channel="cancelAction")
    assert links(root_poll(server))["deploymentBase"].startswith(
        "%s/deploymentBase/%d?c=" % (BASE, new.id))
    target = target_row()
    assert (target.update_status, target.assigned_ds_id) == ("PENDING", new.distribution_set_id)


def test_installed_base_of_an_older_finished_action_stays_readable(server):
    older = finished_action(server)
    newer = finished_action(server)
    assert links(root_poll(server))["installedBase"] == "%s/installedBase/%d" % (BASE, newer.id)
    assert get(server, path("installedBase", older.id)).json["id"] == str(older.id)


def test_installed_base_link_survives_a_failed_follow_up_deployment(server):
    installed = finished_action(server)
    failed = server.deployment()
    post_feedback(server, failed.id, report("closed", "failure"))
    assert links(root_poll(server))["installedBase"] == \
        "%s/installedBase/%d" % (BASE, installed.id)


def test_confirmed_feedback_for_a_running_action_is_an_empty_404(confirming):
    action = confirming.deployment(confirmation_required=False)
    assert action.status == "RUNNING"
    assert_empty(post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                               channel="confirmationBase", status=404))


def test_confirmation_feedback_for_a_closed_action_is_a_late_report(confirming):
    action = confirming.deployment()
    post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                  channel="confirmationBase")
    post_feedback(confirming, action.id, report("closed", "success"))
    assert_empty(post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                               channel="confirmationBase"))
    assert (reload(action).status, reload(action).active) == ("FINISHED", False)
    assert entries(action.id)[-1].status == "WARNING"


def test_waiting_action_stays_confirmable_after_the_flow_is_disabled(confirming):
    action = confirming.deployment()
    confirming.configure(**{"user.confirmation.flow.enabled": False})
    get(confirming, path("confirmationBase", action.id))
    post_feedback(confirming, action.id, {"confirmation": "confirmed"},
                  channel="confirmationBase")
    assert reload(action).status == "RUNNING"


def test_auto_confirm_message_appears_in_the_action_history(confirming):
    action = confirming.deployment()
    confirming.http.post_json(path("confirmationBase/activateAutoConfirm"),
                              {"initiator": "fleet-admin", "remark": "Unattended site"},
                              headers=token(), status=200)
    newest = history(confirming, action.id, 1)["messages"][0]
    assert newest.startswith("Assignment automatically confirmed by initiator 'fleet-admin'.")
