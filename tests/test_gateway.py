"""Gateway mode with real processes: an upstream ddi-lite in normal mode (the stand-in for
hawkBit, a real DDI server) and a gateway ddi-lite relaying it, on loopback ports. Devices
are a small DDI loop in the test, speaking to the gateway only."""

import hashlib
import json
import os
import time
import urllib.error
import urllib.request

import pytest

import live
from client import commands

UPSTREAM_TOKEN = "upstream-gateway-key"
LOCAL_TOKEN = "local-gateway-key"
ARTIFACT = hashlib.sha256(b"gateway").digest() * 4096  # 128 KiB


def start_upstream(directory, port=None):
    server = live.DdiLite(directory, [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + UPSTREAM_TOKEN,
        "polling_time = 00:00:01"], port=port)
    return server


def start_gateway(directory, upstream_url, port=None, extra=()):
    return live.DdiLite(directory, [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + LOCAL_TOKEN,
        "[upstream]", "url = " + upstream_url, "gateway_token = " + UPSTREAM_TOKEN,
        "timeout = 2"] + list(extra), port=port)


@pytest.fixture
def servers(tmp_path):
    upstream = start_upstream(tmp_path / "upstream")
    gateway = None
    try:
        gateway = start_gateway(tmp_path / "gateway", upstream.url)
        yield upstream, gateway
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()


def ddi(base, method, path, document=None, token=LOCAL_TOKEN, raw=False):
    """One DDI request as a device: (status, parsed JSON or bytes)."""
    body = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(
        base + "/DEFAULT/controller/v1/" + path, data=body, method=method,
        headers={"Authorization": "GatewayToken " + token, "Accept": "application/json",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    if raw:
        return status, data
    return status, (json.loads(data.decode("utf-8")) if data else None)


def assign(url, tmp_path, name, controller_ids):
    """A set with one module holding ARTIFACT, assigned upstream to these (new) targets."""
    client = commands.ManagementClient(url, "admin", "admin")
    client.call("POST", "/targets", [{"controllerId": cid} for cid in controller_ids])
    module = client.call("POST", "/softwaremodules",
                         [{"name": name, "version": "1.0", "type": "os"}])[0]
    path = tmp_path / (name + ".swu")
    path.write_bytes(ARTIFACT)
    commands.upload_artifact(client, module["id"], str(path))
    distribution_set = client.call("POST", "/distributionsets", [
        {"name": name, "version": "1.0", "type": "os", "modules": [{"id": module["id"]}]}])[0]
    result = client.call("POST", "/distributionsets/%d/assignedTargets" % distribution_set["id"],
                         [{"id": cid} for cid in controller_ids])
    return {commands._controller_id_of(action): action["id"]
            for action in result["assignedActions"]}


def feedback(action_id, execution, finished="none", details=()):
    return {"id": str(action_id), "status": {"execution": execution, "details": list(details),
                                             "result": {"finished": finished}}}


def link_of(document, rel):
    return ((document or {}).get("_links") or {}).get(rel, {}).get("href")


def test_a_poll_is_relayed_with_links_pointing_at_the_gateway(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "relay", ["dev-1"])
    status, poll = live.wait_until(
        lambda: (lambda answer: answer if link_of(answer[1], "deploymentBase") else None)(
            ddi(gateway.url, "GET", "dev-1")), 10, "the deployment shown through the gateway")
    href = link_of(poll, "deploymentBase")
    assert status == 200 and href.startswith(gateway.url + "/DEFAULT/controller/v1/dev-1/")
    assert "/deploymentBase/%d" % actions["dev-1"] in href
    assert upstream.url not in json.dumps(poll)
    status, deployment = ddi(gateway.url, "GET", href[len(gateway.url + "/DEFAULT/controller/v1/"):])
    assert status == 200 and deployment["id"] == str(actions["dev-1"])
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    assert artifact["_links"]["download-http"]["href"].startswith(gateway.url + "/DEFAULT/")
    assert upstream.url not in json.dumps(deployment)
