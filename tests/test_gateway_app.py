"""Gateway mode at HTTP level, in-process (WebTest), with an upstream that never answers
(nothing listens on its port): what the gateway decides on its own. Everything that needs an
upstream is in test_gateway.py, with real processes."""

import pytest
import webtest

import ddi_lite
import storage
from ui import csrf, problem, sign_in

DEAD_UPSTREAM = "http://127.0.0.1:9"  # the discard port: connection refused


@pytest.fixture
def gateway(tmp_path):
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "data"), "server.trusted_proxies": "",
        "ddi.gateway_token_auth": "true", "ddi.gateway_token": "local-key",
        "upstream.url": DEAD_UPSTREAM, "upstream.timeout": "1"})
    http = webtest.TestApp(ddi_lite.create_app(config),
                           extra_environ={"REMOTE_ADDR": "192.0.2.10"})
    yield http
    storage.close_store()


DEVICE = {"Authorization": "GatewayToken local-key"}


def test_a_first_poll_while_upstream_is_unreachable_is_503_with_retry_after(gateway):
    answer = gateway.get("/DEFAULT/controller/v1/dev-1", headers=DEVICE, status=503)
    assert int(answer.headers["Retry-After"]) > 0


def test_a_device_without_the_gateways_credentials_is_401(gateway):
    gateway.get("/DEFAULT/controller/v1/dev-1", status=401)
    gateway.get("/DEFAULT/controller/v1/dev-1",
                headers={"Authorization": "GatewayToken wrong"}, status=401)
    gateway.get("/OTHER/controller/v1/dev-1", headers=DEVICE, status=401)


def test_a_report_is_queued_while_upstream_is_unreachable(gateway):
    gateway.put_json("/DEFAULT/controller/v1/dev-1/configData",
                     {"mode": "merge", "data": {"serial": "1"}}, headers=DEVICE, status=200)
    gateway.post_json("/DEFAULT/controller/v1/dev-1/deploymentBase/7/feedback",
                      {"status": {"execution": "proceeding", "result": {"finished": "none"}}},
                      headers=DEVICE, status=200)
    gateway.set_authorization(("Basic", ("admin", "admin")))
    status = gateway.get("/rest/v1/gateway").json
    assert status["outbox"]["depth"] == 2
    assert [item["resource"] for item in status["outbox"]["pending"]] == \
        ["/configData", "/deploymentBase/7/feedback"]
    assert status["upstream"]["url"] == DEAD_UPSTREAM


def test_an_installed_base_report_without_name_and_version_is_400_and_not_queued(gateway):
    answer = gateway.put_json("/DEFAULT/controller/v1/dev-1/installedBase", {"name": "os"},
                              headers=DEVICE, status=400)
    assert answer.json["errorCode"] == "hawkbit.server.error.rest.body.notReadable"
    gateway.set_authorization(("Basic", ("admin", "admin")))
    assert gateway.get("/rest/v1/gateway").json["outbox"]["depth"] == 0


def test_an_artifact_of_no_relayed_deployment_is_404(gateway):
    answer = gateway.get("/DEFAULT/controller/v1/dev-1/softwaremodules/1/artifacts/a.swu",
                         headers=DEVICE, status=404)
    assert answer.json["errorCode"] == "hawkbit.server.error.repo.entityNotFound"


def test_the_gateway_status_needs_an_operator_login(gateway):
    gateway.get("/rest/v1/gateway", status=401)
    gateway.get("/rest/v1/gateway/devices", status=401)


def test_the_consoles_gateway_page_shows_upstream_waiting_reports_and_the_cache(gateway):
    gateway.post_json("/DEFAULT/controller/v1/dev-7/deploymentBase/7/feedback",
                      {"status": {"execution": "proceeding", "result": {"finished": "none"}}},
                      headers=DEVICE, status=200)
    gateway.get("/ui/gateway", status=303)  # no session: to the sign-in
    assert sign_in(gateway).status_int == 303
    assert 'href="/ui/gateway"' in gateway.get("/ui").text
    page = gateway.get("/ui/gateway")
    upstream = page.html.find(id="upstream").get_text(" ", strip=True)
    assert DEAD_UPSTREAM in upstream and "not answering" in upstream
    outbox = page.html.find(id="outbox").get_text(" ", strip=True)
    assert "Reports waiting for upstream: 1" in outbox
    assert "dev-7" in outbox and "/deploymentBase/7/feedback" in outbox
    assert "Artifact cache: 0 bytes of 2.0 GiB" in page.html.find(id="cache").get_text(" ")


def test_a_server_that_is_no_gateway_has_no_gateway_page(server):
    assert sign_in(server.http).status_int == 303
    assert 'href="/ui/gateway"' not in server.http.get("/ui").text
    server.http.get("/ui/gateway", status=404)


def test_the_console_refuses_to_assign_or_create_rollouts_with_409(gateway):
    gateway.set_authorization(("Basic", ("admin", "admin")))
    gateway.post_json("/rest/v1/targets", [{"controllerId": "dev-1"}], status=201)
    gateway.authorization = None
    assert sign_in(gateway).status_int == 303
    token = csrf(gateway.get("/ui/targets/dev-1"))
    for path, form in (("/ui/targets/dev-1/assign", {"set": "1", "type": "forced"}),
                       ("/ui/rollouts", {"name": "r", "set": "1", "query": "id==*"})):
        page = gateway.post(path, dict(form, csrf=token), status=409)
        assert "follows its upstream server" in problem(page)


def test_gateway_mode_needs_a_single_worker_process(tmp_path):
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "data"), "server.workers": "2",
        "upstream.url": DEAD_UPSTREAM})
    with pytest.raises(ddi_lite.ConfigError, match="workers must be 1"):
        ddi_lite.create_app(config)
    storage.close_store()


@pytest.mark.parametrize("url, same", [
    ("https://hawkbit.example/DEFAULT/controller/v1/a", True),
    ("https://HAWKBIT.example:443/x", True),
    ("http://hawkbit.example/x", False),
    ("https://hawkbit.example:8443/x", False),
    ("https://cdn.example/hawkbit.example/x", False),
])
def test_credentials_go_only_to_upstream_itself(url, same):
    from gateway.upstream import Upstream
    assert Upstream("https://hawkbit.example", "DEFAULT").is_upstream(url) is same


def test_artifact_links_to_a_download_server_are_pointed_at_the_gateway():
    from gateway import relay
    device_url = "http://gw:8080/DEFAULT/controller/v1/dev-1"
    document = {"deployment": {"chunks": [{"artifacts": [{"filename": "os image.swu", "_links": {
        "download": {"href": "https://cdn.example/files/abc?sig=1"},
        "md5sum-http": {"href": "http://cdn.example/files/abc.MD5SUM"}}}]}, {"artifacts": [
            {"filename": "app.bin", "_links": {"download-http": {
                "href": device_url + "/softwaremodules/7/artifacts/app.bin"}}}]}]}}
    chunks = relay._artifacts_at_gateway(document, device_url)["deployment"]["chunks"]
    links = chunks[0]["artifacts"][0]["_links"]
    assert links["download"]["href"] == \
        device_url + "/softwaremodules/chunk-0/artifacts/os%20image.swu"
    assert links["md5sum-http"]["href"] == \
        device_url + "/softwaremodules/chunk-0/artifacts/os%20image.swu.MD5SUM"
    assert chunks[1]["artifacts"][0]["_links"]["download-http"]["href"] == \
        device_url + "/softwaremodules/7/artifacts/app.bin"


def test_the_api_description_answers_in_gateway_mode_with_the_gateways_routes(gateway):
    paths = gateway.get("/v3/api-docs").json["paths"]
    assert {"/{tenant}/controller/v1/{controllerId}", "/rest/v1/gateway",
            "/rest/v1/gateway/devices"} <= set(paths)
