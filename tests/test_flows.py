"""Whole scenarios through both HTTP faces at once: the operator drives the Management API
(/rest/v1, HTTP Basic admin/admin), the device drives DDI exactly as rauc-hawkbit-updater does
on the wire (ddi-clients.md §2). Nothing is seeded through `storage/`.

The `test_rauc_suite_call_sequence_*` tests walk mgmt-contract §14.1 (steps 0-22) with the device
part of one rauc-hawkbit-updater test each (§14.2); the other tests follow one deployment story
each (§5.4).
"""

import base64
import hashlib
import json
import os
import re
import time
import urllib.parse
import uuid

from conftest import DEVICE

CONTROLLER_ID = "test-target"
BUNDLE_SIZE = 512 * 1024
# rauc-hawkbit-updater's [device] section in its test configuration.
DEVICE_ATTRIBUTES = {
    "product": "Terminator",
    "model": "T-1000",
    "serialnumber": "8922673153",
    "hw_revision": "2",
    "mac_address": "ff:ff:ff:ff:ff:ff",
}
STATUS_QUERY = "?offset=0&limit=50&sort=id:DESC"
SERVER_PREFIX = "Update Server: "


def local_path(href):
    """An absolute link as WebTest wants it: path and query only."""
    parts = urllib.parse.urlsplit(href)
    assert parts.scheme in ("http", "https") and parts.netloc, href
    return parts.path + ("?" + parts.query if parts.query else "")


def links(document):
    return {rel: link["href"] for rel, link in document.get("_links", {}).items()}


# --- the operator: hawkbit_mgmt.py's client, over WebTest -------------------------------------

class Operator:
    """The Management API as rauc's `HawkbitMgmtTestClient` calls it (requests + Basic auth)."""

    def __init__(self, http, user="admin", password="admin"):
        self.http = http
        credentials = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        self.headers = {"Authorization": "Basic " + credentials}

    def get(self, path, status=200):
        return self.http.get("/rest/v1" + path, headers=self.headers, status=status)

    def post(self, path, body, status):
        return self.http.post("/rest/v1" + path, params=json.dumps(body).encode("utf-8"),
                              headers=self.headers, content_type="application/json;charset=UTF-8",
                              status=status)

    def put(self, path, body, status):
        return self.http.put("/rest/v1" + path, params=json.dumps(body).encode("utf-8"),
                             headers=self.headers, content_type="application/json;charset=UTF-8",
                             status=status)

    def delete(self, path, status):
        return self.http.delete("/rest/v1" + path, headers=self.headers, status=status)

    def delete_any(self, path):
        """A DELETE whose outcome the suite tolerates; the response, whatever it is."""
        return self.http.delete("/rest/v1" + path, headers=self.headers, expect_errors=True)

    def upload(self, module_id, filename, data, status=201):
        return self.http.post("/rest/v1/softwaremodules/%d/artifacts" % module_id,
                              params={}, upload_files=[("file", filename, data)],
                              headers=self.headers, status=status)

    # shortcuts for the reads every scenario makes

    def action(self, action_id, controller_id=CONTROLLER_ID):
        return self.get("/targets/%s/actions/%d" % (controller_id, action_id)).json

    def status_list(self, action_id, controller_id=CONTROLLER_ID):
        document = self.get("/targets/%s/actions/%d/status%s"
                            % (controller_id, action_id, STATUS_QUERY)).json
        assert document["total"] == document["size"] == len(document["content"])
        return document["content"]

    def target(self, controller_id=CONTROLLER_ID):
        return self.get("/targets/%s" % controller_id).json


def error_code(response):
    return response.json["errorCode"]


# --- the device: rauc-hawkbit-updater on the wire (ddi-clients.md §2) -------------------------

def ddi_time():
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime())


class Device:
    """rauc-hawkbit-updater: feedback URLs rebuilt from its config, hrefs used as given."""

    def __init__(self, http, authorization, controller_id=CONTROLLER_ID):
        self.http = http
        self.root = "%s/%s" % (DEVICE, controller_id)
        self.headers = {"Authorization": authorization,
                        "User-Agent": "rauc-hawkbit-c-agent/1.0",
                        "Accept": "application/json;charset=UTF-8"}

    def _send(self, method, path, body, status):
        return getattr(self.http, method)(
            path, params=json.dumps(body).encode("utf-8"), headers=self.headers,
            content_type="application/json;charset=UTF-8", status=status)

    def poll(self, status=200):
        response = self.http.get(self.root, headers=self.headers, status=status)
        return response.json if status == 200 else response

    def poll_and_identify(self):
        """One poll as the updater handles it: configData first (PUT while the link is shown)."""
        document = self.poll()
        if "configData" in links(document):
            self.identify(links(document)["configData"])
        return document

    def identify(self, href=None):
        response = self._send("put", local_path(href) if href else self.root + "/configData",
                              {"time": ddi_time(),
                               "status": {"result": {"finished": "success"},
                                          "execution": "closed"},
                               "data": DEVICE_ATTRIBUTES}, 200)
        assert response.body == b""
        return response

    def fetch(self, href):
        return self.http.get(local_path(href), headers=self.headers, status=200).json

    def download(self, href):
        headers = dict(self.headers, Accept="application/octet-stream")
        response = self.http.get(local_path(href), headers=headers, status=200)
        return response.body

    def _report(self, path, action_id, execution, finished, detail, status=200):
        response = self._send("post", path, {
            "id": str(action_id), "time": ddi_time(),
            "status": {"result": {"finished": finished}, "execution": execution,
                       "details": [detail]}}, status)
        if status == 200:
            assert response.body == b""
        return response

    def feedback(self, action_id, execution, finished, detail, status=200):
        return self._report("%s/deploymentBase/%s/feedback" % (self.root, action_id),
                            action_id, execution, finished, detail, status)

    def cancel_feedback(self, stop_id, execution, finished, detail, status=200):
        return self._report("%s/cancelAction/%s/feedback" % (self.root, stop_id),
                            stop_id, execution, finished, detail, status)

    def take_deployment(self, action_id):
        """Poll, see the deploymentBase link of the action, fetch it and check it."""
        document = self.poll_and_identify()
        offered = links(document)
        assert "cancelAction" not in offered
        href = offered["deploymentBase"]
        assert re.search(r"/deploymentBase/%d\?c=-?\d+$" % action_id, href), href
        deployment = self.fetch(href)
        assert deployment["id"] == str(action_id)
        return deployment

    def download_checked(self, artifact):
        """Download the one artifact and verify it as the updater does (size, SHA-1)."""
        data = self.download(artifact["_links"]["download"]["href"])
        assert len(data) == artifact["size"]
        assert hashlib.sha1(data).hexdigest() == artifact["hashes"]["sha1"]
        return data

    def install(self, action_id, deployment):
        """Download, check and install as rauc-hawkbit-updater reports it, ending closed/success."""
        self.download_checked(deployment["deployment"]["chunks"][0]["artifacts"][0])
        self.feedback(action_id, "proceeding", "none", "Download complete. 0.85 MB/s")
        self.feedback(action_id, "proceeding", "none", "File checksum OK.")
        self.feedback(action_id, "proceeding", "none", "  0% Installing")
        self.feedback(action_id, "proceeding", "none", "100% Installing done.")
        self.feedback(action_id, "closed", "success", "Software bundle installed successfully.")


# --- the rauc suite's session, target and assignment fixtures (§14.1) ------------------------

class RaucSuite:
    """One test of the rauc-hawkbit-updater suite: the steps of §14.1 in order."""

    version = [1.0]

    def __init__(self, server):
        self.http = server.http
        self.mgmt = Operator(server.http)
        self.gateway_token = None
        self.modules, self.artifacts, self.sets, self.actions = [], [], [], []
        self.bundle = os.urandom(512) * 1024

    # steps 0-5: CI start and session setup
    def start_session(self):
        assert self.http.head("/").status_int < 400                                   # step 0
        self.gateway_token = uuid.uuid4().hex
        for key, value in (("pollingTime", "00:00:30"),                               # step 1
                           ("pollingOverdueTime", "00:03:00"),                        # step 2
                           ("authentication.targettoken.enabled", True),              # step 3
                           ("authentication.gatewaytoken.enabled", True),             # step 4
                           ("authentication.gatewaytoken.key", self.gateway_token)):  # step 5
            response = self.mgmt.put("/system/configs/" + key, {"value": value}, 204)
            assert response.body == b""
        return self

    # steps 6-7: every test creates test-target and reads its token
    def add_target(self):
        created = self.mgmt.post("/targets", [{"controllerId": CONTROLLER_ID,
                                               "name": CONTROLLER_ID}], 201).json
        assert isinstance(created, list) and len(created) == 1
        assert created[0]["controllerId"] == CONTROLLER_ID
        assert created[0]["name"] == CONTROLLER_ID
        assert created[0]["updateStatus"] == "unknown"
        assert created[0]["requestAttributes"] is True
        target = self.mgmt.target()
        assert target["name"] == CONTROLLER_ID
        assert isinstance(target["securityToken"], str) and target["securityToken"]
        assert target["securityToken"] == created[0]["securityToken"]
        return target

    def device(self):
        return Device(self.http, "TargetToken " + self.mgmt.target()["securityToken"])

    # steps 10-13: the assign_bundle fixture
    def assign_bundle(self, modules=1, artifacts=1, params=None):
        version = str(self.version[0])
        module_type = "application" if modules > 1 else "os"
        new_modules = []
        for _ in range(modules):
            name = "software module %s" % time.monotonic()
            created = self.mgmt.post("/softwaremodules", [{                            # step 10
                "name": name, "version": version, "type": module_type}], 201).json
            assert len(created) == 1
            assert created[0]["name"] == name and created[0]["version"] == version
            assert created[0]["type"] == module_type
            module_id = created[0]["id"]
            assert isinstance(module_id, int)
            self.modules.append(module_id)
            new_modules.append(module_id)
            for k in range(artifacts):                                                 # step 11
                filename = "bundle.raucb_%d" % k
                artifact = self.mgmt.upload(module_id, filename, self.bundle).json
                assert isinstance(artifact["id"], int)
                assert artifact["providedFilename"] == filename
                assert artifact["size"] == BUNDLE_SIZE
                assert artifact["hashes"] == {
                    "sha1": hashlib.sha1(self.bundle).hexdigest(),
                    "md5": hashlib.md5(self.bundle).hexdigest(),
                    "sha256": hashlib.sha256(self.bundle).hexdigest()}
                assert local_path(artifact["_links"]["download"]["href"]) == \
                    "/rest/v1/softwaremodules/%d/artifacts/%d/download" % (module_id,
                                                                             artifact["id"])
                self.artifacts.append(artifact["id"])
        set_type = "app" if modules > 1 else "os"
        set_name = "distribution %s (%s)" % (version, time.monotonic())
        created = self.mgmt.post("/distributionsets", [{                               # step 12
            "name": set_name, "description": "Test distribution", "version": version,
            "modules": [{"id": m} for m in new_modules], "type": set_type}], 201).json
        assert len(created) == 1
        assert created[0]["name"] == set_name and created[0]["type"] == set_type
        assert sorted(m["id"] for m in created[0]["modules"]) == sorted(new_modules)
        assert created[0]["complete"] is True
        set_id = created[0]["id"]
        assert isinstance(set_id, int)
        self.sets.append(set_id)
        assignment = dict({"id": CONTROLLER_ID}, **(params or {}))
        result = self.mgmt.post("/distributionsets/%d/assignedTargets" % set_id,   # step 13
                                [assignment], 200).json
        assert result["assigned"] == 1
        assert result["alreadyAssigned"] == 0
        assert result["total"] == 1
        action_id = result["assignedActions"][-1]["id"]
        assert isinstance(action_id, int)
        assert local_path(result["assignedActions"][-1]["_links"]["self"]["href"]) == \
            "/rest/v1/targets/%s/actions/%d" % (CONTROLLER_ID, action_id)
        self.actions.append(action_id)
        self.version[0] += 0.1
        return action_id

    # steps 18-22: teardown as the suite does it (errors tolerated where it tolerates them)
    def teardown(self):
        for action_id in self.actions:                                                 # step 18
            path = "/targets/%s/actions/%d" % (CONTROLLER_ID, action_id)
            if self.mgmt.delete_any(path).status_int // 100 == 2:
                self.mgmt.delete_any(path + "?force=true")
        for set_id in self.sets:                                                       # step 19
            assert self.mgmt.delete_any("/distributionsets/%d" % set_id).status_int == 204
        for module_id in self.modules:
            for artifact_id in self.artifacts:
                self.mgmt.delete_any("/softwaremodules/%d/artifacts/%d"               # step 20
                                     % (module_id, artifact_id))
                assert self.mgmt.delete_any(                                           # step 21
                    "/softwaremodules/%d" % module_id).status_int == 204
        assert self.mgmt.delete_any("/targets/" + CONTROLLER_ID).status_int == 204    # step 22
        self.modules, self.artifacts, self.sets, self.actions = [], [], [], []

    # steps 14-15: the assertions' reads
    def newest_status(self, action_id):
        return self.mgmt.status_list(action_id)[0]


def rauc_suite(server):
    suite = RaucSuite(server).start_session()
    suite.add_target()
    return suite


# --- §14: one test per rauc-hawkbit-updater scenario ------------------------------------------

def test_rauc_suite_call_sequence_install_success(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle()
    device = suite.device()

    deployment = device.take_deployment(action_id)
    assert deployment["deployment"]["download"] == "forced"
    assert deployment["deployment"]["update"] == "forced"
    chunks = deployment["deployment"]["chunks"]
    assert len(chunks) == 1 and len(chunks[0]["artifacts"]) == 1
    assert chunks[0]["part"] == "os"
    artifact = chunks[0]["artifacts"][0]
    assert artifact["filename"] == "bundle.raucb_0"
    assert artifact["size"] == BUNDLE_SIZE
    device.install(action_id, deployment)

    newest = suite.newest_status(action_id)                                            # step 14
    assert newest["type"] == "finished"
    assert newest["messages"][0] == "Software bundle installed successfully."
    action = suite.mgmt.action(action_id)                                              # step 15
    assert (action["type"], action["status"], action["active"]) == ("update", "finished", False)
    suite.teardown()


def test_rauc_suite_call_sequence_multi_chunk_rejected(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle(modules=2)
    device = suite.device()

    deployment = device.take_deployment(action_id)
    chunks = deployment["deployment"]["chunks"]
    assert len(chunks) == 2
    assert [chunk["part"] for chunk in chunks] == ["bApp", "bApp"]
    device.feedback(action_id, "closed", "failure",
                    "Deployment %s unsupported: cannot handle multiple chunks." % deployment["id"])

    newest = suite.newest_status(action_id)                                            # step 14
    assert newest["type"] == "error"
    assert re.fullmatch(r"Deployment \d*? unsupported: cannot handle multiple chunks.",
                        newest["messages"][0])
    action = suite.mgmt.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("update", "error", False)
    suite.teardown()


def test_rauc_suite_call_sequence_download_only(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle(params={"type": "downloadonly"})
    device = suite.device()

    deployment = device.take_deployment(action_id)
    assert deployment["deployment"]["download"] == "forced"
    assert deployment["deployment"]["update"] == "skip"
    device.download_checked(deployment["deployment"]["chunks"][0]["artifacts"][0])
    device.feedback(action_id, "proceeding", "none", "Download complete. 0.85 MB/s")
    device.feedback(action_id, "downloaded", "success", "File checksum OK.")

    newest = suite.newest_status(action_id)                                            # step 14
    assert newest["type"] == "downloaded"
    assert "File checksum OK." in newest["messages"]
    action = suite.mgmt.action(action_id)
    assert action["forceType"] == "downloadonly"
    assert (action["type"], action["status"], action["active"]) == ("update", "downloaded", False)
    assert suite.mgmt.target()["updateStatus"] == "in_sync"
    suite.teardown()


def test_rauc_suite_call_sequence_cancel_before_poll(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle()
    response = suite.mgmt.delete("/targets/%s/actions/%d" % (CONTROLLER_ID, action_id), 204)
    assert response.body == b""                                                        # step 16
    action = suite.mgmt.action(action_id)                                              # step 15
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceling", True)

    device = suite.device()
    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered
    assert local_path(offered["cancelAction"]) == \
        "%s/%s/cancelAction/%d" % (DEVICE, CONTROLLER_ID, action_id)
    cancel = device.fetch(offered["cancelAction"])
    assert cancel == {"id": str(action_id), "cancelAction": {"stopId": str(action_id)}}
    device.cancel_feedback(cancel["cancelAction"]["stopId"], "closed", "success",
                           "Action canceled.")

    action = suite.mgmt.action(action_id)                                              # step 15
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceled", False)
    newest = suite.newest_status(action_id)                                            # step 14
    assert newest["type"] == "canceled"
    assert "Action canceled." in newest["messages"]
    suite.teardown()


def test_rauc_suite_call_sequence_cancel_during_install(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle()
    device = suite.device()
    deployment = device.take_deployment(action_id)
    device.download_checked(deployment["deployment"]["chunks"][0]["artifacts"][0])
    device.feedback(action_id, "proceeding", "none", "Download complete. 0.85 MB/s")
    device.feedback(action_id, "proceeding", "none", "File checksum OK.")
    device.feedback(action_id, "proceeding", "none", "  0% Installing")

    suite.mgmt.delete("/targets/%s/actions/%d" % (CONTROLLER_ID, action_id), 204)     # step 16
    action = suite.mgmt.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceling", True)

    # The updater polls every 5 s while installing, sees the cancel and refuses it.
    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered
    cancel = device.fetch(offered["cancelAction"])
    assert cancel == {"id": str(action_id), "cancelAction": {"stopId": str(action_id)}}
    device.cancel_feedback(cancel["cancelAction"]["stopId"], "rejected", "success",
                           "Cancelation impossible, installation started already.")
    action = suite.mgmt.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("update", "running", True)
    newest = suite.newest_status(action_id)
    assert newest["type"] == "cancel_rejected"
    assert "Cancelation impossible, installation started already." in newest["messages"]
    offered = links(device.poll_and_identify())
    assert "cancelAction" not in offered
    assert re.search(r"/deploymentBase/%d\?c=-?\d+$" % action_id, offered["deploymentBase"])

    device.feedback(action_id, "proceeding", "none", "100% Installing done.")
    device.feedback(action_id, "closed", "success", "Software bundle installed successfully.")

    action = suite.mgmt.action(action_id)                                              # step 15
    assert (action["type"], action["status"], action["active"]) == ("update", "finished", False)
    newest = suite.newest_status(action_id)                                            # step 14
    assert newest["type"] == "finished"
    assert "Software bundle installed successfully." in newest["messages"]
    suite.teardown()


def test_rauc_suite_call_sequence_identify(server):
    suite = rauc_suite(server)
    response = suite.mgmt.get("/targets/%s/attributes" % CONTROLLER_ID, status=204)
    assert response.body == b""
    device = suite.device()

    offered = links(device.poll())
    assert set(offered) == {"configData"}
    assert local_path(offered["configData"]) == "%s/%s/configData" % (DEVICE, CONTROLLER_ID)
    device.identify(offered["configData"])

    attributes = suite.mgmt.get("/targets/%s/attributes" % CONTROLLER_ID).json       # step 9
    assert attributes == DEVICE_ATTRIBUTES
    assert "configData" not in links(device.poll())
    assert suite.mgmt.target()["requestAttributes"] is False
    suite.teardown()


def test_rauc_suite_call_sequence_gateway_token(server):
    suite = rauc_suite(server)
    config = suite.mgmt.get("/system/configs/authentication.gatewaytoken.key").json   # step 8
    assert config["value"] == suite.gateway_token
    assert config["global"] is False

    wrong = Device(suite.http, "GatewayToken wrong-gateway-token")
    assert wrong.poll(status=401).status_int == 401
    device = Device(suite.http, "GatewayToken " + config["value"])
    document = device.poll()
    assert document["config"] == {"polling": {"sleep": "00:00:30"}}
    assert set(links(document)) == {"configData"}
    target = suite.mgmt.target()
    assert target["updateStatus"] == "registered"
    assert "lastControllerRequestAt" in target and "pollStatus" in target
    suite.teardown()


def test_rauc_suite_call_sequence_teardown(server):
    suite = rauc_suite(server)
    action_id = suite.assign_bundle()
    device = suite.device()
    device.install(action_id, device.take_deployment(action_id))
    assert suite.mgmt.action(action_id)["status"] == "finished"
    module_id, artifact_id, set_id = suite.modules[0], suite.artifacts[0], suite.sets[0]

    # step 18: cancel and force-quit of a finished action fail; the suite ignores both.
    action_path = "/targets/%s/actions/%d" % (CONTROLLER_ID, action_id)
    refused = suite.mgmt.delete(action_path, 405)
    assert error_code(refused) == "hawkbit.server.error.action.notCancelable"
    refused = suite.mgmt.delete(action_path + "?force=true", 405)
    assert error_code(refused) == "hawkbit.server.error.action.notForceQuitable"
    assert suite.mgmt.action(action_id)["status"] == "finished"

    # step 19: the set has an action, so it is soft-deleted.
    assert suite.mgmt.delete("/distributionsets/%d" % set_id, 204).body == b""
    assert suite.mgmt.get("/distributionsets/%d" % set_id).json["deleted"] is True

    # step 20: the module was locked by the assignment.
    refused = suite.mgmt.delete("/softwaremodules/%d/artifacts/%d" % (module_id, artifact_id),
                                423)
    assert error_code(refused) == "hawkbit.server.error.locked"

    # step 21: once per artifact of the fixture; a repeat on the soft-deleted module is 204.
    assert suite.mgmt.delete("/softwaremodules/%d" % module_id, 204).body == b""
    assert suite.mgmt.delete("/softwaremodules/%d" % module_id, 204).body == b""
    assert suite.mgmt.get("/softwaremodules/%d" % module_id).json["deleted"] is True

    # step 22, then the next test's step 6 with the same controller id.
    assert suite.mgmt.delete("/targets/" + CONTROLLER_ID, 204).body == b""
    suite.mgmt.get("/targets/" + CONTROLLER_ID, status=404)
    suite.mgmt.get("/targets/%s/actions/%d" % (CONTROLLER_ID, action_id), status=404)
    target = suite.add_target()
    assert target["updateStatus"] == "unknown"
    assert "installedAt" not in target
    suite.mgmt.get("/targets/%s/installedDS" % CONTROLLER_ID, status=204)
    assert suite.mgmt.get("/targets/%s/actions" % CONTROLLER_ID).json["total"] == 0


# --- deployment stories (§5.4) ------------------------------------------------------------------

class Catalogue:
    """Operator-side set-up shared by the stories below."""

    def __init__(self, server, controller_id="dev-flow", token="flow-token-0001"):
        self.http = server.http
        self.mgmt = Operator(server.http)
        self.controller_id = controller_id
        self.token = token
        self.count = 0

    def add_target(self):
        created = self.mgmt.post("/targets", [{"controllerId": self.controller_id,
                                               "securityToken": self.token}], 201).json
        assert created[0]["securityToken"] == self.token
        assert created[0]["updateStatus"] == "unknown"
        return Device(self.http, "TargetToken " + self.token, self.controller_id)

    def add_set(self):
        self.count += 1
        data = os.urandom(1024) * (32 + self.count)
        module = self.mgmt.post("/softwaremodules", [{
            "name": "firmware", "version": "%d.0" % self.count, "type": "os"}], 201).json[0]
        artifact = self.mgmt.upload(module["id"], "fw-%d.raucb" % self.count, data).json
        assert artifact["size"] == len(data)
        ds = self.mgmt.post("/distributionsets", [{
            "name": "firmware set", "version": "%d.0" % self.count,
            "modules": [{"id": module["id"]}], "type": "os"}], 201).json[0]
        return ds["id"]

    def assign(self, set_id, expect_new=True):
        result = self.mgmt.post("/distributionsets/%d/assignedTargets" % set_id,
                                [{"id": self.controller_id}], 200).json
        if not expect_new:
            return result
        assert (result["assigned"], result["alreadyAssigned"], result["total"]) == (1, 0, 1)
        return result["assignedActions"][0]["id"]

    def action(self, action_id):
        return self.mgmt.action(action_id, self.controller_id)

    def statuses(self, action_id):
        return self.mgmt.status_list(action_id, self.controller_id)

    def target(self):
        return self.mgmt.target(self.controller_id)

    def assigned_ds(self, status=200):
        return self.mgmt.get("/targets/%s/assignedDS" % self.controller_id, status=status)

    def installed_ds(self, status=200):
        return self.mgmt.get("/targets/%s/installedDS" % self.controller_id, status=status)

    def install(self, device, set_id):
        """A complete, successful deployment of the set; the action id."""
        action_id = self.assign(set_id)
        device.install(action_id, device.take_deployment(action_id))
        assert self.action(action_id)["status"] == "finished"
        return action_id


def test_whole_deployment_through_both_apis(server):
    flow = Catalogue(server)
    device = flow.add_target()
    set_id = flow.add_set()
    action_id = flow.assign(set_id)
    target = flow.target()
    assert target["updateStatus"] == "pending"
    assert flow.assigned_ds().json["id"] == set_id
    flow.installed_ds(status=204)
    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("update", "running", True)
    assert action["forceType"] == "forced"

    document = device.poll()
    offered = links(document)
    assert set(offered) == {"deploymentBase", "configData"}
    device.identify(offered["configData"])
    deployment = device.fetch(offered["deploymentBase"])
    assert deployment["id"] == str(action_id)
    assert (deployment["deployment"]["download"], deployment["deployment"]["update"]) == \
        ("forced", "forced")
    assert flow.action(action_id)["status"] == "retrieved"
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    device.download_checked(artifact)
    device.feedback(action_id, "proceeding", "none", "Download complete. 0.85 MB/s")
    action = flow.action(action_id)
    assert action["active"] is True and action["status"] in ("running", "retrieved")
    device.feedback(action_id, "closed", "success", "Software bundle installed successfully.")

    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("update", "finished", False)
    target = flow.target()
    assert target["updateStatus"] == "in_sync"
    assert target["requestAttributes"] is True
    assert isinstance(target["installedAt"], int)
    assert flow.installed_ds().json["id"] == set_id
    assert flow.assigned_ds().json["id"] == set_id

    entries = flow.statuses(action_id)
    assert [e["type"] for e in entries] == ["finished", "running", "download", "retrieved",
                                            "running"]
    assert entries[0]["messages"][0] == "Software bundle installed successfully."
    assert entries[1]["messages"] == ["Download complete. 0.85 MB/s"]
    assert entries[2]["messages"][0].startswith(SERVER_PREFIX)
    assert artifact["filename"] in entries[2]["messages"][0]
    assert entries[3]["messages"][0].startswith(SERVER_PREFIX)
    assert "admin" in entries[4]["messages"][0]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)

    offered = links(device.poll())
    assert set(offered) == {"installedBase", "configData"}
    assert local_path(offered["installedBase"]) == \
        "%s/%s/installedBase/%d" % (DEVICE, flow.controller_id, action_id)


def test_cancel_path(server):
    flow = Catalogue(server)
    device = flow.add_target()
    first = flow.add_set()
    flow.install(device, first)
    second = flow.add_set()
    action_id = flow.assign(second)
    assert flow.target()["updateStatus"] == "pending"
    assert flow.assigned_ds().json["id"] == second
    device.take_deployment(action_id)

    flow.mgmt.delete("/targets/%s/actions/%d" % (flow.controller_id, action_id), 204)
    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceling", True)
    newest = flow.statuses(action_id)[0]
    assert newest["type"] == "canceling"
    assert newest["messages"][0].startswith(SERVER_PREFIX)

    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered
    cancel = device.fetch(offered["cancelAction"])
    assert cancel == {"id": str(action_id), "cancelAction": {"stopId": str(action_id)}}
    assert flow.statuses(action_id)[0]["type"] == "retrieved"
    device.cancel_feedback(action_id, "closed", "success", "Action canceled.")

    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceled", False)
    newest = flow.statuses(action_id)[0]
    assert newest["type"] == "canceled"
    assert "Action canceled." in newest["messages"]
    target = flow.target()
    assert target["updateStatus"] == "in_sync"
    assert flow.assigned_ds().json["id"] == first
    assert flow.installed_ds().json["id"] == first
    offered = links(device.poll_and_identify())
    assert "cancelAction" not in offered and "deploymentBase" not in offered


def test_force_quit_path(server):
    flow = Catalogue(server)
    device = flow.add_target()
    set_id = flow.add_set()
    action_id = flow.assign(set_id)
    device.take_deployment(action_id)
    path = "/targets/%s/actions/%d" % (flow.controller_id, action_id)

    refused = flow.mgmt.delete(path + "?force=true", 405)
    assert error_code(refused) == "hawkbit.server.error.action.notForceQuitable"
    flow.mgmt.delete(path, 204)
    flow.mgmt.delete(path + "?force=true", 204)

    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceled", False)
    before = flow.statuses(action_id)
    assert [e["type"] for e in before[:2]] == ["canceled", "canceling"]
    assert before[0]["messages"][0].startswith(SERVER_PREFIX)
    target = flow.target()
    assert target["updateStatus"] == "in_sync"
    flow.assigned_ds(status=204)
    flow.installed_ds(status=204)

    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered and "cancelAction" not in offered
    device.http.get("%s/%s/deploymentBase/%d" % (DEVICE, flow.controller_id, action_id),
                    headers=device.headers, status=404)

    # A device that missed the cancel reports its install late: 200, nothing changes.
    device.feedback(action_id, "closed", "success", "Software bundle installed successfully.")
    assert flow.action(action_id) == action
    assert flow.target()["updateStatus"] == "in_sync"
    flow.assigned_ds(status=204)
    flow.installed_ds(status=204)
    after = flow.statuses(action_id)
    assert after[len(after) - len(before):] == before
    assert all(entry["type"] == "warning" for entry in after[:len(after) - len(before)])
    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered and "cancelAction" not in offered


def test_superseding_assignment(server):
    flow = Catalogue(server)
    device = flow.add_target()
    first_set, second_set = flow.add_set(), flow.add_set()
    first = flow.assign(first_set)
    device.take_deployment(first)
    device.feedback(first, "proceeding", "none", "Download complete. 0.85 MB/s")

    second = flow.assign(second_set)
    assert second != first
    action = flow.action(first)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceling", True)
    newest = flow.statuses(first)[0]
    assert newest["type"] == "canceling"
    assert newest["messages"][0].startswith(SERVER_PREFIX)
    action = flow.action(second)
    assert (action["type"], action["status"], action["active"]) == ("update", "running", True)
    assert flow.target()["updateStatus"] == "pending"
    assert flow.assigned_ds().json["id"] == second_set

    offered = links(device.poll_and_identify())
    assert "deploymentBase" not in offered
    assert local_path(offered["cancelAction"]) == \
        "%s/%s/cancelAction/%d" % (DEVICE, flow.controller_id, first)
    cancel = device.fetch(offered["cancelAction"])
    assert cancel["cancelAction"]["stopId"] == str(first)
    device.cancel_feedback(first, "closed", "success", "Action canceled.")

    action = flow.action(first)
    assert (action["type"], action["status"], action["active"]) == ("cancel", "canceled", False)
    assert flow.target()["updateStatus"] == "pending"
    assert flow.assigned_ds().json["id"] == second_set
    deployment = device.take_deployment(second)
    assert deployment["deployment"]["chunks"][0]["version"] == "2.0"
    device.install(second, deployment)
    assert flow.action(second)["status"] == "finished"
    assert flow.target()["updateStatus"] == "in_sync"
    assert flow.installed_ds().json["id"] == second_set


def test_failure_path(server):
    flow = Catalogue(server)
    device = flow.add_target()
    set_id = flow.add_set()
    action_id = flow.assign(set_id)
    deployment = device.take_deployment(action_id)
    device.download_checked(deployment["deployment"]["chunks"][0]["artifacts"][0])
    device.feedback(action_id, "proceeding", "none", "File checksum OK.")
    device.feedback(action_id, "closed", "failure", "Failed to install software bundle.")

    action = flow.action(action_id)
    assert (action["type"], action["status"], action["active"]) == ("update", "error", False)
    newest = flow.statuses(action_id)[0]
    assert newest["type"] == "error"
    assert newest["messages"][0] == "Failed to install software bundle."
    target = flow.target()
    assert target["updateStatus"] == "error"
    assert flow.assigned_ds(status=204).body == b""
    flow.installed_ds(status=204)
    offered = links(device.poll())
    assert "configData" not in offered
    assert "deploymentBase" not in offered and "cancelAction" not in offered

    retry = flow.assign(set_id)
    assert retry != action_id
    action = flow.action(retry)
    assert (action["type"], action["status"], action["active"]) == ("update", "running", True)
    assert flow.target()["updateStatus"] == "pending"
    assert flow.assigned_ds().json["id"] == set_id
    assert flow.action(action_id)["status"] == "error"
    device.take_deployment(retry)
