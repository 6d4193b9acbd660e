"""The operator's side of a live ddi-lite (the Management API over HTTP), for the client tier.

Everything here talks to real processes over loopback sockets; nothing reaches into
`storage/`. The process itself is `live.DdiLite`.
"""

import hashlib
import json
import urllib.error
import urllib.request
import uuid

from live import ADMIN, HttpError, wait_until


class Operator:
    """The Management API (/rest/v1) as an operator's script uses it: HTTP Basic admin/admin."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, document=None, body=None, content_type="application/json"):
        if document is not None:
            body = json.dumps(document).encode("utf-8")
        headers = {"Authorization": ADMIN, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + "/rest/v1" + path, data=body,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                data = response.read()
        except urllib.error.HTTPError as error:
            raise HttpError(error.code, error.read().decode("utf-8", "replace"))
        return json.loads(data.decode("utf-8")) if data else None

    def set_config(self, key, value):
        """PUT /system/configs/<key>: a tenant configuration value."""
        self.call("PUT", "/system/configs/" + key, {"value": value})

    # targets

    def add_target(self, controller_id, token=None):
        item = {"controllerId": controller_id, "name": controller_id}
        if token is not None:
            item["securityToken"] = token
        return self.call("POST", "/targets", [item])[0]

    def target(self, controller_id):
        return self.call("GET", "/targets/" + controller_id)

    def update_target(self, controller_id, **fields):
        return self.call("PUT", "/targets/" + controller_id, fields)

    def attributes(self, controller_id):
        return self.call("GET", "/targets/%s/attributes" % controller_id)

    def installed_set(self, controller_id):
        return self.call("GET", "/targets/%s/installedDS" % controller_id)

    # software

    def upload(self, module_id, filename, data):
        boundary = uuid.uuid4().hex
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n" % (boundary, filename))
                .encode("utf-8") + data + ("\r\n--%s--\r\n" % boundary).encode("utf-8"))
        return self.call("POST", "/softwaremodules/%d/artifacts" % module_id, body=body,
                         content_type="multipart/form-data; boundary=" + boundary)

    def distribution(self, name, files, version="1.0"):
        """One `os` module holding `files` ({filename: bytes}) in a set of type `os`: the
        set's id. Each upload's hashes are checked against the bytes."""
        module = self.call("POST", "/softwaremodules",
                           [{"name": name, "version": version, "type": "os"}])[0]
        for filename, data in files.items():
            artifact = self.upload(module["id"], filename, data)
            assert artifact["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
        return self.call("POST", "/distributionsets", [
            {"name": name, "version": version, "type": "os",
             "modules": [{"id": module["id"]}]}])[0]["id"]

    def assign(self, set_id, controller_id, action_type="forced"):
        result = self.call("POST", "/distributionsets/%d/assignedTargets" % set_id,
                           [{"id": controller_id, "type": action_type}])
        return result["assignedActions"][0]["id"]

    # actions

    def action(self, controller_id, action_id):
        return self.call("GET", "/targets/%s/actions/%d" % (controller_id, action_id))

    def statuses(self, controller_id, action_id):
        """The action's status entries, oldest first."""
        document = self.call("GET", "/targets/%s/actions/%d/status?limit=500&sort=id:ASC"
                             % (controller_id, action_id))
        return document["content"]

    def cancel(self, controller_id, action_id):
        self.call("DELETE", "/targets/%s/actions/%d" % (controller_id, action_id))

    def wait_for_action(self, controller_id, action_id, status, timeout, on_timeout=None):
        """Wait until the action has `status`; the action document."""
        seen = {}

        def reached():
            seen["action"] = self.action(controller_id, action_id)
            return seen["action"] if seen["action"]["status"] == status else None

        def report():
            lines = ["action %d is %s; its status entries:" % (action_id,
                                                               seen["action"]["status"])]
            lines += ["  %s %s" % (entry["type"], entry["messages"])
                      for entry in self.statuses(controller_id, action_id)]
            if on_timeout is not None:
                lines.append(on_timeout())
            return "\n".join(lines)
        return wait_until(reached, timeout, "action %d reaching %s" % (action_id, status),
                          interval=0.1, on_timeout=report)
