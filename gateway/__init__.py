"""Gateway mode: ddi-lite as the local face of an upstream hawkBit (or another ddi-lite).

Devices speak DDI to this server as usual, but their orders come from the upstream server:
polls are answered from the last upstream answer, reports wait in a durable outbox until
upstream has them, artifacts are fetched from upstream once and served from a local cache.

A package of its own because it is a capability none of the other rooms holds: it is not
the local rules of storage/ (the gateway keeps no rules, it relays upstream's), not bytes
(artifacts/), not running the service (service/), and not a program talking to a server
from outside (client/: the server never imports it, so the gateway has its own small HTTP
client in gateway/upstream.py).

    upstream.py   the HTTP client to the upstream DDI server (http.client, TLS, timeouts)
    state.py      what the gateway remembers, in its own SQLite file gateway.sqlite
    outbox.py     the durable ordered outbox per device and the thread delivering it
    relay.py      the DDI routes in gateway mode, and the operators' view of the gateway
    cache.py      the artifact cache (download once, verify, stream while filling)
    fetch.py      one upstream GET of an artifact's bytes, resuming with Range

Switched on by `[upstream] url` (SETTINGS below, read by ddi_lite.py's settings schema).
"""

from service.configuration import Setting

SETTINGS = (
    Setting("upstream", "url", "str", "",
            "Base URL of the upstream hawkBit (e.g. https://hawkbit.example.org); set, this "
            "server is a gateway that relays it (README: Gateway mode). Empty: a server of its own."),
    Setting("upstream", "tenant", "str", "DEFAULT",
            "The upstream tenant the devices belong to (hawkBit's default tenant: DEFAULT)."),
    Setting("upstream", "auth", "str", "gateway_token",
            "How the gateway authenticates upstream: gateway_token (upstream's gateway token "
            "below; devices authenticate here by the [ddi] rules) or pass_through (each "
            "device's own Authorization header goes upstream)."),
    Setting("upstream", "gateway_token", "str", "",
            "The upstream tenant's gateway token (auth = gateway_token)."),
    Setting("upstream", "ca_file", "path", "",
            "PEM file of the CA that signs upstream's certificate; empty: the system's CAs."),
    Setting("upstream", "timeout", "positive", 10,
            "Seconds an upstream request may take to connect or between bytes; 10 keeps a "
            "dead uplink from holding a thread long, and is ample for a slow one."),
    Setting("upstream", "cache_mib", "positive", 2048,
            "Most MiB the artifact cache keeps; least recently used artifacts go first, never "
            "one of an open action. 2048: a few full images."),
)

AUTH_MODES = ("gateway_token", "pass_through")


def enabled(config):
    """Whether these settings make the server a gateway."""
    return bool(config["upstream", "url"])
