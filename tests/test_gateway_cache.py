"""The gateway's artifact cache against a real HTTP upstream on loopback: one upstream
transfer however many devices read, resumption, hash checks, ranges while filling, eviction,
restarts. Devices read the WSGI answers directly, or through a real Waitress server where
what matters is what a device sees on the wire."""

import hashlib
import http.client
import http.server
import json
import os
import random
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest
import waitress.server

import live
from clients.harness import Operator
from clients.proxy import RecordingProxy

from artifacts.serve import file_response
from gateway.cache import ArtifactCache

SIZE = 600 * 1024
WAIT = 10.0


def artifact_bytes(seed, size=SIZE):
    return random.Random(seed).randbytes(size)


def hashes_of(content):
    return {"sha1": hashlib.sha1(content).hexdigest(), "md5": hashlib.md5(content).hexdigest(),
            "sha256": hashlib.sha256(content).hexdigest()}


class Upstream:
    """A stdlib HTTP server holding artifacts at /<name>, with faults to order: a transfer
    cut after some bytes, a range ignored (200), a gate that holds a transfer mid-way, wrong
    bytes, slowness. It counts requests and body bytes sent."""

    def __init__(self, tls=None):
        self.scheme = "https" if tls else "http"
        self.artifacts = {}
        self.requests = []  # (path, Range header or None)
        self.authorizations = []
        self.bytes_sent = 0
        self.cuts = []  # per request in turn: cut the body after this many bytes
        self.errors = []  # per request in turn: answer this status instead
        self.redirects = {}  # name: where /name redirects to
        self.ignore_range = False
        self.gate_at = None  # hold every body at this byte until `gate` is set
        self.gate = threading.Event()
        self.delay_per_chunk = 0.0
        self.lock = threading.Lock()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                upstream.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, name):
        return "%s://127.0.0.1:%d/%s" % (self.scheme, self.server.server_port, name)

    def answer(self, handler):
        content = self.artifacts.get(handler.path.lstrip("/"))
        range_header = handler.headers.get("Range")
        with self.lock:
            self.requests.append((handler.path, range_header))
            self.authorizations.append(handler.headers.get("Authorization"))
            error = self.errors.pop(0) if self.errors else None
            cut = self.cuts.pop(0) if self.cuts else None
        if handler.path.lstrip("/") in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[handler.path.lstrip("/")])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if error:
            handler.send_error(error)
            return
        if content is None:
            handler.send_error(404)
            return
        start = 0
        if range_header and not self.ignore_range:
            start = int(range_header[len("bytes="):].rstrip("-"))
            handler.send_response(206)
            handler.send_header("Content-Range",
                                "bytes %d-%d/%d" % (start, len(content) - 1, len(content)))
        else:
            handler.send_response(200)
        handler.send_header("Content-Length", str(len(content) - start))
        handler.end_headers()
        position, end = start, len(content) if cut is None else min(start + cut, len(content))
        while position < end:
            if self.gate_at is not None and position >= self.gate_at:
                self.gate.wait(WAIT)
            stop = min(end, position + 32 * 1024)
            if self.gate_at is not None and position < self.gate_at:
                stop = min(stop, self.gate_at)
            try:
                handler.wfile.write(content[position:stop])
                handler.wfile.flush()
            except OSError:
                return
            with self.lock:
                self.bytes_sent += stop - position
            position = stop
            if self.delay_per_chunk:
                time.sleep(self.delay_per_chunk)
        if cut is not None:
            handler.close_connection = True

    def stop(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.stop()


@pytest.fixture
def make_cache(tmp_path):
    caches = []

    def make(max_bytes=10 * SIZE, in_use=lambda: set(), **options):
        options.setdefault("timeout", 5.0)
        options.setdefault("backoff", 0.02)
        cache = ArtifactCache(str(tmp_path / "cache"), max_bytes, in_use, **options)
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()


def offer(upstream, name, content):
    upstream.artifacts[name] = content
    return hashes_of(content)


def fetch(cache, upstream, name, content, hashes=None):
    digests = hashes_of(content)
    return cache.fetch(digests["sha1"], len(content), digests if hashes is None else hashes,
                       upstream.url(name), {"Authorization": "GatewayToken secret"})


def download(entry, headers=None, method="GET"):
    environ = {"REQUEST_METHOD": method}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value
                    for name, value in (headers or {}).items()})
    status, response_headers, body = entry.response(environ, "firmware.bin")
    return status, dict(response_headers), b"".join(body)


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what + " did not happen"
        time.sleep(0.01)


def wait_complete(entry):
    wait_for(lambda: entry.complete or entry.state == "failed", "completion")
    assert entry.complete, entry.error


def test_twenty_readers_of_a_filling_entry_share_one_upstream_transfer(upstream, make_cache):
    content = artifact_bytes(1)
    offer(upstream, "a", content)
    upstream.gate_at = SIZE // 3
    cache = make_cache()
    results = [None] * 20

    def device(index):
        entry = fetch(cache, upstream, "a", content)
        results[index] = download(entry)

    devices = [threading.Thread(target=device, args=(index,)) for index in range(20)]
    for thread in devices:
        thread.start()
    wait_for(lambda: cache.stats()["hits"] + cache.stats()["misses"] == 20, "20 fetches")
    assert not cache.get(hashes_of(content)["sha1"]).complete  # all 20 are reading it filling
    upstream.gate.set()
    for thread in devices:
        thread.join(WAIT)
    assert [result[0] for result in results] == ["200 OK"] * 20
    assert all(result[2] == content for result in results)
    assert len(upstream.requests) == 1
    assert upstream.bytes_sent == SIZE
    stats = cache.stats()
    assert (stats["upstream_requests"], stats["bytes_from_upstream"]) == (1, SIZE)
    assert (stats["misses"], stats["hits"], stats["bytes_served"]) == (1, 19, 20 * SIZE)


def test_cut_transfer_resumes_with_range_and_fetches_each_byte_once(upstream, make_cache):
    content = artifact_bytes(2)
    offer(upstream, "a", content)
    upstream.cuts = [200 * 1024, 150 * 1024]
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    wait_complete(entry)
    assert upstream.requests == [("/a", None), ("/a", "bytes=204800-"),
                                 ("/a", "bytes=358400-")]
    assert upstream.bytes_sent == SIZE
    assert cache.stats()["bytes_from_upstream"] == SIZE
    assert download(entry)[2] == content


def test_upstream_answering_200_to_a_range_starts_over_and_completes(upstream, make_cache):
    content = artifact_bytes(3)
    offer(upstream, "a", content)
    upstream.cuts = [100 * 1024]
    upstream.ignore_range = True
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    wait_complete(entry)
    assert upstream.requests == [("/a", None), ("/a", "bytes=102400-")]
    assert download(entry)[2] == content


def test_transfer_gives_up_after_attempts_without_progress_and_next_fetch_resumes(
        upstream, make_cache):
    content = artifact_bytes(4)
    offer(upstream, "a", content)
    upstream.cuts = [100 * 1024, 0, 0]
    cache = make_cache(attempts=3)
    entry = fetch(cache, upstream, "a", content)
    wait_for(lambda: entry.state == "failed", "giving up")
    assert len(upstream.requests) == 3  # progress, then two attempts without any
    assert cache.get(entry.sha1) is None
    assert cache.contents()[0]["state"] == "partial"
    again = fetch(cache, upstream, "a", content)
    wait_complete(again)
    assert upstream.requests[-1] == ("/a", "bytes=102400-")
    assert upstream.bytes_sent == SIZE


def test_wrong_bytes_are_never_served_whole_nor_kept(upstream, make_cache):
    content = artifact_bytes(5)
    wrong = bytearray(content)
    wrong[1000] ^= 0xFF
    upstream.artifacts["a"] = bytes(wrong)
    upstream.gate_at = SIZE // 2
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    reading = {}
    reader = threading.Thread(target=lambda: reading.update(answer=download(entry)))
    reader.start()
    wait_for(lambda: entry.received >= SIZE // 2, "half the bytes")
    upstream.gate.set()
    reader.join(WAIT)
    status, headers, body = reading["answer"]
    assert status == "200 OK" and headers["Content-Length"] == str(SIZE)
    assert len(body) == SIZE - 1  # the last byte waited for the check, which failed
    assert entry.state == "failed" and "sha256" in entry.error
    assert cache.get(entry.sha1) is None
    assert cache.stats()["errors"] == 1
    assert os.listdir(cache.root) == ["partial"] and os.listdir(cache.root + "/partial") == []
    assert download(entry)[0] == "503 Service Unavailable"

    upstream.artifacts["a"] = content  # upstream fixed: a later fetch starts over
    again = fetch(cache, upstream, "a", content)
    wait_complete(again)
    assert upstream.requests[-1] == ("/a", None)
    assert download(again)[2] == content


def test_wrong_size_from_upstream_fails_the_transfer(upstream, make_cache):
    content = artifact_bytes(6)
    upstream.artifacts["a"] = content + b"x"
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    wait_for(lambda: entry.state == "failed", "failure")
    assert "expected" in entry.error and len(upstream.requests) == 1


def test_ranges_and_if_range_while_filling_and_complete(upstream, make_cache, tmp_path):
    content = artifact_bytes(7)
    offer(upstream, "a", content)
    upstream.gate_at = 100 * 1024
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    wait_for(lambda: entry.received >= 100 * 1024, "the first bytes")
    etag = '"%s"' % entry.sha1

    # Bytes already there are served while the rest has not arrived.
    status, headers, body = download(entry, {"Range": "bytes=10-99"})
    assert status == "206 Partial Content"
    assert headers["Content-Range"] == "bytes 10-99/%d" % SIZE and body == content[10:100]
    validators_while_filling = (headers["ETag"], headers["Last-Modified"])

    answers = {}
    waiting = [
        ("tail", {"Range": "bytes=-1000"}),
        ("multi", {"Range": "bytes=0-9,300000-300009"}),
        ("if-range-etag", {"Range": "bytes=200000-", "If-Range": etag}),
        ("if-range-other", {"Range": "bytes=200000-", "If-Range": '"other"'}),
    ]
    readers = [threading.Thread(target=lambda key=key, headers=headers:
                                answers.update({key: download(entry, headers)}))
               for key, headers in waiting]
    for reader in readers:
        reader.start()
    time.sleep(0.1)
    assert answers == {}  # all wait for bytes upstream has not sent yet
    upstream.gate.set()
    for reader in readers:
        reader.join(WAIT)
    assert answers["tail"][0] == "206 Partial Content" and answers["tail"][2] == content[-1000:]
    multi_status, multi_headers, multi_body = answers["multi"]
    assert multi_status == "206 Partial Content"
    assert multi_headers["Content-Type"].startswith("multipart/byteranges")
    assert content[:10] in multi_body and content[300000:300010] in multi_body
    assert len(multi_body) == int(multi_headers["Content-Length"])
    assert answers["if-range-etag"][2] == content[200000:]
    assert answers["if-range-other"][0] == "200 OK" and answers["if-range-other"][2] == content

    # Complete: the same headers as a local artifact gets from artifacts/serve.py.
    wait_complete(entry)
    local = tmp_path / "local"
    local.write_bytes(content)
    for request in ({}, {"range": "bytes=5-9"}, {"range": "bytes=%d-" % SIZE}):
        expected = file_response(str(local), SIZE, entry.sha1, entry.last_modified_ms,
                                 "firmware.bin", "GET", request)
        status, headers, body = download(entry, request)
        assert int(status.split()[0]) == expected.status
        assert headers == dict(expected.headers)
        assert body == b"".join(expected.body)
    assert (headers["ETag"], headers["Last-Modified"]) == validators_while_filling
    # A device that began while the artifact was filling resumes by date as well as by ETag.
    status, headers, body = download(entry, {"If-Range": validators_while_filling[1],
                                             "Range": "bytes=0-0"})
    assert (status, body) == ("206 Partial Content", content[:1])
    status, headers, body = download(entry, method="HEAD")
    assert (status, headers["Content-Length"], body) == ("200 OK", str(SIZE), b"")


def test_md5sum_file_is_served_from_upstreams_md5(upstream, make_cache):
    content = artifact_bytes(8)
    offer(upstream, "a", content)
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    status, headers, body = entry.md5sum_response("firmware.bin")
    assert status == "200 OK"
    assert b"".join(body) == ("%s  firmware.bin" % hashes_of(content)["md5"]).encode()


def test_eviction_removes_least_recently_used_first_never_pinned_or_filling(
        upstream, make_cache):
    contents = {name: artifact_bytes(10 + index) for index, name in enumerate("abcd")}
    for name, content in contents.items():
        offer(upstream, name, content)
    pinned = set()
    cache = make_cache(max_bytes=3 * SIZE, in_use=lambda: set(pinned))
    sha1 = {name: hashes_of(content)["sha1"] for name, content in contents.items()}
    for name in "abc":
        wait_complete(fetch(cache, upstream, name, contents[name]))
        time.sleep(0.01)  # distinct last-use times
    cache.get(sha1["a"])  # a is now used more recently than b
    pinned.add(sha1["b"])  # ... but b belongs to an open action
    wait_complete(fetch(cache, upstream, "d", contents["d"]))
    kept = {item["sha1"] for item in cache.contents()}
    assert kept == {sha1["a"], sha1["b"], sha1["d"]}  # c, the least recently used unpinned
    assert not os.path.exists(os.path.join(cache.root, sha1["c"]))
    assert cache.stats()["size_bytes"] == 3 * SIZE
    assert [item["pinned"] for item in cache.contents() if item["sha1"] == sha1["b"]] == [True]

    pinned.clear()
    upstream.gate_at = 1024
    filling = fetch(cache, upstream, "c", contents["c"])  # room for c: b goes now
    assert {item["sha1"] for item in cache.contents()} == {sha1["a"], sha1["c"], sha1["d"]}
    assert not filling.complete
    upstream.gate.set()
    wait_complete(filling)


def test_artifact_bigger_than_the_limit_is_kept_while_pinned_and_served_meanwhile(
        upstream, make_cache):
    content = artifact_bytes(20)
    offer(upstream, "a", content)
    pinned = {hashes_of(content)["sha1"]}
    cache = make_cache(max_bytes=SIZE // 2, in_use=lambda: set(pinned))
    entry = fetch(cache, upstream, "a", content)
    wait_complete(entry)
    assert cache.get(entry.sha1) is entry
    status, headers, body = entry.response({"REQUEST_METHOD": "GET"}, "firmware.bin")
    pinned.clear()
    cache.evict()  # as the gateway does when actions close
    assert cache.get(entry.sha1) is None
    assert b"".join(body) == content  # a download already under way finishes


def test_restart_keeps_complete_artifacts_and_resumes_partial_ones(upstream, make_cache):
    complete, partial = artifact_bytes(30), artifact_bytes(31)
    offer(upstream, "complete", complete)
    offer(upstream, "partial", partial)
    first = make_cache()
    done = fetch(first, upstream, "complete", complete)
    wait_complete(done)
    upstream.gate_at = 250 * 1024
    filling = fetch(first, upstream, "partial", partial)
    wait_for(lambda: filling.received >= 250 * 1024, "a part")
    first.close()
    assert filling.state == "partial"
    upstream.gate_at = None
    sent_before = upstream.bytes_sent

    second = make_cache()
    kept = second.get(done.sha1)
    assert kept.complete and kept.last_modified_ms == done.last_modified_ms
    assert download(kept)[2] == complete
    assert kept.md5sum_response("f")[0] == "200 OK"
    assert second.get(filling.sha1) is None  # a partial file is never served as complete
    assert {item["sha1"]: item["state"] for item in second.contents()} == {
        done.sha1: "complete", filling.sha1: "partial"}
    resumed = fetch(second, upstream, "partial", partial)
    wait_complete(resumed)
    assert upstream.requests[-1] == ("/partial", "bytes=%d-" % (250 * 1024))
    assert upstream.bytes_sent - sent_before == SIZE - 250 * 1024
    assert download(resumed)[2] == partial


def test_restart_drops_files_that_are_not_whole_artifacts(tmp_path, make_cache):
    root = tmp_path / "cache"
    (root / "partial").mkdir(parents=True)
    sha1 = "a" * 40
    (root / sha1).write_bytes(b"no description, so not known to be checked")
    (root / ("b" * 40 + ".json")).write_text('{"size": 1}')
    (root / ("c" * 40 + ".json.tmp")).write_text('{"size"')
    (root / "partial" / ("d" * 40)).write_bytes(b"resumable")
    (root / "partial" / "not-a-sha1").write_bytes(b"ignored")
    cache = make_cache()
    assert cache.get(sha1) is None
    assert [(item["sha1"], item["state"]) for item in cache.contents()] == [("d" * 40,
                                                                             "partial")]
    assert sorted(os.listdir(root)) == ["partial"]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 40, "a" * 39, "a" * 41,
                                 "g" * 40, "a" * 39 + "\n", None, 7])
def test_bad_sha1_strings_are_rejected(make_cache, bad):
    cache = make_cache()
    with pytest.raises(ValueError):
        cache.fetch(bad, 10, {}, "http://127.0.0.1:9/x", {})
    with pytest.raises(ValueError):
        cache.get(bad)


@pytest.mark.parametrize("hashes", [{"sha512": "0" * 128}, {"md5": "xyz"},
                                    {"sha1": "b" * 40}, {"sha256": "0" * 63}])
def test_bad_hashes_are_rejected(make_cache, hashes):
    with pytest.raises(ValueError):
        make_cache().fetch("a" * 40, 10, hashes, "http://127.0.0.1:9/x", {})


def test_upstream_authentication_goes_upstream_and_to_redirects_on_the_same_host_only(
        upstream, make_cache):
    content = artifact_bytes(40)
    offer(upstream, "a", content)
    port = upstream.server.server_port
    upstream.redirects = {"same": "/a", "elsewhere": "http://localhost:%d/a" % port}
    cache = make_cache()
    wait_complete(fetch(cache, upstream, "same", content))
    assert upstream.authorizations == ["GatewayToken secret"] * 2
    other = artifact_bytes(41)
    upstream.artifacts["a"] = other
    wait_complete(fetch(cache, upstream, "elsewhere", other))
    assert upstream.authorizations[2:] == ["GatewayToken secret", None]
    assert cache.stats()["upstream_requests"] == 4


def test_upstream_busy_is_tried_again_after_a_back_off(upstream, make_cache):
    content = artifact_bytes(42)
    offer(upstream, "a", content)
    upstream.errors = [503, 502]
    cache = make_cache()
    entry = fetch(cache, upstream, "a", content)
    wait_complete(entry)
    assert len(upstream.requests) == 3 and cache.stats()["upstream_requests"] == 3


def test_unreachable_upstream_is_given_up_after_the_attempts(make_cache):
    cache = make_cache(attempts=3)
    entry = cache.fetch("d" * 40, 10, {}, "http://127.0.0.1:%d/a" % live.free_port(), {})
    wait_for(lambda: entry.state == "failed", "giving up")
    assert "unreachable" in entry.error
    assert cache.stats()["upstream_requests"] == 3 and cache.stats()["errors"] == 1


def test_not_found_upstream_fails_at_once(upstream, make_cache):
    cache = make_cache()
    entry = cache.fetch("c" * 40, 10, {}, upstream.url("missing"), {})
    wait_for(lambda: entry.state == "failed", "failure")
    assert "404" in entry.error and len(upstream.requests) == 1


@pytest.fixture
def device_server(make_cache):
    """A real Waitress server answering GET /<sha1> from the cache that `serve` names."""
    serving = {}

    def app(environ, start_response):
        entry = serving["cache"].get(environ["PATH_INFO"].lstrip("/"))
        status, headers, body = entry.response(environ, "firmware.bin")
        start_response(status, headers)
        return body

    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield serving, server.effective_port
    server.close()


def test_device_sees_a_short_read_when_upstream_fails_for_good(upstream, make_cache,
                                                                device_server):
    serving, port = device_server
    content = artifact_bytes(50)
    offer(upstream, "a", content)
    upstream.gate_at = 64 * 1024
    upstream.cuts = [128 * 1024, 0]
    cache = serving["cache"] = make_cache(attempts=2)
    entry = fetch(cache, upstream, "a", content)
    wait_for(lambda: entry.received >= 64 * 1024, "the first bytes")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    connection.request("GET", "/" + entry.sha1)
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == str(SIZE)
    upstream.gate.set()
    with pytest.raises(http.client.IncompleteRead) as short:
        response.read()
    assert short.value.partial == content[:128 * 1024]
    connection.close()


def test_a_stalled_upstream_ends_the_devices_download_after_the_timeout(upstream, make_cache):
    content = artifact_bytes(51)
    offer(upstream, "a", content)
    upstream.gate_at = 64 * 1024
    cache = make_cache(timeout=0.3)
    entry = fetch(cache, upstream, "a", content)
    started = time.monotonic()
    status, headers, body = download(entry)
    assert body == content[:64 * 1024]
    assert time.monotonic() - started < 3


def test_close_stops_transfers_and_wakes_readers(upstream, make_cache):
    content = artifact_bytes(52)
    offer(upstream, "a", content)
    upstream.gate_at = 64 * 1024
    cache = make_cache(timeout=WAIT)
    entry = fetch(cache, upstream, "a", content)
    answers = []
    reader = threading.Thread(target=lambda: answers.append(download(entry)))
    reader.start()
    wait_for(lambda: entry.received >= 64 * 1024, "the first bytes")
    started = time.monotonic()
    cache.close()
    reader.join(WAIT)
    assert time.monotonic() - started < 3
    assert answers[0][2] == content[:64 * 1024]
    assert entry.state == "partial"


def test_many_readers_with_random_ranges_get_exact_bytes_from_a_cut_slow_transfer(
        upstream, make_cache):
    content = artifact_bytes(60)
    offer(upstream, "a", content)
    upstream.cuts = [150 * 1024, 100 * 1024]
    upstream.delay_per_chunk = 0.005
    cache = make_cache()
    failures = []

    def device(seed):
        chooser = random.Random(seed)
        first = chooser.randrange(SIZE)
        last = chooser.randrange(first, SIZE)
        entry = fetch(cache, upstream, "a", content)
        status, headers, body = download(entry, {"Range": "bytes=%d-%d" % (first, last)})
        if (status, body) != ("206 Partial Content", content[first:last + 1]):
            failures.append((seed, status, first, last, len(body)))

    devices = [threading.Thread(target=device, args=(seed,)) for seed in range(40)]
    for thread in devices:
        thread.start()
    for thread in devices:
        thread.join(WAIT)
    assert failures == []
    assert len(upstream.requests) == 3 and upstream.bytes_sent == SIZE


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl(1)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "upstream.crt", tmp_path / "upstream.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return str(cert), str(key)


def test_https_upstream_is_verified_against_the_given_ca(certificate, make_cache):
    cert, key = certificate
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    upstream = Upstream(tls=tls)
    try:
        content = artifact_bytes(70)
        offer(upstream, "a", content)
        untrusting = make_cache(attempts=1)
        refused = fetch(untrusting, upstream, "a", content)
        wait_for(lambda: refused.state == "failed", "refusal")
        assert "CERTIFICATE_VERIFY_FAILED" in refused.error
        untrusting.close()
        trusting = make_cache(ssl_context=ssl.create_default_context(cafile=cert))
        entry = fetch(trusting, upstream, "a", content)
        wait_complete(entry)
        assert download(entry)[2] == content
    finally:
        upstream.stop()


def ddi_get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": "TargetToken " + token,
                                                   "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return json.loads(response.read().decode("utf-8"))


def test_a_real_ddi_lite_upstream_cut_mid_way_is_resumed_with_range(tmp_path, make_cache):
    """What a device of upstream sees: its deployment's artifact, with its hashes and link,
    fetched with its TargetToken through a proxy that cuts the first download."""
    content = artifact_bytes(80, 1024 * 1024)
    server = live.DdiLite(tmp_path / "upstream")
    proxy = None
    try:
        operator = Operator(server.url)
        operator.add_target("dev-1", token="dev-1-token")
        operator.assign(operator.distribution("os", {"firmware.bin": content}), "dev-1")
        base = ddi_get(server.url + "/DEFAULT/controller/v1/dev-1", "dev-1-token")
        deployment = ddi_get(base["_links"]["deploymentBase"]["href"], "dev-1-token")
        artifact = deployment["deployment"]["chunks"][0]["artifacts"][0]
        proxy = RecordingProxy(server.port, cut_download_after=300 * 1024)
        href = artifact["_links"]["download-http"]["href"].replace(server.url, proxy.url)

        cache = make_cache()
        entry = cache.fetch(artifact["hashes"]["sha1"], artifact["size"], artifact["hashes"],
                            href, {"Authorization": "TargetToken dev-1-token"})
        wait_complete(entry)
        assert download(entry)[2] == content
        downloads = proxy.requests("GET", "/artifacts/firmware.bin")
        assert [(exchange.status, exchange.headers.get("range"), exchange.cut)
                for exchange in downloads] == [(200, None, True),
                                               (206, "bytes=%d-" % (300 * 1024), False)]
        assert sum(exchange.sent_body_bytes for exchange in downloads) == len(content)
    finally:
        if proxy is not None:
            proxy.close()
        server.stop()
