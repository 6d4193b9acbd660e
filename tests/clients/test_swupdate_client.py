"""SWUpdate 2022.12 (Debian bookworm's `swupdate`, suricatta hawkBit module) as the device.

Every test runs the unmodified `swupdate` binary against a live ddi-lite, through a recording
proxy so that the test can see what SWUpdate sent. The images are signed .swu files built
here; their one payload is installed by the rawfile handler into the test's directory.
SWUpdate never exits on its own and never closes an action after installing: a restart with
`-c 2` (installed) or `-c 3` (failed) reports the outcome.
"""

import hashlib
import json
import os

import pytest

from live import wait_until
from .swu import build_swu
from .swupdate import REVISION

pytestmark = pytest.mark.usefixtures("swupdate_installed")

TOKEN = "swupdate-token"
ATTRIBUTES = {"serial": "0001", "hwRevision": REVISION}
TIMEOUT = 20


def polls(proxy, controller_id, since=0):
    """The base polls SWUpdate made (after position `since`), in order."""
    root = "/DEFAULT/controller/v1/" + controller_id
    return [e for e in proxy.requests("GET", since=since) if e.path == root]


def poll_links(exchange):
    return json.loads(exchange.response_body.decode("utf-8")).get("_links", {})


def status_messages(operator, controller_id, action_id):
    return [(entry["type"], message) for entry in operator.statuses(controller_id, action_id)
            for message in entry["messages"]]


def explain(server, device, recorder):
    """What to print when a wait times out: the client's log, its requests, the server's log."""
    return lambda: "\n".join((device.log(), recorder.dump(), server.log()))


def wait_for_message(server, controller_id, action_id, message, why, timeout=TIMEOUT):
    wait_until(lambda: any(text == message for _, text in
                           status_messages(server.operator, controller_id, action_id)),
               timeout, "status message %r on action %d" % (message, action_id),
               interval=0.1, on_timeout=why)


def image(signing_key, directory, payload, revisions=(REVISION,)):
    """A signed .swu writing `payload` to directory/installed/rootfs.img: (swu, path)."""
    target_file = directory / "installed" / "rootfs.img"
    target_file.parent.mkdir(parents=True, exist_ok=True)
    swu = build_swu(signing_key, directory / "build", "2.0", list(revisions),
                    [("rootfs.img", str(target_file), payload)])
    return swu, target_file


def deploy(server, signing_key, tmp_path, controller_id, payload, revisions=(REVISION,)):
    """Upload a .swu of `payload` as firmware-2.0.swu and assign it: (action id, set id,
    installed file path, swu bytes)."""
    swu, target_file = image(signing_key, tmp_path / controller_id, payload, revisions)
    set_id = server.operator.distribution("firmware-" + controller_id,
                                          {"firmware-2.0.swu": swu})
    return server.operator.assign(set_id, controller_id), set_id, target_file, swu


def first_boot(server, proxy, start_swupdate, signing_key, tmp_path, controller_id):
    """Target, assignment and a SWUpdate that installs it and reports "All Chunks Installed."
    The device is stopped afterwards, as a reboot would: (action id, set id, proxy)."""
    operator = server.operator
    operator.add_target(controller_id, token=TOKEN)
    payload = b"root filesystem 2.0\n" * 512
    action_id, set_id, target_file, _ = deploy(server, signing_key, tmp_path, controller_id,
                                               payload)
    recorder = proxy()
    device = start_swupdate("first-boot", recorder.url, controller_id, target_token=TOKEN)
    wait_for_message(server, controller_id, action_id, "All Chunks Installed.",
                     explain(server, device, recorder))
    assert target_file.read_bytes() == payload
    # Still open: SWUpdate waits for a restart to report, and the report is only sent if the
    # deploymentBase is still offered then. Its polls GET the deploymentBase again, which
    # hawkBit (and ddi-lite) records as "retrieved".
    mark = recorder.mark()
    recorder.wait_for(lambda seen: polls(recorder, controller_id, since=mark), TIMEOUT,
                      "a poll after the installation")
    assert "deploymentBase" in poll_links(polls(recorder, controller_id, since=mark)[0])
    device.stop()
    action = operator.action(controller_id, action_id)
    assert action["active"] is True
    assert action["status"] in ("running", "retrieved")
    return action_id, set_id, recorder


# --- first contact -------------------------------------------------------------------------

def test_first_contact_uploads_config_data_once_and_the_link_goes_away(
        server, proxy, start_swupdate):
    operator = server.operator
    operator.add_target("swu-hello", token=TOKEN)
    assert operator.target("swu-hello")["requestAttributes"] is True
    recorder = proxy()
    device = start_swupdate("hello", recorder.url, "swu-hello", target_token=TOKEN,
                            attributes=ATTRIBUTES)

    wait_until(lambda: operator.attributes("swu-hello"), TIMEOUT, "attributes of swu-hello",
               interval=0.1, on_timeout=explain(server, device, recorder))
    assert operator.attributes("swu-hello") == ATTRIBUTES
    target = operator.target("swu-hello")
    assert target["requestAttributes"] is False
    assert target["updateStatus"] == "registered"
    assert target["lastControllerRequestAt"] is not None

    # SWUpdate keeps polling; the link is gone, so it never sends configData again.
    mark = recorder.mark()
    recorder.wait_for(lambda seen: len(polls(recorder, "swu-hello", since=mark)) >= 3,
                      TIMEOUT, "three polls after configData")
    puts = recorder.requests("PUT")
    assert [(e.path, e.status) for e in puts] == \
        [("/DEFAULT/controller/v1/swu-hello/configData", 200)]
    put = puts[0]
    assert put.response_body == b""
    assert all("configData" not in poll_links(e)
               for e in polls(recorder, "swu-hello", since=mark))
    assert json.loads(put.body.decode("utf-8"))["data"] == ATTRIBUTES
    assert device.running()


# --- full update ---------------------------------------------------------------------------

def test_full_update_downloads_installs_and_reports_after_restart(
        server, proxy, start_swupdate, signing_key, tmp_path):
    operator = server.operator
    action_id, set_id, recorder = first_boot(server, proxy, start_swupdate, signing_key,
                                             tmp_path, "swu-full")

    # The download: HEAD for the size, then one plain GET of the whole .swu.
    downloads = recorder.requests(contains="/artifacts/firmware-2.0.swu")
    assert [(e.method, e.status) for e in downloads] == [("HEAD", 200), ("GET", 200)]
    assert "range" not in downloads[1].headers
    assert downloads[1].headers["authorization"] == "TargetToken " + TOKEN
    messages = status_messages(operator, "swu-full", action_id)
    assert ("running", "Installing Update Chunk Artifacts.") in messages
    assert ("running", "Installed Chunk.") in messages
    assert [kind for kind, _ in messages].count("download") == 1
    # Installed but not closed: the deploymentBase stays offered for the report.
    assert operator.target("swu-full")["updateStatus"] == "pending"

    # "Reboot": SWUpdate starts again and reports the installation as tested (-c 2).
    before_restart = recorder.mark()
    device = start_swupdate("second-boot", recorder.url, "swu-full", target_token=TOKEN,
                            confirm=2)
    action = operator.wait_for_action("swu-full", action_id, "finished", TIMEOUT,
                                      on_timeout=explain(server, device, recorder))
    assert action["active"] is False
    assert status_messages(operator, "swu-full", action_id)[-1] == \
        ("finished", "Update Installed.")
    target = operator.target("swu-full")
    assert target["updateStatus"] == "in_sync"
    assert target["installedAt"] is not None
    assert operator.installed_set("swu-full")["id"] == set_id

    # From now on the device is offered the installedBase, no deployment, no download.
    recorder.wait_for(
        lambda seen: any("installedBase" in poll_links(e)
                         for e in polls(recorder, "swu-full")[-3:]),
        TIMEOUT, "a poll offering installedBase")
    last_poll = polls(recorder, "swu-full")[-1]
    assert poll_links(last_poll)["installedBase"]["href"].endswith(
        "/DEFAULT/controller/v1/swu-full/installedBase/%d" % action_id)
    assert "deploymentBase" not in poll_links(last_poll)
    assert not recorder.requests(contains="/artifacts/", since=before_restart)
    assert device.running()


# --- failure reports -----------------------------------------------------------------------

def test_failed_update_reported_at_restart_puts_action_and_target_in_error(
        server, proxy, start_swupdate, signing_key, tmp_path):
    operator = server.operator
    action_id, _, recorder = first_boot(server, proxy, start_swupdate, signing_key, tmp_path,
                                        "swu-fail")

    device = start_swupdate("second-boot", recorder.url, "swu-fail", target_token=TOKEN,
                            confirm=3)
    action = operator.wait_for_action("swu-fail", action_id, "error", TIMEOUT,
                                      on_timeout=explain(server, device, recorder))
    assert action["active"] is False
    assert status_messages(operator, "swu-fail", action_id)[-1] == ("error", "Update Failed.")
    assert operator.target("swu-fail")["updateStatus"] == "error"
    report = recorder.requests("POST", "/deploymentBase/%d/feedback" % action_id)[-1]
    assert report.status == 200 and report.response_body == b""
    assert device.running()


def test_install_failure_is_reported_at_once(server, proxy, start_swupdate, signing_key,
                                             tmp_path):
    """An image for another hardware revision: SWUpdate downloads it, refuses to install it
    and closes the action as failed without a restart."""
    operator = server.operator
    operator.add_target("swu-wrong-hw", token=TOKEN)
    action_id, _, target_file, _ = deploy(server, signing_key, tmp_path, "swu-wrong-hw",
                                          b"not for this board\n", revisions=("9.9",))
    recorder = proxy()
    device = start_swupdate("wrong-hw", recorder.url, "swu-wrong-hw", target_token=TOKEN)

    operator.wait_for_action("swu-wrong-hw", action_id, "error", TIMEOUT,
                             on_timeout=explain(server, device, recorder))
    assert not target_file.exists()
    assert operator.target("swu-wrong-hw")["updateStatus"] == "error"
    closing = [json.loads(e.body.decode("utf-8"))["status"] for e in
               recorder.requests("POST", "/deploymentBase/%d/feedback" % action_id)
               if b'"closed"' in e.body]
    assert [(status["execution"], status["result"]["finished"]) for status in closing] == \
        [("closed", "failure")]
    # SWUpdate 2022.12 closes with a generic reason; the real one comes in its log lines,
    # which its logging thread posts either with the closing feedback (then kept with the
    # error) or after it (then kept as a late report): either way the action must show it.
    messages = status_messages(operator, "swu-wrong-hw", action_id)
    assert ("error", "No suitable .swu image found") in messages

    def reason_reported():
        return any("SW not compatible with hardware" in text for _, text in
                   status_messages(operator, "swu-wrong-hw", action_id))
    wait_until(reason_reported, TIMEOUT, "SWUpdate's log line with the reason",
               on_timeout=lambda: "%r\n%s" % (status_messages(operator, "swu-wrong-hw",
                                                               action_id),
                                                explain(server, device, recorder)()))
    assert device.running()


# --- cancel --------------------------------------------------------------------------------

def test_cancel_before_download_is_acknowledged(server, proxy, start_swupdate, signing_key,
                                                tmp_path):
    operator = server.operator
    operator.add_target("swu-cancel", token=TOKEN)
    action_id, _, target_file, _ = deploy(server, signing_key, tmp_path, "swu-cancel",
                                          b"never installed\n")
    operator.cancel("swu-cancel", action_id)
    assert operator.action("swu-cancel", action_id)["status"] == "canceling"
    recorder = proxy()
    device = start_swupdate("cancel", recorder.url, "swu-cancel", target_token=TOKEN)

    action = operator.wait_for_action("swu-cancel", action_id, "canceled", TIMEOUT,
                                      on_timeout=explain(server, device, recorder))
    assert action["active"] is False
    acknowledged = recorder.requests("POST", "/cancelAction/%d/feedback" % action_id)
    assert [e.status for e in acknowledged] == [200]
    body = json.loads(acknowledged[0].body.decode("utf-8"))
    assert (body["status"]["execution"], body["status"]["result"]["finished"]) == \
        ("closed", "success")
    assert recorder.requests("GET", "/cancelAction/%d" % action_id)[0].status == 200
    assert not recorder.requests(contains="/artifacts/")
    assert not recorder.requests(contains="/deploymentBase/")
    assert not target_file.exists()
    recorder.wait_for(lambda seen: "cancelAction" not in poll_links(
        polls(recorder, "swu-cancel")[-1]), TIMEOUT, "a poll without the cancelAction")
    assert device.running()


# --- interrupted download ------------------------------------------------------------------

def test_interrupted_download_is_resumed_with_a_range_request(
        server, proxy, start_swupdate, signing_key, tmp_path):
    operator = server.operator
    operator.add_target("swu-resume", token=TOKEN)
    payload = os.urandom(256 * 1024)
    action_id, _, target_file, swu = deploy(server, signing_key, tmp_path, "swu-resume",
                                            payload)
    cut_at = 64 * 1024 + 123
    recorder = proxy(cut_download_after=cut_at)
    device = start_swupdate("resume", recorder.url, "swu-resume", target_token=TOKEN)

    wait_for_message(server, "swu-resume", action_id, "All Chunks Installed.",
                     explain(server, device, recorder))
    assert hashlib.sha256(target_file.read_bytes()).digest() == hashlib.sha256(payload).digest()
    gets = recorder.requests("GET", "/artifacts/firmware-2.0.swu")
    assert [(e.status, e.cut) for e in gets] == [(200, True), (206, False)]
    assert gets[0].sent_body_bytes == cut_at
    assert gets[1].headers["range"] == "bytes=%d-" % cut_at
    assert gets[1].response_headers["content-range"] == \
        "bytes %d-%d/%d" % (cut_at, len(swu) - 1, len(swu))
    assert gets[1].sent_body_bytes == len(swu) - cut_at
    # The resumed range is not a second download in the action's history.
    kinds = [kind for kind, _ in status_messages(operator, "swu-resume", action_id)]
    assert kinds.count("download") == 1
    assert operator.action("swu-resume", action_id)["active"] is True


# --- authentication ------------------------------------------------------------------------

def test_gateway_token_registers_the_device_and_serves_its_update(
        server, proxy, start_swupdate, signing_key, tmp_path):
    operator = server.operator
    operator.set_config("authentication.gatewaytoken.enabled", True)
    operator.set_config("authentication.gatewaytoken.key", "gateway-secret")
    recorder = proxy()
    device = start_swupdate("gateway", recorder.url, "swu-gw", gateway_token="gateway-secret",
                            attributes=ATTRIBUTES)

    # Unknown to the server until its first poll, which registers it.
    wait_until(lambda: _attributes_or_none(operator, "swu-gw"), TIMEOUT,
               "swu-gw registering and sending configData", interval=0.1,
               on_timeout=explain(server, device, recorder))
    assert operator.attributes("swu-gw") == ATTRIBUTES
    payload = b"gateway delivered\n" * 64
    action_id, _, target_file, _ = deploy(server, signing_key, tmp_path, "swu-gw", payload)

    wait_for_message(server, "swu-gw", action_id, "All Chunks Installed.",
                     explain(server, device, recorder))
    assert target_file.read_bytes() == payload
    sent = {e.headers.get("authorization") for e in recorder.completed()}
    assert sent == {"GatewayToken gateway-secret"}
    assert all(e.status == 200 for e in recorder.completed())


def _attributes_or_none(operator, controller_id):
    try:
        return operator.attributes(controller_id)
    except Exception as error:  # 404 until the device has registered
        if getattr(error, "status", None) == 404:
            return None
        raise


def test_wrong_token_is_refused_and_the_device_keeps_polling(server, proxy, start_swupdate):
    operator = server.operator
    operator.add_target("swu-token", token="the-right-token")
    recorder = proxy()
    device = start_swupdate("wrong-token", recorder.url, "swu-token",
                            target_token="a-wrong-token", attributes=ATTRIBUTES)

    recorder.wait_for(lambda seen: len(polls(recorder, "swu-token")) >= 3, TIMEOUT,
                      "three polls with the wrong token")
    # Every request is refused, the start-up configData included (SWUpdate tries it again
    # after each refused poll).
    assert {e.status for e in recorder.completed()} == {401}
    target = operator.target("swu-token")
    assert "lastControllerRequestAt" not in target  # never polled, as far as the server knows
    assert target["updateStatus"] == "unknown"
    assert operator.attributes("swu-token") is None
    assert device.running()

    # The operator gives the target the token the device has: its next poll gets through.
    operator.update_target("swu-token", securityToken="a-wrong-token")
    wait_until(lambda: operator.attributes("swu-token"), TIMEOUT,
               "swu-token polling again and sending configData", interval=0.1,
               on_timeout=explain(server, device, recorder))
    assert operator.attributes("swu-token") == ATTRIBUTES
    assert operator.target("swu-token")["updateStatus"] == "registered"
    assert "lastControllerRequestAt" in operator.target("swu-token")
