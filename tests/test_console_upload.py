"""A real ddi-lite process takes a large artifact through the console's upload without
holding it in memory: a 256 MiB multipart body, generated as it is sent, goes to
`POST /ui/software/modules/<id>/artifacts` of a signed-in session while a thread samples the
server's VmRSS. (A 1 GB file through Chromium's progress bar was measured the same way:
README, "Web console".) The body is spooled by Waitress to a temporary file and streamed from
there into the blob store, as the Management API's upload is.
"""

import hashlib
import http.client
import os
import re
import urllib.parse

import pytest

import live

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="needs /proc/<pid>/status to measure the server's RSS")

MiB = 1024 * 1024
SIZE = 256 * MiB
GROWTH_LIMIT = 24 * MiB
BOUNDARY = "console-upload-boundary"


class Body:
    """The multipart body, made as it is read: the test never holds the file either."""

    def __init__(self, size, block):
        self.head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
                     '\r\nContent-Type: application/octet-stream\r\n\r\n' % BOUNDARY).encode()
        self.tail = ("\r\n--%s--\r\n" % BOUNDARY).encode()
        self.size, self.block = size, block
        self.length = len(self.head) + size + len(self.tail)
        self.sha256 = hashlib.sha256()

    def __iter__(self):
        yield self.head
        sent = 0
        while sent < self.size:
            chunk = self.block[:self.size - sent]
            self.sha256.update(chunk)
            sent += len(chunk)
            yield chunk
        yield self.tail


class Browserless:
    """A signed-in console session over one connection, cookies kept by hand."""

    def __init__(self, server):
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % item for item in self.cookies.items())
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response, text

    def form(self, path, fields):
        return self.request("POST", path, urllib.parse.urlencode(fields),
                            {"Content-Type": "application/x-www-form-urlencoded"})


def test_a_large_upload_through_the_console_keeps_the_servers_memory_flat(tmp_path):
    server = live.DdiLite(tmp_path / "server", threads=2)
    try:
        client = Browserless(server)
        _, page = client.request("GET", "/ui/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        response, _ = client.form("/ui/signin", {"user": "admin", "password": "admin",
                                                 "csrf": token})
        assert response.status == 303
        _, page = client.request("GET", "/ui/software")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        response, _ = client.form("/ui/software/modules", {
            "csrf": csrf, "type": "os", "name": "big", "version": "1"})
        module_path = urllib.parse.urlsplit(response.getheader("Location")).path
        body = Body(SIZE, os.urandom(MiB))
        baseline = live.rss_bytes(server.process.pid)
        with live.RssSampler(server.process.pid) as sampler:
            response, text = client.request(
                "POST", "%s/artifacts?csrf=%s" % (module_path, csrf), iter(body),
                {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY,
                 "Content-Length": str(body.length), "Accept": "application/json"})
        assert response.status == 201, text
        assert sampler.peak - baseline < GROWTH_LIMIT, \
            "the server grew by %d MiB" % ((sampler.peak - baseline) // MiB)
        _, page = client.request("GET", module_path)
        assert body.sha256.hexdigest() in page and "256.0 MiB" in page
    finally:
        server.stop()


def test_an_upload_without_a_session_or_its_token_is_refused_before_its_body(tmp_path):
    """The server answers on the headers alone (its body gate asks the console first), so
    no one without a session makes it spool a byte; none is sent here."""
    server = live.DdiLite(tmp_path / "server", threads=2)
    try:
        client = Browserless(server)
        headers = {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY,
                   "Content-Length": str(SIZE), "Accept": "application/json"}
        response, text = client.request("POST", "/ui/software/modules/1/artifacts?csrf=x",
                                        None, headers)
        assert response.status == 401 and "sign in" in text
        client = Browserless(server)
        _, page = client.request("GET", "/ui/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        client.form("/ui/signin", {"user": "admin", "password": "admin", "csrf": token})
        response, text = client.request("POST", "/ui/software/modules/1/artifacts?csrf=x",
                                        None, headers)
        assert response.status == 403 and "expired" in text
    finally:
        server.stop()

