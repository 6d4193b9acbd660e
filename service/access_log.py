"""The access log: one line per answered request, through the logger `ddi-lite.access` (so that
systemd's journal, or any handler the operator configures, gets it). Only wrapped around the
app when `[server] access_log` is on: when it is off, nothing is done per request for it.

A line reads

    203.0.113.7 GET /DEFAULT/controller/v1/dev-1 200 253 1.2ms controller=dev-1

the client (the address a trusted proxy reports, else the peer), the method, the path before
the app tidies it (percent-encoded, without the query string), the status, the body's length
as the answer declares it (0 for HEAD, `-` when it declares none), the app's time to answer
(a download's bytes stream after it), and who asked when known: `controller=` for the device
resources (the id in the path, as the app's `controller_of(environ)` names it), `user=` for a
logged-in operator (REMOTE_USER). No header is logged, so neither a token nor a password ever
is; the query string is left out because it says nothing about who or where, and a client
may put there what it should not. Knows the app only as WSGI.
"""

import logging
import time
import urllib.parse

from service import forwarded

log = logging.getLogger("ddi-lite.access")

# Characters a path keeps as they are in the line; anything else (spaces, quotes, control
# characters, non-ASCII) is percent-encoded, so that a line is always one line of fields.
_SAFE = "/:@!$&'()*+,;=-._~"


def logged(app, trusted_proxies, controller_of):
    """`app`, with a line in the access log for each answer; `controller_of(environ)`, asked
    after the app has answered, names the device the request was about, or None."""
    clock = time.perf_counter

    def call(environ, start_response):
        started = clock()
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")  # as it came
        answered = ["500", ()]  # an exception out of the app becomes Waitress's 500

        def start(status, headers, exc_info=None):
            answered[:] = status, headers
            return start_response(status, headers, exc_info)
        try:
            return app(environ, start)
        finally:
            status, headers = answered
            # 100: the app let a body come (service.connections); the request follows.
            if not status.startswith("1"):
                log.info("%s", line(environ, path, status[:3], headers, clock() - started,
                                    trusted_proxies, controller_of(environ)))
    return call


def line(environ, path, status, headers, seconds, trusted_proxies, controller_id):
    """The text of one line, as the module's description shows it."""
    method = environ.get("REQUEST_METHOD", "-")
    size = next((value for name, value in headers if name.lower() == "content-length"), "-")
    if method == "HEAD":
        size = "0"
    # WSGI gives the request's bytes as latin-1 text.
    fields = [forwarded.Origin(environ, "", trusted_proxies).client_ip or "-",
              _quoted(method.encode("latin-1", "replace")),
              _quoted(path.encode("latin-1", "replace")) or "/",
              status, size, "%.1fms" % (seconds * 1000)]
    if controller_id is not None:
        fields.append("controller=" + _quoted(controller_id))
    if environ.get("REMOTE_USER"):
        fields.append("user=" + _quoted(environ["REMOTE_USER"]))
    return " ".join(fields)


def _quoted(text):
    """`text` (bytes, or text written as UTF-8) with everything but _SAFE percent-encoded."""
    return urllib.parse.quote(text, safe=_SAFE)
