"""[server] access_log: one line per request through the logger `ddi-lite.access` (method,
path, status, bytes, time, and who: the controller id or the operator); none when it is off;
never a token, a password or a query string."""

import base64
import json
import logging
import urllib.request

import pytest

import ddi_lite
import live
import storage
from conftest import DEVICE, Server, token

ACCESS = "ddi-lite.access"
PASSWORD = "s3cret-operator-password"
TARGET_TOKEN = "s3cret-target-token"
GATEWAY_TOKEN = "s3cret-gateway-token"


def access_config(tmp_path, on=True):
    return ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "data"), "server.trusted_proxies": "",
        "server.access_log": "true" if on else "false"})


@pytest.fixture
def logged_server(tmp_path):
    server = Server(access_config(tmp_path))
    server.configure(**{"authentication.targettoken.enabled": True})
    yield server
    storage.close_store()


def access_lines(caplog):
    return [record.getMessage() for record in caplog.records if record.name == ACCESS]


def test_a_device_poll_is_one_line_with_its_controller_id_and_status(logged_server, caplog):
    logged_server.target("dev-1", TARGET_TOKEN)
    caplog.set_level(logging.INFO, logger=ACCESS)
    response = logged_server.http.get(DEVICE + "/dev-1", headers=token(TARGET_TOKEN))
    [line] = access_lines(caplog)
    client, method, path, status, size, duration, who = line.split(" ")
    assert (client, method, path, status) == ("192.0.2.10", "GET", DEVICE + "/dev-1", "200")
    assert int(size) == len(response.body)
    assert duration.endswith("ms") and float(duration[:-2]) >= 0
    assert who == "controller=dev-1"


def test_a_refused_device_is_logged_with_the_id_it_claimed(logged_server, caplog):
    logged_server.target("dev-1", TARGET_TOKEN)
    caplog.set_level(logging.INFO, logger=ACCESS)
    logged_server.http.get(DEVICE + "/dev-1", headers=token("wrong"), status=401)
    [line] = access_lines(caplog)
    assert " 401 " in line and line.endswith(" controller=dev-1")


def test_an_operator_request_names_the_user(logged_server, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    logged_server.http.get("/rest/v1/targets", headers={
        "Authorization": "Basic " + base64.b64encode(b"admin:admin").decode("ascii")})
    [line] = access_lines(caplog)
    assert line.startswith("192.0.2.10 GET /rest/v1/targets 200 ") and line.endswith(" user=admin")


def test_no_line_when_the_setting_is_off(tmp_path, caplog):
    server = Server(access_config(tmp_path, on=False))
    try:
        server.configure(**{"authentication.targettoken.enabled": True})
        server.target("dev-1", TARGET_TOKEN)
        caplog.set_level(logging.DEBUG, logger="ddi-lite")
        server.http.get(DEVICE + "/dev-1", headers=token(TARGET_TOKEN))
        server.http.get("/no/such/path", status=404)
    finally:
        storage.close_store()
    assert access_lines(caplog) == []


def test_no_credential_token_or_query_string_is_ever_logged(logged_server, caplog):
    logged_server.configure(**{"authentication.gatewaytoken.enabled": True,
                               "authentication.gatewaytoken.key": GATEWAY_TOKEN})
    logged_server.target("dev-1", TARGET_TOKEN)
    basic = base64.b64encode(("admin:" + PASSWORD).encode("ascii")).decode("ascii")
    caplog.set_level(logging.DEBUG, logger="ddi-lite")
    logged_server.http.get(DEVICE + "/dev-1?token=" + TARGET_TOKEN, headers=token(TARGET_TOKEN))
    logged_server.http.get(DEVICE + "/dev-2", headers={
        "Authorization": "GatewayToken " + GATEWAY_TOKEN})
    logged_server.http.get("/rest/v1/targets?q=name==" + PASSWORD,
                           headers={"Authorization": "Basic " + basic}, status=401)
    lines = access_lines(caplog)
    assert len(lines) == 3
    everything = "\n".join(record.getMessage() for record in caplog.records
                           if record.name.startswith("ddi-lite"))
    for secret in (TARGET_TOKEN, GATEWAY_TOKEN, PASSWORD, basic, "token=", "?"):
        assert secret not in everything


def test_a_path_is_one_field_whatever_it_holds(logged_server, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    logged_server.http.get("/DEFAULT/controller/v1/a%20b%0Ac%22d", status=401)
    [line] = access_lines(caplog)
    assert line.split(" ")[2] == "/DEFAULT/controller/v1/a%20b%0Ac%22d"
    assert line.endswith(" controller=a%20b%0Ac%22d")


def test_a_real_server_writes_one_line_per_request_to_its_log(tmp_path):
    """Through logging to the process's stderr (what systemd's journal keeps), and a request
    with a body once, though the app is asked before its body (the 100 Continue question)."""
    server = live.DdiLite(tmp_path / "server", config_lines=["access_log = true"])
    try:
        live.api(server.url, "POST", "/targets",
                 [{"controllerId": "dev-1", "securityToken": TARGET_TOKEN}])
        body = json.dumps({"data": {"hw": "rev-2"}}).encode("utf-8")
        request = urllib.request.Request(
            server.url + DEVICE + "/dev-1/configData", data=body, method="PUT",
            headers={"Authorization": "TargetToken " + TARGET_TOKEN,
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        server.stop()
    lines = [line for line in server.log_path.read_text("utf-8").splitlines()
             if " ddi-lite.access " in line]
    assert [line.split(" ddi-lite.access ")[1].split(" ")[1:4] for line in lines] == [
        ["GET", "/", "200"],  # live.DdiLite waiting for the server to answer
        ["POST", "/rest/v1/targets", "201"],
        ["PUT", DEVICE + "/dev-1/configData", "200"]]
    assert lines[-1].endswith(" controller=dev-1")
    assert TARGET_TOKEN not in server.log_path.read_text("utf-8")
