"""The HTTP client to the upstream DDI server: one request at a time per call, over
http.client (https with the system's CAs or `ca_file`), bounded by a timeout, with the
upstream's health (last success, last error) and request figures kept as it goes, and the
back-off that spares a dead uplink a request per device poll.

The server never imports client/ (the operator programs), so this is the gateway's own.
"""

import collections
import http.client
import ssl
import threading
import time
import urllib.parse

Answer = collections.namedtuple("Answer", "status headers body")
# While upstream does not answer, refreshes are asked at most once per back-off: 0.5 s after
# the first failure, doubling to 30 s, as the outbox retries its reports.
BACK_OFF_FIRST_MS = 500
BACK_OFF_MAX_MS = 30000


class UpstreamDown(Exception):
    """Upstream could not be asked or did not answer in time (or answered 5xx): the request
    may be tried again later."""


def now_ms():
    return int(time.time() * 1000)


class Upstream:
    def __init__(self, url, tenant, ca_file="", timeout=10):
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("[upstream] url must be an http:// or https:// URL: %r" % url)
        self.url = url.rstrip("/")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.base_path = parts.path
        self.tenant = tenant
        self.timeout = timeout
        # Also the artifact cache's, which fetches from the same upstream.
        self.tls_context = None
        if self.scheme == "https":
            self.tls_context = ssl.create_default_context(cafile=ca_file or None)
        self._lock = threading.Lock()
        self.figures = {"requests": 0, "bytes_received": 0, "errors": 0}
        self.last_success_ms = None
        self.last_error = None
        self.last_error_ms = None
        # Failures in a row, and until when a request that could wait is not made.
        self._failures = 0
        self._quiet_until_ms = 0

    def device_path(self, controller_id, rest=""):
        """The path of a device's DDI resource upstream (`rest`: after the controller id)."""
        return "%s/%s/controller/v1/%s%s" % (
            self.base_path, urllib.parse.quote(self.tenant, safe=""),
            urllib.parse.quote(controller_id, safe=""), rest)

    def is_upstream(self, url):
        """Whether `url` names upstream itself (scheme, host and port)."""
        parts = urllib.parse.urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        return (parts.scheme, (parts.hostname or "").lower(), parts.port or default) == (
            self.scheme, self.host.lower(),
            self.port or (443 if self.scheme == "https" else 80))

    def connection(self):
        """A new connection to upstream (the caller closes it)."""
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.tls_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, headers=None, body=None):
        """The whole answer to one request; UpstreamDown when there is none or it is 5xx."""
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.note_error("%s %s: %s" % (method, path, error or type(error).__name__))
            raise UpstreamDown(str(error) or type(error).__name__)
        finally:
            connection.close()
        with self._lock:
            self.figures["requests"] += 1
            self.figures["bytes_received"] += len(data)
        if response.status >= 500:
            self.note_error("%s %s: HTTP %d" % (method, path, response.status))
            raise UpstreamDown("HTTP %d" % response.status)
        self.note_success()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def note_success(self):
        with self._lock:
            self.last_success_ms = now_ms()
            self._failures = 0

    def note_error(self, text):
        with self._lock:
            self.figures["errors"] += 1
            self.last_error, self.last_error_ms = text, now_ms()
            self._failures += 1
            self._quiet_until_ms = self.last_error_ms + self._back_off_ms()

    def may_ask(self):
        """Whether to make a request that could wait (refreshing an answer the gateway has):
        always while upstream answers; while it does not, one request per back-off period,
        so that a dead uplink is not asked once for every device poll."""
        with self._lock:
            if not self._failures:
                return True
            now = now_ms()
            if now < self._quiet_until_ms:
                return False
            self._quiet_until_ms = now + self._back_off_ms()  # this caller is the probe
            return True

    def _back_off_ms(self):
        return min(BACK_OFF_MAX_MS, BACK_OFF_FIRST_MS << min(self._failures - 1, 10))

    def answering(self):
        """Whether upstream's last request succeeded (or none was made yet)."""
        with self._lock:
            return self.last_error_ms is None or (
                self.last_success_ms is not None and self.last_success_ms >= self.last_error_ms)

    def health(self):
        with self._lock:
            return {"url": self.url, "tenant": self.tenant,
                    "lastSuccessAt": self.last_success_ms, "lastError": self.last_error,
                    "lastErrorAt": self.last_error_ms,
                    "up": self.last_success_ms is not None and (
                        self.last_error_ms is None or self.last_success_ms >= self.last_error_ms),
                    "requests": self.figures["requests"],
                    "bytesReceived": self.figures["bytes_received"],
                    "errors": self.figures["errors"]}
