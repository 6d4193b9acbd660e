"""SWUpdate (the client tier) installing through a gateway-mode ddi-lite: the device talks to
the gateway only (through a recording proxy that cuts the first download), the gateway relays
a second ddi-lite, the upstream, which sees the device's reports."""

import hashlib
import os

import pytest

from live import DdiLite, wait_until
from .proxy import RecordingProxy
from .test_swupdate_client import TIMEOUT, deploy, explain, status_messages

pytestmark = pytest.mark.usefixtures("swupdate_installed")

UPSTREAM_KEY = "upstream-gateway-key"
LOCAL_KEY = "local-gateway-key"


@pytest.fixture
def gateway(server, tmp_path):
    server.operator.set_config("authentication.gatewaytoken.enabled", True)
    server.operator.set_config("authentication.gatewaytoken.key", UPSTREAM_KEY)
    process = DdiLite(tmp_path / "gateway", [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + LOCAL_KEY,
        "[upstream]", "url = " + server.url, "gateway_token = " + UPSTREAM_KEY])
    yield process
    process.stop()


def test_swupdate_installs_through_the_gateway_and_resumes_a_cut_download(
        server, gateway, start_swupdate, signing_key, tmp_path):
    server.operator.add_target("swu-via-gw")
    payload = os.urandom(256 * 1024)
    action_id, _, target_file, swu = deploy(server, signing_key, tmp_path, "swu-via-gw",
                                            payload)
    cut_at = 64 * 1024 + 123
    recorder = RecordingProxy(gateway.port, cut_download_after=cut_at)
    try:
        device = start_swupdate("via-gateway", recorder.url, "swu-via-gw",
                                gateway_token=LOCAL_KEY)
        # The report goes device -> gateway outbox -> upstream.
        wait_until(lambda: ("running", "All Chunks Installed.") in status_messages(
            server.operator, "swu-via-gw", action_id), TIMEOUT,
            "All Chunks Installed. reaching upstream", interval=0.1,
            on_timeout=explain(server, device, recorder))
        assert hashlib.sha256(target_file.read_bytes()).digest() == \
            hashlib.sha256(payload).digest()
        gets = recorder.requests("GET", "/artifacts/firmware-2.0.swu")
        assert [(e.status, e.cut) for e in gets] == [(200, True), (206, False)]
        assert gets[1].headers["range"] == "bytes=%d-" % cut_at
        assert gets[1].sent_body_bytes == len(swu) - cut_at
        # Every request went to the gateway, never upstream, and each was answered 200/206.
        assert all(e.status in (200, 206) for e in recorder.completed())
    finally:
        recorder.close()
