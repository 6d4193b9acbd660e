"""A live ddi-lite process and the operator's side of it (the Management API over HTTP).

Everything here talks to real processes over loopback sockets; nothing reaches into
`storage/`. Waits poll a condition with a deadline instead of sleeping a fixed time.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ADMIN = "Basic " + base64.b64encode(b"admin:admin").decode("ascii")
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTUP_TIMEOUT = 15.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout, what, interval=0.05, on_timeout=None):
    """Call `condition` until it returns something truthy (returned); AssertionError after
    `timeout` seconds, with `on_timeout()` (e.g. a client log) in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError("%s did not happen within %.0f s%s"
                                 % (what, timeout, "\n" + extra if extra else ""))
        time.sleep(interval)


def stop_process(process, timeout=5.0, group=False):
    """SIGTERM, a bounded wait, then SIGKILL. With `group`, the signals go to the process
    group the process leads (it was started with start_new_session=True), so the helpers it
    forked stop with it. The leader is only reaped after the group's SIGKILL: while it is
    unreaped its id cannot name anyone else's process group."""
    if not group:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout)
        return
    _kill_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not exited(process) and time.monotonic() < deadline:
        time.sleep(0.02)
    _kill_group(process, signal.SIGKILL)
    process.wait(timeout)


def exited(process):
    """Whether the process has exited, without reaping it."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) \
            is not None
    except ChildProcessError:
        return True


def _kill_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body[:500]))
        self.status = status
        self.body = body


class DdiLite:
    """`ddi-lite serve` on a free loopback port with its own config.ini and data directory."""

    def __init__(self, directory, config_lines=(), min_polling_time="00:00:01"):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = directory / "server.log"
        self.config_path = directory / "config.ini"
        self.config_path.write_text("\n".join(["[server]", "threads = 8"] + list(config_lines))
                                    + "\n", encoding="utf-8")
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith("DDI_LITE_")}
        with open(str(self.log_path), "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ddi_lite", "serve", "--config", str(self.config_path),
                 "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(directory / "data"),
                 "--ddi-min-polling-time", min_polling_time],
                cwd=PROJECT_DIR, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, STARTUP_TIMEOUT, "ddi-lite start-up", on_timeout=self.log)
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError("ddi-lite exited with %s:\n%s"
                                 % (self.process.returncode, self.log()))
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self):
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        stop_process(self.process)


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
