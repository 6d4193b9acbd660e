"""rauc-hawkbit 0.2.0 (PyPI) as the device: its DDIClient against a live ddi-lite.

The client sends `Authorization: TargetToken` only (no gateway token), downloads without
Range (no resume), and its daemon always rejects a cancel; the tests cover what it does.
Every answer it gets must be exactly 200 with a JSON content type, or DDIClient raises.
"""

import hashlib
import os

import pytest

pytestmark = pytest.mark.usefixtures("rauc_hawkbit_installed")

TOKEN = "rauc-token"
ATTRIBUTES = {"MAC": "ff:ff:ff:ff:ff:ff", "hw_revision": "2"}


def links(document):
    return document.get("_links", {})


def bundle_set(operator, name, bundle):
    return operator.distribution(name, {name + ".raucb": bundle})


def test_first_contact_uploads_config_data_and_the_link_goes_away(server, rauc_device):
    operator = server.operator
    operator.add_target("rauc-hello", token=TOKEN)
    device = rauc_device("rauc-hello", TOKEN)

    base = device.poll()
    assert base["config"]["polling"]["sleep"] == "00:00:01"
    assert links(base)["configData"]["href"] == \
        "http://%s/DEFAULT/controller/v1/rauc-hello/configData" % server.host
    device.identify(ATTRIBUTES)

    assert operator.attributes("rauc-hello") == ATTRIBUTES
    target = operator.target("rauc-hello")
    assert target["requestAttributes"] is False
    assert target["updateStatus"] == "registered"
    assert "configData" not in links(device.poll())


def test_full_update_downloads_checks_md5_installs_and_reports(server, rauc_device):
    operator = server.operator
    operator.add_target("rauc-full", token=TOKEN)
    bundle = os.urandom(300 * 1024)
    set_id = bundle_set(operator, "rauc-full", bundle)
    action_id = operator.assign(set_id, "rauc-full")
    device = rauc_device("rauc-full", TOKEN)

    base = device.poll()
    assert "cancelAction" not in links(base)
    received_id, deployment = device.deployment(base)
    assert received_id == str(action_id)
    assert deployment["id"] == str(action_id)
    artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
    assert artifact["hashes"]["md5"] == hashlib.md5(bundle).hexdigest()
    assert operator.action("rauc-full", action_id)["status"] == "retrieved"

    assert device.download(deployment) is True
    device.install(received_id)

    installed = device.install_dir / "installed.raucb"
    assert installed.read_bytes() == bundle
    action = operator.action("rauc-full", action_id)
    assert (action["status"], action["active"]) == ("finished", False)
    entries = operator.statuses("rauc-full", action_id)
    assert [e["type"] for e in entries] == \
        ["running", "retrieved", "download", "running", "running", "finished"]
    assert entries[-1]["messages"] == ["Rauc bundle update completed with result: 0"]
    target = operator.target("rauc-full")
    assert target["updateStatus"] == "in_sync"
    assert operator.installed_set("rauc-full")["id"] == set_id

    # The next poll offers the installed set, never the deployment again (the daemon would
    # download and install it a second time).
    after = links(device.poll())
    assert "deploymentBase" not in after
    assert after["installedBase"]["href"].endswith(
        "/DEFAULT/controller/v1/rauc-full/installedBase/%d" % action_id)


def test_failed_installation_puts_action_and_target_in_error(server, rauc_device):
    operator = server.operator
    operator.add_target("rauc-fail", token=TOKEN)
    action_id = operator.assign(bundle_set(operator, "rauc-fail", b"broken bundle" * 100),
                                "rauc-fail")
    device = rauc_device("rauc-fail", TOKEN)
    received_id, deployment = device.deployment(device.poll())
    assert device.download(deployment) is True

    # RAUC's LastError arrives as proceeding/failure: informational, the action stays open.
    device.feedback(received_id, "proceeding", "failure", ["LastError: bundle rejected"])
    action = operator.action("rauc-fail", action_id)
    assert action["active"] is True
    assert action["status"] in ("running", "retrieved")
    last = operator.statuses("rauc-fail", action_id)[-1]
    assert (last["type"], last["messages"]) == ("running", ["LastError: bundle rejected"])
    assert operator.target("rauc-fail")["updateStatus"] == "pending"

    device.feedback(received_id, "closed", "failure",
                    ["Rauc bundle update completed with result: 1"])
    action = operator.action("rauc-fail", action_id)
    assert (action["status"], action["active"]) == ("error", False)
    assert operator.statuses("rauc-fail", action_id)[-1]["messages"] == \
        ["Rauc bundle update completed with result: 1"]
    assert operator.target("rauc-fail")["updateStatus"] == "error"
    assert "deploymentBase" not in links(device.poll())


def test_cancel_before_download_is_acknowledged(server, rauc_device):
    operator = server.operator
    operator.add_target("rauc-cancel", token=TOKEN)
    action_id = operator.assign(bundle_set(operator, "rauc-cancel", b"bundle" * 100),
                                "rauc-cancel")
    operator.cancel("rauc-cancel", action_id)
    device = rauc_device("rauc-cancel", TOKEN)

    base = device.poll()
    assert "deploymentBase" not in links(base)
    assert links(base)["cancelAction"]["href"].endswith(
        "/DEFAULT/controller/v1/rauc-cancel/cancelAction/%d" % action_id)
    received_id, stop_id = device.cancel(base, accept=True)
    assert received_id == str(action_id)
    assert str(stop_id) == str(action_id)

    action = operator.action("rauc-cancel", action_id)
    assert (action["status"], action["active"]) == ("canceled", False)
    last = operator.statuses("rauc-cancel", action_id)[-1]
    assert last["type"] == "canceled"
    assert "Action canceled." in last["messages"]
    assert not {"cancelAction", "deploymentBase"} & set(links(device.poll()))
    assert not (device.install_dir / "bundle.raucb").exists()


def test_cancel_rejected_puts_the_deployment_back(server, rauc_device):
    """What the rauc-hawkbit daemon always answers: rejected, "Cancelling not supported"."""
    operator = server.operator
    operator.add_target("rauc-reject", token=TOKEN)
    bundle = b"keep me" * 1000
    action_id = operator.assign(bundle_set(operator, "rauc-reject", bundle), "rauc-reject")
    operator.cancel("rauc-reject", action_id)
    device = rauc_device("rauc-reject", TOKEN)

    device.cancel(device.poll(), accept=False)

    action = operator.action("rauc-reject", action_id)
    assert action["active"] is True
    assert action["status"] not in ("canceling", "canceled")
    assert "Cancelling not supported" in operator.statuses("rauc-reject", action_id)[-1]["messages"]
    # The deployment is offered again and goes through.
    base = device.poll()
    assert "cancelAction" not in links(base)
    received_id, deployment = device.deployment(base)
    assert received_id == str(action_id)
    assert device.download(deployment) is True
    device.install(received_id)
    assert operator.action("rauc-reject", action_id)["status"] == "finished"
    assert (device.install_dir / "installed.raucb").read_bytes() == bundle


def test_wrong_token_is_refused_and_the_client_polls_again(server, rauc_device):
    from rauc_hawkbit.ddi.client import APIError

    operator = server.operator
    operator.add_target("rauc-token", token="the-right-token")
    device = rauc_device("rauc-token", "a-wrong-token")

    for _ in range(2):
        with pytest.raises(APIError, match="^401: "):
            device.poll()
    target = operator.target("rauc-token")
    assert "lastControllerRequestAt" not in target
    assert target["updateStatus"] == "unknown"

    # The daemon retries after an error; once the server has the device's token it gets in.
    operator.update_target("rauc-token", securityToken="a-wrong-token")
    base = device.poll()
    assert "configData" in links(base)
    assert "lastControllerRequestAt" in operator.target("rauc-token")
