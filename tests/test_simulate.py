"""The fleet simulator (`ddi-lite simulate`), run in this process against a real ddi-lite
server process, plus a small stand-in server for what ddi-lite never does (chunked answers,
links to another host).

One server serves the whole module; every test names its devices with its own prefix.
Setup that is not under test goes straight to the Management API.
"""

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time

import pytest

import live

import ddi_lite
from client import commands

GATEWAY_TOKEN = "gateway-secret"
ARTIFACT = hashlib.sha256(b"seed").digest() * 312 + b"tail"  # 9988 bytes


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    server = live.DdiLite(tmp_path_factory.mktemp("simulate"), [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + GATEWAY_TOKEN])
    try:
        live.api(server.url, "PUT", "/system/configs/pollingTime", {"value": "00:00:01"})
        yield server.url
    finally:
        server.stop()


def targets(url, prefix, count, tokens=False):
    """Targets PREFIX00001...; with `tokens`, each with token `token-<id>`."""
    ids = ["%s%05d" % (prefix, n) for n in range(1, count + 1)]
    live.api(url, "POST", "/targets", [dict({"controllerId": controller_id},
                                       **({"securityToken": "token-" + controller_id}
                                          if tokens else {})) for controller_id in ids])
    return ids


def rollout(url, tmp_path, name, controller_ids):
    """A set with one module holding ARTIFACT, assigned to these targets: their actions."""
    client = commands.ManagementClient(url, "admin", "admin")
    module = client.call("POST", "/softwaremodules",
                         [{"name": name, "version": "1.0", "type": "os"}])[0]
    path = tmp_path / (name + ".swu")
    path.write_bytes(ARTIFACT)
    commands.upload_artifact(client, module["id"], str(path))
    distribution_set = client.call("POST", "/distributionsets", [
        {"name": name, "version": "1.0", "type": "os", "modules": [{"id": module["id"]}]}])[0]
    result = client.call("POST", "/distributionsets/%d/assignedTargets" % distribution_set["id"],
                         [{"id": controller_id} for controller_id in controller_ids])
    return {commands._controller_id_of(action): action["id"]
            for action in result["assignedActions"]}


def action_status(url, controller_id, action_id):
    return live.api(url, "GET", "/targets/%s/actions/%d" % (controller_id, action_id))["status"]


def simulate(capsys, url, *words):
    """`ddi-lite simulate --url URL --json WORDS...` in this process: exit code, summary,
    stderr."""
    code = ddi_lite.main(["simulate", "--url", url, "--json"] + list(words))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, (json.loads(out) if out.strip() else None), err


def test_rollout_ends_with_every_assigned_device_done_and_its_action_finished(
        url, capsys, tmp_path):
    ids = targets(url, "roll-", 20, tokens=True)
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("# controllerId token\n" + "".join(
        "%s token-%s\n" % (controller_id, controller_id) for controller_id in ids))
    actions = rollout(url, tmp_path, "roll", ids[:10])

    code, summary, _ = simulate(capsys, url, "--token-file", str(token_file),
                                "--poll-interval", "0.2", "--stop-when-done", "--configdata")

    assert (code, summary["stopped"], summary["devices"]) == (0, "done", 20)
    assert summary["states"] == {"idle": 10, "downloading": 0, "installing": 0, "done": 10,
                                 "failed": 0}
    assert summary["outcomes"] == {"success": 10}
    assert summary["bytes_downloaded"] == 10 * len(ARTIFACT)
    assert summary["non_2xx"] == {} and summary["errors"] == {}
    latency = summary["latency_ms"]
    assert latency["deploymentBase"]["requests"] == 10
    assert latency["download"]["requests"] == 10
    assert latency["feedback"]["requests"] == 20  # proceeding, then closed
    assert latency["configData"]["requests"] >= 20
    for numbers in latency.values():
        assert 0 <= numbers["p50"] <= numbers["p90"] <= numbers["p99"] <= numbers["max"]
    # The polls still on their way when the run stopped are sent, not answered.
    assert summary["answered"] == sum(numbers["requests"] for numbers in latency.values())
    assert summary["answered"] <= summary["requests"] <= summary["answered"] + 20
    for controller_id, action_id in actions.items():
        assert action_status(url, controller_id, action_id) == "finished"
    assert live.api(url, "GET", "/targets/roll-00020/attributes")["serial"] == "roll-00020"


def test_failure_rate_one_fails_every_installation_and_ranges_download_in_pieces(
        url, capsys, tmp_path):
    ids = targets(url, "fail-", 4)
    actions = rollout(url, tmp_path, "fail", ids)

    code, summary, _ = simulate(capsys, url, "--gateway-token", GATEWAY_TOKEN,
                                "--prefix", "fail-", "--devices", "4", "--failure-rate", "1",
                                "--download", "ranges", "--range-size", "4096",
                                "--poll-interval", "0.2", "--stop-when-done")

    assert (code, summary["stopped"]) == (0, "done")
    assert summary["states"]["failed"] == 4 and summary["outcomes"] == {"failure": 4}
    assert summary["latency_ms"]["download"]["requests"] == 4 * 3  # 4096 + 4096 + 1796 bytes
    assert summary["bytes_downloaded"] == 4 * len(ARTIFACT)
    for controller_id, action_id in actions.items():
        assert action_status(url, controller_id, action_id) == "error"


def test_cancel_is_confirmed_with_closed_feedback(url, capsys, tmp_path):
    ids = targets(url, "cancel-", 2, tokens=True)
    actions = rollout(url, tmp_path, "cancel", ids[:1])
    live.api(url, "DELETE", "/targets/cancel-00001/actions/%d" % actions["cancel-00001"])
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("cancel-00001 token-cancel-00001\ncancel-00002 token-cancel-00002\n")

    # No --poll-interval: the devices sleep as the server says (pollingTime 00:00:01).
    code, summary, _ = simulate(capsys, url, "--token-file", str(token_file),
                                "--stop-when-done")

    assert (code, summary["stopped"], summary["outcomes"]) == (0, "done", {"cancelled": 1})
    assert summary["latency_ms"]["cancel"]["requests"] == 2  # cancelAction, then its feedback
    assert "deploymentBase" not in summary["latency_ms"]
    assert action_status(url, "cancel-00001", actions["cancel-00001"]) == "canceled"


def test_create_targets_creates_the_missing_ones_and_reuses_the_existing_with_their_token(
        url, capsys, monkeypatch):
    live.api(url, "POST", "/targets", [{"controllerId": "new-00001", "securityToken": "kept"}])
    monkeypatch.setenv("DDI_LITE_PASSWORD", "admin")

    code, summary, err = simulate(capsys, url, "--create-targets", "--prefix", "new-",
                                  "--devices", "3", "--poll-interval", "0.2",
                                  "--max-requests", "6")

    assert "2 targets created, 1 reused" in err
    assert (code, summary["requests"], summary["non_2xx"]) == (0, 6, {})
    listed = live.api(url, "GET", "/targets?q=controllerId==new-*")["content"]
    assert sorted(target["controllerId"] for target in listed) == \
        ["new-00001", "new-00002", "new-00003"]
    assert live.api(url, "GET", "/targets/new-00001")["securityToken"] == "kept"


def test_duration_ends_a_run_that_is_never_done(url, capsys):
    started = time.monotonic()
    code, summary, _ = simulate(capsys, url, "--gateway-token", GATEWAY_TOKEN, "--prefix",
                                "dur-", "--devices", "3", "--poll-interval", "0.2",
                                "--duration", "1", "--max-requests", "1000")
    assert (code, summary["stopped"]) == (0, "duration")
    assert 1 <= summary["seconds"] < 1.5 and time.monotonic() - started < 3
    assert 6 <= summary["latency_ms"]["poll"]["requests"] <= 18


def test_max_requests_ends_the_run_before_one_request_more(url, capsys):
    code, summary, _ = simulate(capsys, url, "--gateway-token", GATEWAY_TOKEN, "--prefix",
                                "max-", "--devices", "5", "--poll-interval", "0.2",
                                "--max-requests", "7")
    assert (code, summary["stopped"]) == (0, "max-requests")
    assert summary["requests"] == 7 and summary["answered"] <= 7


def test_without_json_the_summary_is_a_table_with_a_line_per_request_kind(url, capsys):
    code = ddi_lite.main(["simulate", "--url", url, "--gateway-token", GATEWAY_TOKEN,
                          "--prefix", "text-", "--devices", "2", "--max-requests", "4",
                          "--poll-interval", "0.2", "--seed", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("2 devices against %s (tenant DEFAULT, seed 5), stopped after"
                               % url) and lines[0].endswith(": max-requests")
    assert lines[1].split()[:3] == ["requests", "4", "sent,"]
    assert lines[-2].split() == ["REQUEST", "COUNT", "P50", "MS", "P90", "MS", "P99", "MS",
                                 "MAX", "MS"]
    assert lines[-1].split()[0] == "poll"


def test_a_wrong_token_is_counted_as_401_and_keeps_the_run_from_being_done(url, capsys):
    code, summary, _ = simulate(capsys, url, "--gateway-token", "wrong", "--devices", "2",
                                "--poll-interval", "0.2", "--duration", "0.5",
                                "--stop-when-done")
    assert (code, summary["stopped"]) == (1, "duration")
    assert summary["non_2xx"] == {"401": summary["latency_ms"]["poll"]["requests"]}


class StandIn(http.server.BaseHTTPRequestHandler):
    """A DDI server that answers chunked and links `other-*` devices elsewhere: device
    `other-00001` is sent to another host for its deployment, `other-00002` to another port
    for its artifact."""

    protocol_version = "HTTP/1.1"
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(("GET", self.path, self.headers.get("Host")))
        host, port = self.server.server_address
        device = "http://%s:%d/DEFAULT/controller/v1/" % (host, port)
        if self.path.endswith("/other-00001"):
            document = {"config": {"polling": {"sleep": "00:00:01"}}, "_links": {
                "deploymentBase": {"href": "http://127.0.0.2:%d/DEFAULT/controller/v1/"
                                           "other-00001/deploymentBase/7?c=1" % port}}}
        elif self.path.endswith("/other-00002"):
            document = {"config": {"polling": {"sleep": "00:00:01"}}, "_links": {
                "deploymentBase": {"href": device + "other-00002/deploymentBase/8?c=1"}}}
        else:
            link = {"href": "http://%s:%d/fw.swu" % (host, live.free_port())}
            document = {"id": "8", "deployment": {"download": "forced", "update": "forced",
                        "chunks": [{"part": "os", "name": "fw", "version": "1", "artifacts": [
                            {"filename": "fw.swu", "size": 4, "hashes": {"sha256": "0" * 64},
                             "_links": {"download-http": link, "download": link}}]}]}}
        body = json.dumps(document).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in (body[:10], body[10:]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append(("POST", self.path, json.loads(body.decode("utf-8"))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def stand_in():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StandIn.requests = []
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_links_to_another_host_or_port_are_refused_not_followed(stand_in, capsys):
    code, summary, _ = simulate(capsys, stand_in, "--gateway-token", "any", "--prefix",
                                "other-", "--devices", "2", "--poll-interval", "0.2",
                                "--max-requests", "5")

    assert summary["errors"]["link to another host refused"] >= 2
    assert summary["non_2xx"] == {}
    closed = [document for method, path, document in StandIn.requests if method == "POST"]
    assert closed[0]["status"]["execution"] == "closed"
    assert closed[0]["status"]["result"]["finished"] == "failure"
    assert "no download link for fw.swu" in closed[0]["status"]["details"][0]
    assert {host for method, _, host in StandIn.requests if method == "GET"} == \
        {stand_in[len("http://"):]}
    assert summary["states"]["failed"] == 1 and summary["latency_ms"].get("download") is None


@pytest.mark.parametrize("words, message", [
    (["--devices", "0", "--gateway-token", "x"],
     "argument --devices: must be between 1 and 100000, not 0"),
    (["--failure-rate", "1.5", "--gateway-token", "x"],
     "argument --failure-rate: must be between 0 and 1, not 1.5"),
    (["--poll-interval", "0", "--gateway-token", "x"],
     "argument --poll-interval: must be more than 0 and at most 86400, not 0"),
    (["--duration", "soon", "--gateway-token", "x"],
     "argument --duration: must be a number, not 'soon'"),
    (["--download", "some", "--gateway-token", "x"], "argument --download: invalid choice"),
    ([], "one of the arguments --token-file --gateway-token --create-targets is required"),
    (["--gateway-token", "x", "--create-targets"],
     "argument --create-targets: not allowed with argument --gateway-token"),
])
def test_wrong_arguments_exit_2_with_the_reason(words, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        ddi_lite.main(["simulate", "--url", "http://127.0.0.1:1"] + words)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("url, words, message", [
    ("ftp://127.0.0.1:1", ["--gateway-token", "x"], "--url must look like http://HOST:PORT"),
    ("http://127.0.0.1:99999", ["--gateway-token", "x"], "--url must look like"),
    ("http://127.0.0.1:0", ["--gateway-token", "x"], "--url must look like"),
    ("http://127.0.0.1:1", ["--gateway-token", "x", "--range-size", "10"],
     "--range-size goes with --download ranges"),
    ("http://127.0.0.1:1", ["--gateway-token", "x", "--password", "p"],
     "--user and --password go with --create-targets"),
    ("http://127.0.0.1:1", ["--gateway-token", "two words"], "--gateway-token must be"),
    ("http://127.0.0.1:1", ["--gateway-token", "x", "--prefix", "a/b"], "--prefix may have"),
    ("http://127.0.0.1:1", ["--gateway-token", "x", "--tenant", "a/b"], "--tenant has"),
    ("http://127.0.0.1:1", ["--token-file", "/nonexistent/tokens"], "cannot read --token-file"),
    ("http://127.0.0.1:1", ["--create-targets"], "no password for admin"),
])
def test_inconsistent_arguments_exit_2_before_any_request(url, words, message, capsys):
    assert ddi_lite.main(["simulate", "--url", url] + words) == 2
    assert message in capsys.readouterr().err


def test_token_file_lines_are_checked(tmp_path, capsys):
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("dev-1 token-1\ndev-2\n")
    assert ddi_lite.main(["simulate", "--url", "http://127.0.0.1:1",
                          "--token-file", str(token_file)]) == 2
    assert "line 2: expected 'controllerId token'" in capsys.readouterr().err
    token_file.write_text("dev-1 token-1\n")
    assert ddi_lite.main(["simulate", "--url", "http://127.0.0.1:1", "--devices", "2",
                          "--token-file", str(token_file)]) == 2
    assert "--devices 2, but %s lists only 1" % token_file in capsys.readouterr().err


def test_the_command_line_reports_a_wrong_argument_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "ddi_lite", "simulate", "--url", "http://127.0.0.1:1",
         "--gateway-token", "x", "--max-requests", "-1"],
        env=live.clean_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --max-requests: must be between 1 and" in result.stderr


def test_an_unreachable_server_is_counted_and_exits_1(capsys):
    code, summary, _ = simulate(capsys, "http://127.0.0.1:%d" % live.free_port(),
                                "--gateway-token", "x", "--devices", "2",
                                "--poll-interval", "0.1", "--duration", "0.5")
    assert code == 1 and summary["answered"] == 0
    assert any(kind.startswith("connection failed") for kind in summary["errors"])
