"""A real ddi-lite process streams a 64 MiB artifact without holding it in memory.

The server runs as its own process (Waitress, two threads). The test seeds the data directory
first, warms the server up with a small artifact, then fetches the large artifact in full, as a
range near its end and as a suffix range over one keep-alive connection, while a thread samples
the server's VmRSS every 20 ms. Memory is measured from /proc, never assumed.
"""

import hashlib
import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pytest

import artifacts
import ddi_lite
import live
import storage
from storage import assignments, catalog, tenant
from storage.db import write

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="needs /proc/<pid>/status to measure the server's RSS")

MiB = 1024 * 1024
SMALL_SIZE = 1 * MiB
LARGE_SIZE = 64 * MiB
GROWTH_LIMIT = 16 * MiB
TAIL_START = LARGE_SIZE - MiB
SUFFIX_LENGTH = 3 * MiB + 17
CONTROLLER = "mem-1"
TOKEN = "mem-token"
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP_TIMEOUT = 10.0


class GeneratedStream:
    """A file-like `read(n)` over a generator of chunks: the test never holds the artifact."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._pending = b""

    def read(self, n=-1):
        while len(self._pending) < n or n < 0:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        if n < 0:
            n = len(self._pending)
        data, self._pending = self._pending[:n], self._pending[n:]
        return data


def pseudo_random_chunks(size, seed, chunk_size=MiB):
    generator = random.Random(seed)
    remaining = size
    while remaining:
        length = min(chunk_size, remaining)
        yield generator.randbytes(length)
        remaining -= length


def seed(config_path):
    """Target, one module with a small and a large artifact, assigned; returns the facts."""
    config = ddi_lite.load_config(path=config_path, environ={})
    ddi_lite.create_app(config)  # opens (creates) the store in the data directory
    try:
        now = int(time.time() * 1000)
        tenant.store({"authentication.targettoken.enabled": True}, "test")
        target = catalog.create_target(CONTROLLER, now, "admin", security_token=TOKEN)
        module = catalog.create_module("os", "big-fw", "1.0", now, "admin")
        blobs = artifacts.BlobStore(os.path.join(config["server", "data_dir"], "artifacts"))
        stored = {}
        for filename, size, seed_value in (("small.bin", SMALL_SIZE, 1),
                                           ("large.bin", LARGE_SIZE, 2)):
            blob = blobs.put(GeneratedStream(pseudo_random_chunks(size, seed_value)))
            catalog.add_artifact(module, filename, blob, now, "admin")
            stored[filename] = (blob, blobs.path(blob.sha1))
        distribution_set = catalog.create_distribution_set("big-set", "1.0", [module.id], now,
                                                           "admin")
        with write():
            assignments.assign(distribution_set, target, now, "admin")
        return module.id, stored
    finally:
        storage.close_store()


class RunningServer:
    def __init__(self, process, port, module_id, stored, log_path):
        self.process = process
        self.port = port
        self.module_id = module_id
        self.stored = stored
        self.log_path = log_path

    @property
    def pid(self):
        return self.process.pid

    def path(self, filename):
        return "/DEFAULT/controller/v1/%s/softwaremodules/%d/artifacts/%s" % (
            CONTROLLER, self.module_id, filename)

    def log(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-4000:]


def wait_until_listening(process, port, log_path):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, errors="replace") as handle:
                raise AssertionError("ddi-lite exited with %s:\n%s"
                                     % (process.returncode, handle.read()[-4000:]))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("ddi-lite did not accept connections on port %d within %.0f s"
                         % (port, STARTUP_TIMEOUT))


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    base = tmp_path_factory.mktemp("download-memory")
    data_dir = str(base / "data")
    port = live.free_port()
    config_path = str(base / "config.ini")
    with open(config_path, "w") as config_file:
        config_file.write("[server]\nhost = 127.0.0.1\nport = %d\ndata_dir = %s\nthreads = 2\n"
                          "[ddi]\ntarget_token_auth = true\n" % (port, data_dir))
    module_id, stored = seed(config_path)

    log_path = str(base / "server.log")
    environment = live.server_environment(data_dir)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ddi_lite", "serve", "--data-dir", data_dir,
             "--host", "127.0.0.1", "--port", str(port), "--threads", "2",
             "--config", config_path],
            cwd=PROJECT_DIR, env=environment, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT)
    try:
        wait_until_listening(process, port, log_path)
        yield RunningServer(process, port, module_id, stored, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(data_dir, ignore_errors=True)  # 65 MiB of blobs


class Fetched:
    def __init__(self, status, headers, length, sha256, head):
        self.status = status
        self.headers = headers
        self.length = length
        self.sha256 = sha256
        self.head = head  # the first bytes only, for error messages


def fetch(connection, path, sockets, **headers):
    """One GET over the kept-alive connection, hashed while it streams."""
    headers = dict({"Authorization": "TargetToken " + TOKEN}, **headers)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    digest = hashlib.sha256()
    length = 0
    head = b""
    while True:
        chunk = response.read(MiB)
        if not chunk:
            break
        if not head:
            head = chunk[:200]
        digest.update(chunk)
        length += len(chunk)
    result = Fetched(response.status, {k.lower(): v for k, v in response.getheaders()}, length,
                     digest.hexdigest(), head)
    sockets.append(connection.sock)
    return result


def file_slice_sha256(path, first, length):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(first)
        remaining = length
        while remaining:
            chunk = handle.read(min(MiB, remaining))
            assert chunk, "blob shorter than expected"
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def transfers(running):
    """Warm up, measure, then the three large transfers under the sampler; all the numbers."""
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
    sockets = []
    try:
        warm_up = [fetch(connection, running.path("small.bin"), sockets) for _ in range(2)]
        warm_up.append(fetch(connection, running.path("small.bin"), sockets,
                             Range="bytes=%d-" % (SMALL_SIZE - 65536)))
        warm_up.append(fetch(connection, running.path("small.bin"), sockets,
                             Range="bytes=-4096"))
        time.sleep(0.2)
        baseline = live.rss_bytes(running.pid)
        hwm_reset = live.reset_peak_rss(running.pid)
        with live.RssSampler(running.pid) as sampler:
            full = fetch(connection, running.path("large.bin"), sockets)
            tail = fetch(connection, running.path("large.bin"), sockets,
                         Range="bytes=%d-" % TAIL_START)
            suffix = fetch(connection, running.path("large.bin"), sockets,
                           Range="bytes=-%d" % SUFFIX_LENGTH)
        time.sleep(0.2)
        after = live.rss_bytes(running.pid)
        peak_hwm = live.rss_bytes(running.pid, "VmHWM") if hwm_reset else None
    finally:
        connection.close()
    return {"warm_up": warm_up, "full": full, "tail": tail, "suffix": suffix,
            "sockets": sockets, "baseline": baseline, "after": after,
            "samples": sampler.samples, "peak_hwm": peak_hwm}


def figures(transfers):
    samples = transfers["samples"]
    return ("baseline VmRSS %.1f MiB, after %.1f MiB, sampled peak %.1f MiB over %d samples, "
            "VmHWM %s, artifact %d MiB"
            % (transfers["baseline"] / MiB, transfers["after"] / MiB,
               max(samples) / MiB if samples else float("nan"), len(samples),
               "n/a" if transfers["peak_hwm"] is None
               else "%.1f MiB" % (transfers["peak_hwm"] / MiB), LARGE_SIZE // MiB))


# --- the bytes -------------------------------------------------------------------------------

def test_small_warm_up_download_is_byte_exact(running, transfers):
    blob, _ = running.stored["small.bin"]
    first = transfers["warm_up"][0]
    assert (first.status, first.length, first.sha256) == (200, SMALL_SIZE, blob.sha256)


def test_large_full_download_is_byte_exact(running, transfers):
    blob, _ = running.stored["large.bin"]
    full = transfers["full"]

    assert full.status == 200, full.head
    assert full.headers["content-length"] == str(LARGE_SIZE)
    assert full.length == LARGE_SIZE
    assert full.sha256 == blob.sha256


def test_large_full_download_is_not_chunked(transfers):
    assert "transfer-encoding" not in transfers["full"].headers
    assert transfers["full"].headers["content-length"] == str(LARGE_SIZE)


def test_range_near_end_of_large_artifact_is_byte_exact(running, transfers):
    _, path = running.stored["large.bin"]
    tail = transfers["tail"]

    assert tail.status == 206, tail.head
    assert tail.headers["content-range"] == "bytes %d-%d/%d" % (TAIL_START, LARGE_SIZE - 1,
                                                                LARGE_SIZE)
    assert tail.headers["content-length"] == str(MiB)
    assert tail.length == MiB
    assert tail.sha256 == file_slice_sha256(path, TAIL_START, MiB)


def test_suffix_range_of_large_artifact_is_byte_exact(running, transfers):
    _, path = running.stored["large.bin"]
    suffix = transfers["suffix"]
    first = LARGE_SIZE - SUFFIX_LENGTH

    assert suffix.status == 206, suffix.head
    assert suffix.headers["content-range"] == "bytes %d-%d/%d" % (first, LARGE_SIZE - 1,
                                                                  LARGE_SIZE)
    assert suffix.length == SUFFIX_LENGTH
    assert suffix.sha256 == file_slice_sha256(path, first, SUFFIX_LENGTH)


def test_all_downloads_share_one_keep_alive_connection(transfers):
    sockets = transfers["sockets"]
    assert len(sockets) == 7
    assert sockets[0] is not None
    assert all(sock is sockets[0] for sock in sockets)


# --- the memory ------------------------------------------------------------------------------

def test_rss_growth_after_large_transfers_is_far_below_artifact_size(running, transfers):
    growth = transfers["after"] - transfers["baseline"]
    assert growth < GROWTH_LIMIT, "RSS grew by %.1f MiB: %s" % (growth / MiB, figures(transfers))


def test_sampled_peak_rss_during_large_transfers_is_far_below_artifact_size(transfers):
    samples = transfers["samples"]
    assert len(samples) >= 3, "too few RSS samples: %s" % figures(transfers)
    growth = max(samples) - transfers["baseline"]
    assert growth < GROWTH_LIMIT, ("peak RSS %.1f MiB above baseline: %s"
                                   % (growth / MiB, figures(transfers)))


def test_kernel_peak_rss_during_large_transfers_is_far_below_artifact_size(transfers):
    if transfers["peak_hwm"] is None:
        pytest.skip("the kernel does not let /proc/<pid>/clear_refs reset VmHWM")
    growth = transfers["peak_hwm"] - transfers["baseline"]
    assert growth < GROWTH_LIMIT, ("VmHWM %.1f MiB above baseline: %s"
                                   % (growth / MiB, figures(transfers)))


def test_server_is_still_running_after_large_transfers(running, transfers):
    assert running.process.poll() is None, running.log()
