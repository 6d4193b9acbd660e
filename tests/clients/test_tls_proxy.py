"""ddi-lite behind nginx terminating TLS, set up as README's "Behind a TLS reverse proxy" says.

Real devices complete updates over https: SWUpdate and rauc-hawkbit, each with a TargetToken
(plain TLS) and with a client certificate that nginx verifies and turns into hawkBit's
certificate headers (mTLS). Every link ddi-lite hands out must lead back to https on nginx's
port. The path of a request: device -> nginx (127.0.0.1, TLS) -> recording proxy -> ddi-lite,
which trusts 127.0.0.1 as README's config.ini says; the recorder sees what ddi-lite answered.
A request straight to ddi-lite from 127.0.0.2 plays a peer that is not trusted.
"""

import http.client
import json
import re
import shutil
import ssl

import pytest

from live import PROJECT_DIR, DdiLite
from . import nginx
from .conftest import missing, serving
from .proxy import RecordingProxy
from .rauc import RaucDevice
from .test_swupdate_client import deploy, status_messages, wait_for_message

TOKEN = "device-token"
TIMEOUT = 20
UNTRUSTED_PEER = "127.0.0.2"
# README's example values, from which README's nginx site and config.ini are rendered.
README_AUTHORITY = "5f3a9c1e"
README_SITE = dict(listen=["443", "[::]:443"], server_name="updates.example.org",
                   certificate="/etc/ddi-lite/tls/server.crt",
                   certificate_key="/etc/ddi-lite/tls/server.key",
                   devices_ca="/etc/ddi-lite/tls/devices-ca.crt",
                   authority=README_AUTHORITY, upstream="127.0.0.1:8080")


def production_settings(authority):
    """README's config.ini for ddi-lite behind nginx on the same machine."""
    return ("[server]\nhost = 127.0.0.1\nport = 8080\ntrusted_proxies = 127.0.0.1, ::1\n\n"
            "[ddi]\nheader_auth = true\nheader_authority = %s\n" % authority)


@pytest.fixture(scope="session")
def nginx_installed():
    if nginx.binary() is None:
        missing("nginx is not installed: needs the Debian package 'nginx' (apt-get install nginx)")
    if shutil.which("openssl") is None:
        missing("openssl is not installed: needs the Debian package 'openssl' for the test "
                "certificates (apt-get install openssl)")


@pytest.fixture(scope="session")
def pki(tmp_path_factory, nginx_installed):
    return nginx.Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(tmp_path, pki):
    """ddi-lite with README's settings (host and port come from the test's flags)."""
    settings = production_settings(pki.issuer_hash)
    # DdiLite's file already opens with [server]; the rest of README's file follows it.
    lines = [line for line in settings.splitlines()[1:] if not line.startswith(("host", "port"))]
    with serving(DdiLite(tmp_path / "server", config_lines=lines)) as running:
        yield running


class TlsProxy:
    """nginx in front of a recording proxy in front of ddi-lite."""

    def __init__(self, directory, pki, server):
        self.recorder = RecordingProxy(server.port)
        try:
            self.nginx = nginx.Nginx(directory, pki, self.recorder.port)
        except BaseException:
            self.recorder.close()
            raise
        self.url, self.port = self.nginx.url, self.nginx.port

    def links(self):
        """Every href in the JSON ddi-lite answered through the proxy."""
        found = []
        for exchange in self.recorder.completed():
            if "json" in exchange.response_headers.get("content-type", ""):
                found += hrefs(json.loads(exchange.response_body.decode("utf-8")))
        return found

    def close(self):
        try:
            self.nginx.stop()
        finally:
            self.recorder.close()


@pytest.fixture
def tls_proxy(tmp_path, pki, server):
    proxy = TlsProxy(tmp_path / "nginx", pki, server)
    yield proxy
    proxy.close()


def hrefs(document):
    """Every `href` value anywhere in a JSON document."""
    if isinstance(document, dict):
        own = [document["href"]] if isinstance(document.get("href"), str) else []
        return own + [href for value in document.values() for href in hrefs(value)]
    if isinstance(document, list):
        return [href for value in document for href in hrefs(value)]
    return []


def assert_all_https_on(port, links, kinds=("deploymentBase/", "/artifacts/")):
    """Every link leads to https on nginx's port, and the update's links are among them."""
    assert links
    wrong = [link for link in links if not link.startswith("https://127.0.0.1:%d/" % port)]
    assert not wrong, wrong
    for kind in kinds:
        assert any(kind in link for link in links), (kind, links)


def client_context(pki, controller_id=None):
    """What a device trusts (the test CA), and its certificate for mTLS."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if controller_id is not None:
        certificate, key = pki.client(controller_id)
        context.load_cert_chain(str(certificate), str(key))
    return context


def get(connection, path, headers):
    """GET on an http.client connection: (status, JSON document or None)."""
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    is_json = "json" in (response.getheader("Content-Type") or "")
    return response.status, json.loads(body.decode("utf-8")) if is_json and body else None


def direct_poll(server, controller_id, headers, source):
    """A poll straight to ddi-lite from `source` (a loopback address), TargetToken TOKEN."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                            source_address=(source, 0))
    return get(connection, "/DEFAULT/controller/v1/" + controller_id,
               dict(headers, Authorization="TargetToken " + TOKEN))


def explain(server, tls_proxy, device=None):
    return lambda: "\n".join(([device.log()] if device else []) + [
        tls_proxy.recorder.dump(), tls_proxy.nginx.log(), server.log()])


def requests_at_server(tls_proxy, controller_id):
    return tls_proxy.recorder.requests(contains="/controller/v1/%s" % controller_id)


# --- SWUpdate ----------------------------------------------------------------------------------

def swupdate_through_nginx(server, tls_proxy, start_swupdate, signing_key, tmp_path,
                           controller_id, tls, target_token=None):
    """Install a .swu through nginx, restart with `-c 2`, wait for the action to finish."""
    operator = server.operator
    action_id, _, target_file, _ = deploy(server, signing_key, tmp_path, controller_id,
                                          b"root filesystem over TLS\n" * 512)
    device = start_swupdate("first-boot", tls_proxy.url, controller_id,
                            target_token=target_token, tls=tls)
    wait_for_message(server, controller_id, action_id, "All Chunks Installed.",
                     explain(server, tls_proxy, device))
    device.stop()
    device = start_swupdate("second-boot", tls_proxy.url, controller_id,
                            target_token=target_token, tls=tls, confirm=2)
    operator.wait_for_action(controller_id, action_id, "finished", TIMEOUT,
                             on_timeout=explain(server, tls_proxy, device))
    assert target_file.read_bytes() == b"root filesystem over TLS\n" * 512
    assert status_messages(operator, controller_id, action_id)[-1] == \
        ("finished", "Update Installed.")
    downloads = [e for e in requests_at_server(tls_proxy, controller_id)
                 if e.method == "GET" and "/artifacts/" in e.path]
    assert [e.status for e in downloads] == [200]
    return action_id


@pytest.mark.usefixtures("swupdate_installed")
def test_swupdate_with_target_token_updates_over_https_and_every_link_is_https(
        server, tls_proxy, start_swupdate, signing_key, tmp_path, pki):
    server.operator.add_target("swu-tls", token=TOKEN)
    swupdate_through_nginx(server, tls_proxy, start_swupdate, signing_key, tmp_path, "swu-tls",
                           {"cafile": pki.ca_cert}, target_token=TOKEN)

    assert_all_https_on(tls_proxy.port, tls_proxy.links())
    for exchange in requests_at_server(tls_proxy, "swu-tls"):
        assert exchange.headers["x-forwarded-proto"] == "https"
        assert exchange.headers["authorization"] == "TargetToken " + TOKEN
        assert "x-controller-id" not in exchange.headers


@pytest.mark.usefixtures("swupdate_installed")
def test_swupdate_with_client_certificate_updates_over_https_without_token(
        server, tls_proxy, start_swupdate, signing_key, tmp_path, pki):
    server.operator.add_target("swu-mtls", token="never-given-to-the-device")
    certificate, key = pki.client("swu-mtls")
    swupdate_through_nginx(server, tls_proxy, start_swupdate, signing_key, tmp_path, "swu-mtls",
                           {"cafile": pki.ca_cert, "sslcert": certificate, "sslkey": key})

    assert_all_https_on(tls_proxy.port, tls_proxy.links())
    for exchange in requests_at_server(tls_proxy, "swu-mtls"):
        assert "authorization" not in exchange.headers
        assert exchange.headers["x-controller-id"] == "swu-mtls"
        assert exchange.headers["x-authority"] == pki.issuer_hash
        assert "x-ssl-client-cn" not in exchange.headers


# --- rauc-hawkbit ------------------------------------------------------------------------------

def rauc_update_through_nginx(server, tls_proxy, tmp_path, controller_id, token, context,
                              local_address=None):
    """Poll, configData, deploymentBase, download (MD5 checked), install, close: the links the
    device was given."""
    operator = server.operator
    bundle = b"rauc bundle over TLS" * 4096
    set_id = operator.distribution(controller_id, {controller_id + ".raucb": bundle})
    action_id = operator.assign(set_id, controller_id)
    device = RaucDevice("127.0.0.1:%d" % tls_proxy.port, controller_id, token,
                        tmp_path / controller_id, ssl_context=context,
                        local_address=local_address)
    try:
        base = device.poll()
        device.identify({"hw_revision": "2"})
        received_id, deployment = device.deployment(base)
        assert device.download(deployment) is True
        device.install(received_id)
        after = device.poll()
    finally:
        device.close()
    assert (device.install_dir / "installed.raucb").read_bytes() == bundle
    action = operator.action(controller_id, action_id)
    assert (action["status"], action["active"]) == ("finished", False)
    return hrefs(base) + hrefs(deployment) + hrefs(after)


@pytest.mark.usefixtures("rauc_hawkbit_installed")
def test_rauc_hawkbit_with_target_token_updates_over_https_and_every_link_is_https(
        server, tls_proxy, tmp_path, pki):
    server.operator.add_target("rauc-tls", token=TOKEN)
    links = rauc_update_through_nginx(server, tls_proxy, tmp_path, "rauc-tls", TOKEN,
                                      client_context(pki), local_address="127.0.0.3")

    assert_all_https_on(tls_proxy.port, links)
    assert_all_https_on(tls_proxy.port, tls_proxy.links())
    # nginx's X-Forwarded-For names the device, not the proxy that connected to ddi-lite.
    assert server.operator.target("rauc-tls")["address"] == "http://127.0.0.3"


@pytest.mark.usefixtures("rauc_hawkbit_installed")
def test_rauc_hawkbit_with_client_certificate_updates_over_https(server, tls_proxy, tmp_path,
                                                                 pki):
    # rauc-hawkbit always sends a TargetToken; a wrong one shows the certificate decided.
    server.operator.add_target("rauc-mtls", token=TOKEN)
    links = rauc_update_through_nginx(server, tls_proxy, tmp_path, "rauc-mtls", "wrong-token",
                                      client_context(pki, "rauc-mtls"))

    assert_all_https_on(tls_proxy.port, links)
    for exchange in requests_at_server(tls_proxy, "rauc-mtls"):
        assert exchange.headers["x-controller-id"] == "rauc-mtls"


# --- what nginx lets through, and who ddi-lite believes ----------------------------------------

def test_proxy_headers_sent_straight_by_an_untrusted_peer_do_not_change_links(
        server, tls_proxy, pki):
    server.operator.add_target("dev-direct", token=TOKEN)
    status, through_nginx = get(
        http.client.HTTPSConnection("127.0.0.1", tls_proxy.port, timeout=10,
                                    context=client_context(pki)),
        "/DEFAULT/controller/v1/dev-direct", {"Authorization": "TargetToken " + TOKEN})
    assert status == 200
    assert_all_https_on(tls_proxy.port, hrefs(through_nginx), kinds=())
    # The very proxy headers nginx sent, from a peer that is not in trusted_proxies.
    sent = requests_at_server(tls_proxy, "dev-direct")[0].headers
    same = {name: sent[name] for name in ("x-forwarded-proto", "x-forwarded-host",
                                          "x-forwarded-port", "x-forwarded-for")}
    assert same["x-forwarded-proto"] == "https"
    for headers in (same, {"Forwarded": "for=203.0.113.5;proto=https;host=127.0.0.1:%d"
                           % tls_proxy.port}):
        status, document = direct_poll(server, "dev-direct", headers, source=UNTRUSTED_PEER)
        assert status == 200
        assert hrefs(document) == [
            "http://127.0.0.1:%d/DEFAULT/controller/v1/dev-direct/configData" % server.port]
    assert server.operator.target("dev-direct")["address"] == "http://127.0.0.2"


def test_waitress_hands_proxy_headers_of_a_trusted_peer_to_the_app(server):
    """The bug this tier exists for: Waitress dropped them before the app could decide."""
    server.operator.add_target("dev-trusted", token=TOKEN)
    for headers in ({"X-Forwarded-Proto": "https", "X-Forwarded-Host": "updates.example.org",
                     "X-Forwarded-For": "203.0.113.5"},
                    {"Forwarded": 'for="[2001:db8::5]";proto=https;host=updates.example.org'}):
        status, document = direct_poll(server, "dev-trusted", headers, source="127.0.0.1")
        assert status == 200
        assert hrefs(document) == \
            ["https://updates.example.org/DEFAULT/controller/v1/dev-trusted/configData"]
    assert server.operator.target("dev-trusted")["address"] == "http://[2001:db8::5]"


def test_a_device_cannot_bring_its_own_proxy_or_certificate_headers_through_nginx(
        server, tls_proxy, pki):
    server.operator.add_target("dev-spoof", token=TOKEN)
    forged = {"X-Controller-Id": "dev-spoof", "X-Authority": pki.issuer_hash,
              "X-Ssl-Client-Cn": "dev-spoof", "X-Ssl-Issuer-Hash-1": pki.issuer_hash,
              "Forwarded": "proto=http;host=evil.example", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Proto": "http", "X-Forwarded-Prefix": "/evil"}

    def through_nginx(headers):
        connection = http.client.HTTPSConnection("127.0.0.1", tls_proxy.port, timeout=10,
                                                 context=client_context(pki))
        return get(connection, "/DEFAULT/controller/v1/dev-spoof", headers)

    assert through_nginx(forged)[0] == 401
    status, document = through_nginx(dict(forged, Authorization="TargetToken " + TOKEN))
    assert status == 200
    assert hrefs(document) == [
        "https://127.0.0.1:%d/DEFAULT/controller/v1/dev-spoof/configData" % tls_proxy.port]
    reached = requests_at_server(tls_proxy, "dev-spoof")[-1].headers
    for name in ("x-controller-id", "x-ssl-client-cn", "forwarded", "x-forwarded-prefix"):
        assert name not in reached, name


def test_nginx_refuses_a_certificate_from_another_ca(server, tls_proxy, pki, tmp_path):
    stranger = nginx.Pki(tmp_path / "other-pki", name="someone else's CA")
    certificate, key = stranger.client("dev-stranger")
    context = client_context(pki)
    context.load_cert_chain(str(certificate), str(key))
    connection = http.client.HTTPSConnection("127.0.0.1", tls_proxy.port, timeout=10,
                                             context=context)
    assert get(connection, "/DEFAULT/controller/v1/dev-stranger", {})[0] == 400
    assert not requests_at_server(tls_proxy, "dev-stranger")


# --- README shows what these tests run ---------------------------------------------------------

def readme_block(language):
    """The one ```language block of README's "Behind a TLS reverse proxy" section, without
    the indentation of the list item it stands in."""
    with open(PROJECT_DIR + "/README.md", encoding="utf-8") as readme:
        text = readme.read()
    section = re.search(r"^### Behind a TLS reverse proxy\n(.*?)(?=^##)", text, re.M | re.S)
    assert section, "README has no section '### Behind a TLS reverse proxy'"
    blocks = re.findall(r"^( *)```%s\n(.*?)^\1```$" % language, section.group(1), re.M | re.S)
    assert len(blocks) == 1, "%d ```%s blocks" % (len(blocks), language)
    indent, block = blocks[0]
    return "".join(line[len(indent):] if line.startswith(indent) else line
                   for line in block.splitlines(True))


def test_readme_nginx_site_is_the_one_the_tests_run():
    assert readme_block("nginx") == nginx.server_config(**README_SITE)


def test_readme_config_ini_is_the_one_the_tests_run():
    assert readme_block("ini") == production_settings(README_AUTHORITY)
