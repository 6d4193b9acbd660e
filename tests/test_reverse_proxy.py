"""Behind a reverse proxy: which proxy headers shape links and the recorded device address.

The rule (service.forwarded.Origin): a peer in `[server] trusted_proxies` may tell where the request really
came from, with RFC 7239 `Forwarded` or, without it, X-Forwarded-For/-Proto/-Host/-Port; any
other peer may not. WebTest hands the headers straight to the app; that Waitress does too is
shown by the real-process tests in tests/clients/test_tls_proxy.py.
"""

import base64

import pytest

import ddi_lite
import storage
from conftest import DEVICE, Server, token
from storage import ddi

ROOT = DEVICE + "/dev-1"
PROXY = "192.0.2.10"
STRANGER = "198.51.100.7"
X_FORWARDED = {"Host": "internal:8080", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "updates.example.org", "X-Forwarded-Port": "443"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode("ascii")}


@pytest.fixture
def make_server(tmp_path):
    """make_server(trusted_proxies, public_url=""): a server with a target dev-1."""
    def make(trusted_proxies, public_url=""):
        server = Server(ddi_lite.load_config(environ={}, overrides={
            "server.data_dir": str(tmp_path / "data"),
            "server.trusted_proxies": trusted_proxies, "server.public_url": public_url}))
        server.configure(**{"authentication.targettoken.enabled": True})
        server.target()
        return server
    yield make
    storage.close_store()


@pytest.fixture
def proxied(make_server):
    """A server that trusts 192.0.2.10 as its reverse proxy."""
    return make_server(PROXY)


def config_data_link(server, headers, peer=PROXY):
    response = server.http.get(ROOT, headers=dict(token(), **headers),
                               extra_environ={"REMOTE_ADDR": peer})
    return response.json["_links"]["configData"]["href"]


def recorded_address(server, headers, peer=PROXY):
    server.http.get(ROOT, headers=dict(token(), **headers), extra_environ={"REMOTE_ADDR": peer})
    return ddi.find_target("dev-1").address


# --- links: X-Forwarded-* ----------------------------------------------------------------------

def test_x_forwarded_headers_from_trusted_proxy_shape_links(proxied):
    proxied.deployment()
    response = proxied.http.get(ROOT, headers=dict(token(), **X_FORWARDED))
    for rel in ("deploymentBase", "configData"):
        assert response.json["_links"][rel]["href"].startswith(
            "https://updates.example.org/DEFAULT/controller/v1/dev-1/")


def test_x_forwarded_non_default_port_is_kept(proxied):
    assert config_data_link(proxied, dict(X_FORWARDED, **{"X-Forwarded-Port": "8443"})) == \
        "https://updates.example.org:8443/DEFAULT/controller/v1/dev-1/configData"


def test_x_forwarded_port_applies_to_host_header_without_x_forwarded_host(proxied):
    # rauc-hawkbit-updater's CI nginx passes Host and X-Forwarded-Port, no X-Forwarded-Host.
    headers = {"Host": "localhost:8443", "X-Forwarded-Proto": "https",
               "X-Forwarded-Port": "8443"}
    assert config_data_link(proxied, headers) == \
        "https://localhost:8443/DEFAULT/controller/v1/dev-1/configData"


def test_x_forwarded_proto_alone_keeps_host_header(proxied):
    headers = {"Host": "updates.example.org", "X-Forwarded-Proto": "HTTPS"}
    assert config_data_link(proxied, headers) == \
        "https://updates.example.org/DEFAULT/controller/v1/dev-1/configData"


def test_x_forwarded_prefix_from_trusted_proxy_is_kept(proxied):
    headers = dict(X_FORWARDED, **{"X-Forwarded-Prefix": "/ota/"})
    assert config_data_link(proxied, headers) == \
        "https://updates.example.org/ota/DEFAULT/controller/v1/dev-1/configData"


def test_x_forwarded_headers_from_untrusted_peer_are_ignored(proxied):
    headers = dict(X_FORWARDED, **{"X-Forwarded-Prefix": "/ota"})
    assert config_data_link(proxied, headers, peer=STRANGER) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


@pytest.mark.parametrize("proto", ["ftp", "javascript", "https x", ""])
def test_unsupported_x_forwarded_proto_is_ignored(proxied, proto):
    headers = {"Host": "internal:8080", "X-Forwarded-Proto": proto}
    assert config_data_link(proxied, headers) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


@pytest.mark.parametrize("host", ["evil.example/path", "a b", "[::1", "x:99999999", "@evil"])
def test_unusable_x_forwarded_host_is_ignored(proxied, host):
    headers = {"Host": "internal:8080", "X-Forwarded-Host": host}
    assert config_data_link(proxied, headers) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


@pytest.mark.parametrize("port", ["8x", "-1", "123456", "443/x"])
def test_unusable_x_forwarded_port_is_ignored(proxied, port):
    headers = {"Host": "internal:8080", "X-Forwarded-Port": port}
    assert config_data_link(proxied, headers) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


# --- links: Forwarded (RFC 7239) ---------------------------------------------------------------

def test_forwarded_from_trusted_proxy_shapes_links(proxied):
    headers = {"Host": "internal:8080",
               "Forwarded": "for=203.0.113.5;proto=https;host=updates.example.org"}
    assert config_data_link(proxied, headers) == \
        "https://updates.example.org/DEFAULT/controller/v1/dev-1/configData"


def test_forwarded_quoted_host_with_port_and_mixed_case_names(proxied):
    headers = {"Host": "internal:8080",
               "Forwarded": 'For="[2001:db8::17]:4711"; Proto=https; '
                            'Host="updates.example.org:8443"'}
    assert config_data_link(proxied, headers) == \
        "https://updates.example.org:8443/DEFAULT/controller/v1/dev-1/configData"


def test_forwarded_wins_over_x_forwarded_headers(proxied):
    headers = dict(X_FORWARDED, Forwarded="proto=http;host=other.example.org:8080")
    assert config_data_link(proxied, headers) == \
        "http://other.example.org:8080/DEFAULT/controller/v1/dev-1/configData"


def test_forwarded_element_of_the_nearest_untrusted_hop_counts(proxied):
    # The client wrote the first element itself; the proxy appended the second.
    headers = {"Host": "internal:8080",
               "Forwarded": "for=192.0.2.10;proto=http;host=evil.example, "
                            "for=203.0.113.5;proto=https;host=updates.example.org"}
    assert config_data_link(proxied, headers) == \
        "https://updates.example.org/DEFAULT/controller/v1/dev-1/configData"


@pytest.mark.parametrize("forwarded", ["proto=https;;host", "for", 'for="unclosed',
                                       "proto=https host=x", "=https"])
def test_malformed_forwarded_is_ignored_with_x_forwarded_headers(proxied, forwarded):
    headers = dict(X_FORWARDED, Forwarded=forwarded)
    assert config_data_link(proxied, headers) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


def test_forwarded_from_untrusted_peer_is_ignored(proxied):
    headers = {"Host": "internal:8080",
               "Forwarded": "for=203.0.113.5;proto=https;host=updates.example.org"}
    assert config_data_link(proxied, headers, peer=STRANGER) == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


def test_public_url_wins_over_request_and_proxy_headers(make_server):
    server = make_server(PROXY, public_url="https://pub.example.net/ota/")
    for headers in (X_FORWARDED, {"Forwarded": "proto=http;host=other.example.org"}):
        assert config_data_link(server, headers) == \
            "https://pub.example.net/ota/DEFAULT/controller/v1/dev-1/configData"


# --- IPv6 peers ---------------------------------------------------------------------------------

def test_trusted_ipv6_proxy_network_shapes_links(make_server):
    server = make_server("2001:db8:1::/48")
    assert config_data_link(server, X_FORWARDED, peer="2001:db8:1::10") == \
        "https://updates.example.org/DEFAULT/controller/v1/dev-1/configData"


def test_ipv6_peer_outside_trusted_network_is_ignored(make_server):
    server = make_server("2001:db8:1::/48")
    assert config_data_link(server, X_FORWARDED, peer="2001:db8:2::10") == \
        "http://internal:8080/DEFAULT/controller/v1/dev-1/configData"


def test_ipv4_mapped_peer_counts_as_its_ipv4_address(make_server):
    # What a dual-stack socket reports for an IPv4 proxy.
    server = make_server("127.0.0.1")
    assert config_data_link(server, X_FORWARDED, peer="::ffff:127.0.0.1") == \
        "https://updates.example.org/DEFAULT/controller/v1/dev-1/configData"


def test_bracketed_ipv6_host_keeps_forwarded_port(proxied):
    headers = {"Host": "[2001:db8::1]:8080", "X-Forwarded-Proto": "https",
               "X-Forwarded-Port": "8443"}
    assert config_data_link(proxied, headers) == \
        "https://[2001:db8::1]:8443/DEFAULT/controller/v1/dev-1/configData"


# --- the recorded device address ---------------------------------------------------------------

def test_address_is_the_peer_without_proxy_headers(proxied):
    assert recorded_address(proxied, {}, peer=STRANGER) == "http://198.51.100.7"


def test_address_of_ipv6_peer_is_bracketed(proxied):
    assert recorded_address(proxied, {}, peer="2001:db8::10") == "http://[2001:db8::10]"


def test_address_from_x_forwarded_for_of_trusted_proxy(proxied):
    assert recorded_address(proxied, {"X-Forwarded-For": "203.0.113.5"}) == \
        "http://203.0.113.5"


def test_address_is_the_nearest_untrusted_x_forwarded_for_entry(proxied):
    # The proxy appended 198.51.100.1 (who connected to it); 203.0.113.5 is only a claim.
    headers = {"X-Forwarded-For": "203.0.113.5, 198.51.100.1"}
    assert recorded_address(proxied, headers) == "http://198.51.100.1"


def test_address_walks_past_trusted_proxies_in_x_forwarded_for(make_server):
    server = make_server("192.0.2.0/24")
    headers = {"X-Forwarded-For": "203.0.113.5, 192.0.2.20"}
    assert recorded_address(server, headers) == "http://203.0.113.5"


def test_ipv6_address_from_x_forwarded_for(proxied):
    assert recorded_address(proxied, {"X-Forwarded-For": "2001:DB8::17"}) == \
        "http://[2001:db8::17]"


def test_address_from_forwarded_for(proxied):
    headers = {"Forwarded": 'for="[2001:db8::17]:4711";proto=https'}
    assert recorded_address(proxied, headers) == "http://[2001:db8::17]"


def test_address_from_forwarded_for_with_port(proxied):
    assert recorded_address(proxied, {"Forwarded": 'for="203.0.113.5:47011"'}) == \
        "http://203.0.113.5"


def test_address_hidden_by_proxy_is_stars(proxied):
    for node in ("unknown", "_gateway7"):
        assert recorded_address(proxied, {"Forwarded": "for=" + node}) == "http://***"


def test_address_without_forwarded_for_is_the_peer(proxied):
    assert recorded_address(proxied, {"Forwarded": "proto=https"}) == "http://192.0.2.10"


def test_forwarded_wins_over_x_forwarded_for(proxied):
    headers = {"Forwarded": "for=203.0.113.5", "X-Forwarded-For": "203.0.113.99"}
    assert recorded_address(proxied, headers) == "http://203.0.113.5"


def test_address_headers_from_untrusted_peer_are_ignored(proxied):
    for headers in ({"X-Forwarded-For": "203.0.113.5"}, {"Forwarded": "for=203.0.113.5"}):
        assert recorded_address(proxied, headers, peer=STRANGER) == "http://198.51.100.7"


# --- the Management API follows the same rule --------------------------------------------------

def test_management_links_follow_trusted_proxy(proxied):
    response = proxied.http.get("/rest/v1/targets/dev-1", headers=dict(ADMIN, **X_FORWARDED))
    assert response.json["_links"]["self"]["href"] == \
        "https://updates.example.org/rest/v1/targets/dev-1"
    response = proxied.http.get("/rest/v1/targets/dev-1", headers=dict(ADMIN, **X_FORWARDED),
                                extra_environ={"REMOTE_ADDR": STRANGER})
    assert response.json["_links"]["self"]["href"] == \
        "http://internal:8080/rest/v1/targets/dev-1"
