"""Who sent a request and how links back to this server must look, when a reverse proxy
stands between: the RFC 7239 `Forwarded` header and X-Forwarded-*, believed only from the
networks the operator trusts (`Origin`). Pure functions of the WSGI environ; nothing here
knows the protocols.
"""

import collections
import functools
import ipaddress
import re


@functools.lru_cache(maxsize=1024)
def _trusted(peer, trusted):
    """Whether the peer address lies in one of the `trusted` networks (an IPv4-mapped IPv6
    address, as a dual-stack socket reports IPv4 peers, counts as its IPv4 address)."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in trusted)


# What the outermost trusted proxy saw of the client: its address and the scheme, host and
# port it asked for (None where the proxy did not say, or said something unusable).
ProxiedHop = collections.namedtuple("ProxiedHop", "client_ip proto host port")

# A Forwarded pair (RFC 7239 section 4): token "=" (token / quoted-string), then the separator
# that follows it.
_FORWARDED_PAIR = re.compile(r"[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)="
                             r'("(?:[^"\\]|\\.)*"|[^;," \t]*)[ \t]*([;,]|$)')
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(:[0-9]{1,5})?$")


def _forwarded_elements(value):
    """The elements of a `Forwarded` header, oldest first, each a dict of lower-case parameter
    names to unquoted values; None when the header does not parse."""
    elements, element, position = [], {}, 0
    while position < len(value):
        match = _FORWARDED_PAIR.match(value, position)
        if match is None:
            return None
        name, raw, separator = match.groups()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        element[name.lower()] = raw
        if separator != ";":
            elements.append(element)
            element = {}
        position = match.end()
    if element:
        elements.append(element)
    return elements


def _node_ip(node):
    """The IP address in a Forwarded `for` node or an X-Forwarded-For entry (with or without
    brackets and port), or None for `unknown`, an obfuscated `_name` or anything else."""
    node = node.strip()
    if node.startswith("["):
        node = node[1:node.find("]")]
    elif node.count(":") == 1:
        node = node.partition(":")[0]
    try:
        return str(ipaddress.ip_address(node))
    except ValueError:
        return None


def _client_index(nodes, trusted_proxies):
    """Which hop is the client: walking from the proxy nearest to us outwards, the first
    address that is not a trusted proxy itself. Proxies append to these lists, so anything
    further out was written by the client and proves nothing."""
    for index in range(len(nodes) - 1, 0, -1):
        ip = _node_ip(nodes[index]) if nodes[index] is not None else None
        if ip is None or not _trusted(ip, trusted_proxies):
            return index
    return 0


def _proto(value):
    value = (value or "").strip().lower()
    return value if value in ("http", "https") else None


def _forwarded_hop(value, peer, trusted_proxies):
    """ProxiedHop from an RFC 7239 `Forwarded` header; None when it does not parse."""
    elements = _forwarded_elements(value)
    if not elements:
        return None
    element = elements[_client_index([e.get("for") for e in elements], trusted_proxies)]
    client_ip = _node_ip(element["for"]) if "for" in element else peer
    host = element.get("host")
    return ProxiedHop(client_ip, _proto(element.get("proto")),
                      host if host and _HOST.match(host) else None, None)


def _x_forwarded_hop(environ, peer, trusted_proxies):
    """ProxiedHop from X-Forwarded-For/-Proto/-Host/-Port. Proxies append to X-Forwarded-For
    but set the others, so those count by their first value."""
    def first(name):
        return environ.get(name, "").split(",")[0].strip() or None
    nodes = [node for node in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if node.strip()]
    client_ip = _node_ip(nodes[_client_index(nodes, trusted_proxies)]) if nodes else peer
    host, port = first("HTTP_X_FORWARDED_HOST"), first("HTTP_X_FORWARDED_PORT")
    return ProxiedHop(client_ip, _proto(first("HTTP_X_FORWARDED_PROTO")),
                      host if host and _HOST.match(host) else None,
                      port if port and port.isdigit() and len(port) <= 5 else None)


class Origin:
    """Where a request came from and how links back to this server must look.

    Proxy headers count only when the peer is in `[server] trusted_proxies`: the RFC 7239
    `Forwarded` header, or without it X-Forwarded-For/-Proto/-Host/-Port, plus
    X-Forwarded-Prefix (Forwarded has no path). connections.Server tells Waitress to leave
    them all in place, so that this is the one rule that decides, under Waitress as under
    WebTest.
    """

    def __init__(self, environ, public_url, trusted_proxies):
        peer = environ.get("REMOTE_ADDR", "")
        self.via_trusted_proxy = bool(peer) and _trusted(peer, trusted_proxies)
        hop = None
        if self.via_trusted_proxy:
            if "HTTP_FORWARDED" in environ:
                hop = _forwarded_hop(environ["HTTP_FORWARDED"], peer, trusted_proxies)
            else:
                hop = _x_forwarded_hop(environ, peer, trusted_proxies)
        self.client_ip = hop.client_ip if hop else peer
        if public_url:
            self.base_url = public_url.rstrip("/")
        else:
            self.base_url = self._base_from(environ, hop)

    def _base_from(self, environ, hop):
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or "%s:%s" % (environ.get("SERVER_NAME", "localhost"),
                                                      environ.get("SERVER_PORT", "80"))
        prefix = ""
        if self.via_trusted_proxy:
            if hop is not None:
                scheme = hop.proto or scheme
                host = hop.host or host
                if hop.port:
                    host = "%s:%s" % (_host_without_port(host), hop.port)
            prefix = environ.get("HTTP_X_FORWARDED_PREFIX", "").rstrip("/")
        name = _host_without_port(host)
        port = host[len(name) + 1:] if host.startswith(name + ":") else ""
        if (scheme, port) in (("http", "80"), ("https", "443")):
            host = name
        return "%s://%s%s" % (scheme, host, prefix)

    @property
    def address(self):
        """The client address as hawkBit stores it: a URI ("***" where a proxy hid it)."""
        ip = self.client_ip or "***"
        return "http://[%s]" % ip if ":" in ip else "http://%s" % ip


def _host_without_port(host):
    if host.startswith("["):
        return host[:host.index("]") + 1] if "]" in host else host
    return host.split(":")[0]
