"""Gateway mode with real processes: an upstream ddi-lite in normal mode (the stand-in for
hawkBit, a real DDI server) and a gateway ddi-lite relaying it, on loopback ports. Devices
are a small DDI loop in the test, speaking to the gateway only."""

import hashlib
import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

import database
import ddi_lite
import live
from client import commands

UPSTREAM_TOKEN = "upstream-gateway-key"
LOCAL_TOKEN = "local-gateway-key"
ARTIFACT = hashlib.sha256(b"gateway").digest() * 4096  # 128 KiB
ROOT_ROUTE = "/<tenant>/controller/v1/<controller_id>"
DOWNLOAD_ROUTE = ROOT_ROUTE + "/softwaremodules/<module_id>/artifacts/<filename>"


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


def ddi(base, method, path, document=None, token=LOCAL_TOKEN, raw=False,
        scheme="GatewayToken"):
    """One DDI request as a device: (status, parsed JSON or bytes)."""
    body = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(
        base + "/DEFAULT/controller/v1/" + path, data=body, method=method,
        headers={"Authorization": scheme + " " + token, "Accept": "application/json",
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    if raw:
        return status, data
    return status, (json.loads(data.decode("utf-8")) if data else None)


def assign(url, tmp_path, name, controller_ids, content=ARTIFACT):
    """A set with one module holding `content`, assigned upstream to these (new) targets."""
    client = commands.ManagementClient(url, "admin", "admin")
    client.call("POST", "/targets", [{"controllerId": cid} for cid in controller_ids])
    module = client.call("POST", "/softwaremodules",
                         [{"name": name, "version": "1.0", "type": "os"}])[0]
    path = tmp_path / (name + ".swu")
    path.write_bytes(content)
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



def install(gateway, controller_id, action_id):
    """A device's whole update through the gateway: deployment, download (checked), report."""
    path = deployment_shown(gateway, controller_id)
    deployment = ddi(gateway.url, "GET", path)[1]
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    href = artifact["_links"]["download-http"]["href"]
    assert href.startswith(gateway.url + "/DEFAULT/controller/v1/%s/" % controller_id)
    status, data = ddi(gateway.url, "GET", href.split("/controller/v1/", 1)[1], raw=True)
    assert status == 200 and hashlib.sha1(data).hexdigest() == artifact["hashes"]["sha1"]
    assert ddi(gateway.url, "POST", path + "/feedback",
               feedback(action_id, "closed", "success", ["installed"]))[0] == 200
    return data


def test_devices_install_through_the_gateway_and_upstream_serves_the_artifact_once(
        servers, tmp_path, capsys):
    upstream, gateway = servers
    devices = ["fleet-%d" % n for n in range(5)]
    actions = assign(upstream.url, tmp_path, "once", devices)
    for cid in devices:
        assert install(gateway, cid, actions[cid]) == ARTIFACT
    for cid in devices:
        live.wait_until(lambda: live.api(upstream.url, "GET", "/targets/%s/actions/%d"
                                         % (cid, actions[cid]))["status"] == "finished",
                        15, "the report of %s upstream" % cid)
    assert requests_counted(upstream, "GET", DOWNLOAD_ROUTE) == 1
    cache = live.api(gateway.url, "GET", "/gateway")["cache"]
    assert cache["bytes_from_upstream"] == len(ARTIFACT)
    assert cache["bytes_served"] == 5 * len(ARTIFACT)
    figures = gauges(gateway)
    assert figures["ddi_lite_gateway_bytes_saved"] == 4 * len(ARTIFACT)
    assert figures["ddi_lite_gateway_outbox_depth"] == 0
    assert figures["ddi_lite_gateway_cache_hit_ratio"] > 0.5
    assert figures["ddi_lite_gateway_upstream_requests"] > 0
    # The command line shows the same to an operator.
    assert ddi_lite.main(["gateway", "--url", gateway.url, "--user", "admin",
                          "--password", "admin"]) == 0
    shown = capsys.readouterr().out
    assert "in 1 artifacts" in shown and "0 waiting" in shown
    assert hashlib.sha1(ARTIFACT).hexdigest() in shown


def test_operators_see_relayed_devices_and_their_current_actions(servers, tmp_path, capsys):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "seen", ["dev-1"])
    deployment_shown(gateway, "dev-1")
    assert live.api(gateway.url, "GET", "/targets/dev-1")["controllerId"] == "dev-1"
    relayed = live.api(gateway.url, "GET", "/targets/dev-1/actions")["content"]
    assert [(a["id"], a["status"], a["forceType"]) for a in relayed] == \
        [(actions["dev-1"], "running", "forced")]
    assert live.api(gateway.url, "GET", "/targets/dev-1/actions/%d" % actions["dev-1"])["id"] \
        == actions["dev-1"]
    assert ddi_lite.main(["actions", "dev-1", "--url", gateway.url, "--user", "admin",
                          "--password", "admin"]) == 0
    assert "%d  running  update  forced" % actions["dev-1"] in capsys.readouterr().out
    devices = live.api(gateway.url, "GET", "/gateway/devices")["content"]
    assert [d["controllerId"] for d in devices] == ["dev-1"]
    assert devices[0]["currentActions"] == ["deploymentBase/%d" % actions["dev-1"]]


def metrics_text(server):
    request = urllib.request.Request(server.url + "/metrics", headers={"Authorization": live.ADMIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode("utf-8")


def gauges(server):
    """The server's unlabelled metrics: name -> value."""
    return {name: float(value) for name, _, value in (
        line.partition(" ") for line in metrics_text(server).splitlines()
        if line and not line.startswith("#") and "{" not in line)}


def requests_counted(server, method, route, status="2xx"):
    """How many requests a server answered on this route (its /metrics)."""
    text = metrics_text(server)
    pattern = 'ddi_lite_http_requests_total{method="%s",route="%s",status="%s"} ' % (
        method, route, status)
    return sum(int(line[len(pattern):]) for line in text.splitlines()
               if line.startswith(pattern))


def deployment_shown(gateway, controller_id):
    """Poll the gateway until the device's deployment shows: its path under the device."""
    status, poll = live.wait_until(
        lambda: (lambda answer: answer if link_of(answer[1], "deploymentBase") else None)(
            ddi(gateway.url, "GET", controller_id)), 15, "the deployment shown via the gateway")
    return link_of(poll, "deploymentBase").split("/controller/v1/", 1)[1].split("?")[0]


def status_history(upstream, controller_id, action_id):
    """The upstream action's status entries, oldest first: (type, messages)."""
    entries = live.api(upstream.url, "GET", "/targets/%s/actions/%d/status?limit=100&sort=id:ASC"
                       % (controller_id, action_id))["content"]
    return [(entry["type"], entry.get("messages", [])) for entry in entries]


def test_polls_reach_upstream_once_per_sleep_however_often_the_device_polls(servers):
    upstream, gateway = servers
    live.api(upstream.url, "PUT", "/system/configs/pollingTime", {"value": "00:00:05"})
    ddi(gateway.url, "GET", "often-1")  # the first poll asks upstream and learns the sleep
    before = requests_counted(upstream, "GET", ROOT_ROUTE)
    answers = [ddi(gateway.url, "GET", "often-1") for _ in range(40)]
    assert all(status == 200 for status, _ in answers)
    assert answers[-1][1]["config"]["polling"]["sleep"] == "00:00:05"
    assert requests_counted(upstream, "GET", ROOT_ROUTE) - before <= 1


def test_feedback_reaches_upstream_in_order_and_closes_the_action(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "close", ["dev-1"])
    path = deployment_shown(gateway, "dev-1")
    assert ddi(gateway.url, "GET", path)[0] == 200
    action_path = "dev-1/deploymentBase/%d/feedback" % actions["dev-1"]
    # The answer to "installing" is lost, and the device sends the same report again.
    for step in ("downloading", "installing", "installing"):
        assert ddi(gateway.url, "POST", action_path,
                   feedback(actions["dev-1"], "proceeding", details=[step]))[0] == 200
    closing = feedback(actions["dev-1"], "closed", "success", ["done"])
    assert ddi(gateway.url, "POST", action_path, closing)[0] == 200
    live.wait_until(lambda: live.api(upstream.url, "GET", "/targets/dev-1/actions/%d"
                                     % actions["dev-1"])["status"] == "finished",
                    15, "the action closed upstream")
    history = [messages for kind, messages in status_history(upstream, "dev-1",
                                                             actions["dev-1"])]
    reported = [m for m in history if m and m[-1] in ("downloading", "installing", "done")]
    assert [m[-1] for m in reported] == ["downloading", "installing", "done"]
    live.wait_until(lambda: link_of(ddi(gateway.url, "GET", "dev-1")[1], "deploymentBase")
                    is None, 10, "the closed action gone from the device's poll")


def test_a_closed_action_is_not_offered_again_while_its_report_waits(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "hidden", ["dev-1"])
    path = deployment_shown(gateway, "dev-1")
    upstream.stop()
    assert ddi(gateway.url, "POST", path + "/feedback",
               feedback(actions["dev-1"], "closed", "success"))[0] == 200
    status, poll = ddi(gateway.url, "GET", "dev-1")
    assert status == 200 and link_of(poll, "deploymentBase") is None


def test_a_report_upstream_would_refuse_is_a_400_and_never_queued(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "bad", ["dev-1"])
    path = deployment_shown(gateway, "dev-1")
    upstream.stop()
    for document in ({"status": {"execution": "exploded", "result": {"finished": "none"}}},
                     {"status": {"execution": "closed"}}, ["not", "an", "object"]):
        status, body = ddi(gateway.url, "POST", path + "/feedback", document)
        assert status == 400 and body["errorCode"] == "hawkbit.server.error.rest.body.notReadable"
    status, _ = ddi(gateway.url, "POST", "dev-1/deploymentBase/x1/feedback",
                    feedback(actions["dev-1"], "proceeding"))
    assert status == 400
    assert live.api(gateway.url, "GET", "/gateway")["outbox"]["depth"] == 0


def test_a_cancel_is_relayed_and_its_confirmation_closes_it_upstream(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "cancelled", ["dev-1"])
    deployment_shown(gateway, "dev-1")
    live.api(upstream.url, "DELETE", "/targets/dev-1/actions/%d" % actions["dev-1"])
    status, poll = live.wait_until(
        lambda: (lambda answer: answer if link_of(answer[1], "cancelAction") else None)(
            ddi(gateway.url, "GET", "dev-1")), 15, "the cancel shown via the gateway")
    path = link_of(poll, "cancelAction").split("/controller/v1/", 1)[1].split("?")[0]
    status, cancel = ddi(gateway.url, "GET", path)
    assert status == 200 and cancel["cancelAction"]["stopId"] == str(actions["dev-1"])
    assert ddi(gateway.url, "POST", path + "/feedback",
               feedback(actions["dev-1"], "closed", "success"))[0] == 200
    live.wait_until(lambda: live.api(upstream.url, "GET", "/targets/dev-1/actions/%d"
                                     % actions["dev-1"])["status"] == "canceled",
                    15, "the action cancelled upstream")


def test_a_device_cannot_reach_another_devices_artifact_or_poll(servers, tmp_path):
    upstream, gateway = servers
    assign(upstream.url, tmp_path, "mine", ["dev-1"])
    path = deployment_shown(gateway, "dev-1")
    deployment = ddi(gateway.url, "GET", path)[1]
    href = deployment["deployment"]["chunks"][0]["artifacts"][0]["_links"]["download-http"]["href"]
    other = href.replace("/controller/v1/dev-1/", "/controller/v1/dev-2/")
    ddi(gateway.url, "GET", "dev-2")
    status, body = ddi(gateway.url, "GET", other.split("/controller/v1/", 1)[1])
    assert status == 404 and body["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert ddi(gateway.url, "GET", "dev-1", token="wrong")[0] == 401


def test_upstream_down_polls_keep_working_and_queued_reports_survive_kill_9(servers, tmp_path):
    upstream, gateway = servers
    actions = assign(upstream.url, tmp_path, "outage", ["dev-1", "dev-2"])
    paths = {cid: deployment_shown(gateway, cid) for cid in ("dev-1", "dev-2")}
    live.wait_until(lambda: [entry["complete"] for entry in live.api(
        gateway.url, "GET", "/gateway")["cache"]["contents"]] == [True], 10,
        "the artifact cached while upstream is up")
    upstream.stop()
    for cid in ("dev-1", "dev-2"):
        status, poll = ddi(gateway.url, "GET", cid)
        assert status == 200 and link_of(poll, "deploymentBase")
        status, deployment = ddi(gateway.url, "GET", paths[cid])
        assert status == 200
        href = deployment["deployment"]["chunks"][0]["artifacts"][0]["_links"]["download"]
        status, data = ddi(gateway.url, "GET", href["href"].split("/controller/v1/", 1)[1],
                           raw=True)
        assert (status, data) == (200, ARTIFACT)
        for step in ("one", "two", "three"):
            assert ddi(gateway.url, "POST", paths[cid] + "/feedback",
                       feedback(actions[cid], "proceeding", details=[step]))[0] == 200
        assert ddi(gateway.url, "POST", paths[cid] + "/feedback",
                   feedback(actions[cid], "closed", "success", ["done"]))[0] == 200
    status = live.api(gateway.url, "GET", "/gateway")
    assert status["outbox"]["depth"] == 8 and status["upstream"]["lastError"]
    assert gauges(gateway)["ddi_lite_gateway_outbox_depth"] == 8
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(5)
    upstream = start_upstream(upstream.directory, port=upstream.port)
    try:
        gateway = start_gateway(gateway.directory, upstream.url, port=gateway.port)
        for cid in ("dev-1", "dev-2"):
            live.wait_until(lambda: live.api(upstream.url, "GET", "/targets/%s/actions/%d"
                                             % (cid, actions[cid]))["status"] == "finished",
                            20, "the queued reports of %s delivered" % cid)
            reported = [messages[-1] for _, messages in status_history(
                upstream, cid, actions[cid]) if messages and messages[-1] in
                ("one", "two", "three", "done")]
            assert reported == ["one", "two", "three", "done"]
        assert live.api(gateway.url, "GET", "/gateway")["outbox"]["depth"] == 0
    finally:
        gateway.stop()
        upstream.stop()


def test_a_stopped_upstream_never_holds_a_known_devices_poll(servers):
    upstream, gateway = servers
    live.api(upstream.url, "PUT", "/system/configs/pollingTime", {"value": "00:00:01"})
    assert ddi(gateway.url, "GET", "slow-1")[0] == 200
    upstream.process.send_signal(signal.SIGSTOP)  # connects, then never answers
    try:
        time.sleep(1.1)  # the device's answer is due for a refresh
        seconds = []
        for _ in range(4):
            started = time.monotonic()
            assert ddi(gateway.url, "GET", "slow-1")[0] == 200
            seconds.append(time.monotonic() - started)
        # The poll that asked upstream waits a moment for it; the polls behind it do not.
        assert seconds[0] < 1.0 and max(seconds[1:]) < 0.3, seconds
    finally:
        upstream.process.send_signal(signal.SIGCONT)


def upstream_errors(gateway):
    return live.api(gateway.url, "GET", "/gateway")["upstream"]["errors"]


def test_a_dead_upstream_is_not_asked_once_per_poll(servers):
    upstream, gateway = servers
    assert ddi(gateway.url, "GET", "dead-1")[0] == 200
    upstream.stop()  # connections are refused at once
    time.sleep(1.1)  # the device's answer (sleep 1 s upstream) is due for a refresh
    before = upstream_errors(gateway)
    for _ in range(40):
        assert ddi(gateway.url, "GET", "dead-1")[0] == 200
    # One probe, then the back-off (0.5 s, doubling) holds the rest: 40 polls in well under
    # a second make at most two upstream attempts, not forty.
    assert upstream_errors(gateway) - before <= 2


def test_writes_that_would_conflict_with_upstream_answer_409(servers):
    upstream, gateway = servers
    for path, document in (("/targets/dev-1/assignedDS", [{"id": 1}]),
                           ("/distributionsets/1/assignedTargets", [{"id": "dev-1"}]),
                           ("/rollouts", {"name": "r"})):
        with pytest.raises(urllib.error.HTTPError) as refused:
            live.api(gateway.url, "POST", path, document)
        assert refused.value.code == 409
        body = json.loads(refused.value.read().decode("utf-8"))
        assert "follows its upstream" in body["message"]
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(gateway.url + "/rest/v1/gateway", timeout=5)
    assert anonymous.value.code == 401


def test_pass_through_asks_upstream_and_serves_known_devices_while_it_is_down(tmp_path):
    upstream = start_upstream(tmp_path / "upstream")
    gateway = None
    try:
        live.api(upstream.url, "POST", "/targets",
                 [{"controllerId": "pt-1", "securityToken": "token-pt-1"}])
        gateway = start_gateway(tmp_path / "gateway", upstream.url,
                                extra=["auth = pass_through"])

        def poll(token):
            request = urllib.request.Request(
                gateway.url + "/DEFAULT/controller/v1/pt-1",
                headers={"Authorization": "TargetToken " + token})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code
        assert poll("wrong") == 401
        assert poll("token-pt-1") == 200
        upstream.stop()
        assert poll("token-pt-1") == 200
        assert poll("wrong") == 503
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()


# The size: 200 devices and a 50 MB artifact (10 GB through loopback, about 50 s on 2
# cores). The run on PostgreSQL ("Run the tests") keeps the 200 devices and takes 5 MiB: the
# bytes never touch the database, and the first run has already moved the full size.
FLEET_DEVICES = int(os.environ.get("GATEWAY_FLEET_DEVICES", "200"))
FLEET_ARTIFACT_MIB = int(os.environ.get("GATEWAY_FLEET_ARTIFACT_MIB",
                                        "5" if database.ON_POSTGRES else "50"))


def test_a_simulated_fleet_installs_through_the_gateway_with_one_upstream_download(
        servers, tmp_path, capsys):
    upstream, gateway = servers
    content = hashlib.sha256(b"fleet").digest() * (FLEET_ARTIFACT_MIB << 15)
    devices = ["sim-%05d" % n for n in range(1, FLEET_DEVICES + 1)]
    actions = assign(upstream.url, tmp_path, "fleet", devices, content)
    code = ddi_lite.main(["simulate", "--url", gateway.url, "--json", "--gateway-token",
                          LOCAL_TOKEN, "--devices", str(FLEET_DEVICES), "--prefix", "sim-",
                          "--poll-interval", "1", "--stop-when-done", "--duration", "300"])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert (code, summary["stopped"]) == (0, "done"), err
    assert summary["outcomes"] == {"success": FLEET_DEVICES}
    assert summary["bytes_downloaded"] == FLEET_DEVICES * len(content)
    assert summary["errors"] == {} and summary["non_2xx"] == {}
    assert requests_counted(upstream, "GET", DOWNLOAD_ROUTE) == 1

    def finished():
        listed = live.api(upstream.url, "GET", "/actions?limit=500&q=status==finished")
        return {action["id"] for action in listed["content"]} >= set(actions.values())
    live.wait_until(finished, 60, "every report closing its action upstream")


def test_pass_through_a_revoked_token_holds_up_only_its_own_devices_reports(tmp_path):
    upstream = start_upstream(tmp_path / "upstream")
    gateway = None
    try:
        actions = assign(upstream.url, tmp_path, "revoked", ["pt-1", "pt-2"])
        for cid in ("pt-1", "pt-2"):
            live.api(upstream.url, "PUT", "/targets/" + cid, {"securityToken": "token-" + cid})
        gateway = start_gateway(tmp_path / "gateway", upstream.url,
                                extra=["auth = pass_through"])
        paths = {}
        for cid in ("pt-1", "pt-2"):
            status, poll = live.wait_until(
                lambda: (lambda answer: answer if link_of(answer[1], "deploymentBase")
                         else None)(ddi(gateway.url, "GET", cid, token="token-" + cid,
                                        scheme="TargetToken")),
                15, "the deployment of %s" % cid)
            paths[cid] = link_of(poll, "deploymentBase").split(
                "/controller/v1/", 1)[1].split("?")[0]
        live.api(upstream.url, "PUT", "/targets/pt-1", {"securityToken": "replaced"})
        for cid in ("pt-1", "pt-2"):  # pt-1's token is still the one the gateway knows
            assert ddi(gateway.url, "POST", paths[cid] + "/feedback",
                       feedback(actions[cid], "closed", "success"), token="token-" + cid,
                       scheme="TargetToken")[0] == 200
        live.wait_until(lambda: live.api(upstream.url, "GET", "/targets/pt-2/actions/%d"
                                         % actions["pt-2"])["status"] == "finished",
                        15, "pt-2's report delivered")
        assert live.api(upstream.url, "GET", "/targets/pt-1/actions/%d"
                        % actions["pt-1"])["status"] != "finished"
        outbox = live.api(gateway.url, "GET", "/gateway")["outbox"]
        assert [item["controllerId"] for item in outbox["pending"]] == ["pt-1"]
        assert "401" in outbox["pending"][0]["lastError"]
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()
