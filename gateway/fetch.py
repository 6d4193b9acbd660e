"""One upstream GET of an artifact's bytes, from a byte offset, with the standard library.

`open_download` sends the request (with ``Range: bytes=N-`` when resuming), follows a few
redirects and checks that the answer carries the bytes asked for: a 206 whose Content-Range
starts at N and names the artifact's size, or a 200 with the whole artifact (upstream
ignored the range, so the caller starts over). Anything else raises `UpstreamError`, which
says whether trying again later may help.

This module moves bytes only: it does not store, hash or retry them; `gateway.cache` does.
"""

import http.client
import re
import socket
import ssl
import urllib.parse
from typing import Callable, Dict, Optional

MAX_REDIRECTS = 3
# Statuses that say "not now" rather than "never": try again after a back-off.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19}|\*)")
# Credentials are for upstream itself, never for a host it redirects to (a CDN or S3).
_CREDENTIAL_HEADERS = ("authorization", "cookie")


class UpstreamError(Exception):
    """The upstream transfer did not deliver; ``retryable`` when a later attempt may."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class Download:
    """An upstream answer whose body holds the artifact's bytes from ``start`` on."""

    def __init__(self, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse, start: int):
        self._connection = connection
        self._response = response
        self.start = start

    def read(self, size: int) -> bytes:
        return self._response.read1(size)

    def abort(self) -> None:
        """Break off a read that waits for the network; for another thread to call (the
        reading thread still closes the download)."""
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._connection.close()


def open_download(url: str, headers: Dict[str, str], offset: int, size: int, timeout: float,
                  ssl_context: Optional[ssl.SSLContext] = None,
                  on_request: Callable[[], None] = lambda: None) -> Download:
    """GET ``url`` for the bytes of a ``size``-byte artifact from ``offset`` on.

    ``on_request()`` is called for every request sent, redirects and failures included.
    """
    request_headers = {name: value for name, value in headers.items()
                       if name.lower() != "range"}
    if offset:
        request_headers["Range"] = "bytes=%d-" % offset
    origin = urllib.parse.urlsplit(url).netloc
    for _ in range(MAX_REDIRECTS + 1):
        connection = _connection(url, timeout, ssl_context)
        on_request()
        try:
            connection.request("GET", _request_target(url), headers=request_headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise UpstreamError("upstream unreachable: %s" % error, retryable=True)
        if response.status in _REDIRECT_STATUSES and response.getheader("Location"):
            url = urllib.parse.urljoin(url, response.getheader("Location"))
            connection.close()
            if urllib.parse.urlsplit(url).netloc != origin:
                request_headers = {name: value for name, value in request_headers.items()
                                   if name.lower() not in _CREDENTIAL_HEADERS}
            continue
        try:
            start = _body_start(response, offset, size)
        except UpstreamError:
            connection.close()
            raise
        return Download(connection, response, start)
    raise UpstreamError("upstream redirected more than %d times" % MAX_REDIRECTS,
                        retryable=False)


def _connection(url: str, timeout: float, ssl_context: Optional[ssl.SSLContext]):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=ssl_context or ssl.create_default_context())
    if parts.scheme == "http":
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    raise UpstreamError("not an http(s) URL: %r" % url, retryable=False)


def _request_target(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + ("?" + parts.query if parts.query else "")


def _body_start(response: http.client.HTTPResponse, offset: int, size: int) -> int:
    """Where the answer's body starts in the artifact; UpstreamError if it is not usable."""
    if response.status == 200:
        _check_length(response, size)
        return 0
    if response.status == 206 and offset:
        match = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range") or "")
        if (match is None or int(match.group(1)) != offset
                or int(match.group(2)) != size - 1 or match.group(3) != str(size)):
            raise UpstreamError("upstream answered bytes %r for bytes=%d- of %d"
                                % (response.getheader("Content-Range"), offset, size),
                                retryable=True)
        _check_length(response, size - offset)
        return offset
    retryable = response.status in _RETRYABLE_STATUSES
    raise UpstreamError("upstream answered %d %s" % (response.status, response.reason),
                        retryable=retryable)


def _check_length(response: http.client.HTTPResponse, expected: int) -> None:
    length = response.getheader("Content-Length")
    if length is not None and length.strip() != str(expected):
        raise UpstreamError("upstream sends %s bytes where %d are expected"
                            % (length, expected), retryable=False)
