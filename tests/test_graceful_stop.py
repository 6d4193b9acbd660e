"""`ddi-lite serve` stops gracefully on SIGTERM: it takes no new connection at once, lets the
requests in flight finish within [server] stop_timeout (a second SIGTERM, or the bound, ends
them), commits what it answered, and exits 0.

Each test seeds a data directory through `storage/`, starts a real server process on it
(tests/live.py) and talks to it over sockets: what happens between a signal, the event loop
and a client cannot be seen in-process. A download of 16 MiB read by a client that pauses
stays in flight for as long as the test likes: no socket buffer holds it whole.
"""

import hashlib
import http.client
import os
import signal
import socket
import time

import pytest
from conftest import Server
from live import DdiLite, wait_until

import database
import ddi_lite
import storage

ARTIFACT = os.urandom(16 * 1024 * 1024)
CONTROLLER = "dev-1"
TOKEN = "token-1"


def seeded(directory):
    """A data directory with CONTROLLER, assigned a set whose module holds ARTIFACT; the
    module's id."""
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(directory / "data")})
    server = Server(config)
    try:
        server.configure(**{"authentication.targettoken.enabled": True})
        server.target(CONTROLLER, TOKEN)
        module = server.module(files={"big.bin": ARTIFACT})
        server.assign(server.distribution_set([module]), CONTROLLER)
        return module.id
    finally:
        storage.close_store()


def start(directory, stop_timeout):
    module_id = seeded(directory)
    return DdiLite(directory, ["stop_timeout = %d" % stop_timeout]), module_id


class SlowDownload:
    """A raw connection downloading the artifact, read only when the test says so."""

    def __init__(self, server, module_id):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.socket.settimeout(10)
        self.socket.connect(("127.0.0.1", server.port))
        self.socket.sendall((
            "GET /DEFAULT/controller/v1/%s/softwaremodules/%d/artifacts/big.bin HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nAuthorization: TargetToken %s\r\n\r\n"
            % (CONTROLLER, module_id, TOKEN)).encode("ascii"))
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            self.received += self.socket.recv(4096)
        head, _, self.received = self.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head

    def read_to_end(self):
        """The body as far as it comes, until the server closes the connection."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        while True:
            try:
                chunk = self.socket.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.received += chunk
        self.socket.close()
        return self.received


def refuses_connections(port):
    """Whether a connect is refused. A connect that meets the listening socket as it closes
    is reset instead (the kernel resets what waited in its backlog): not yet an answer."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False
    return False


def poll(connection):
    connection.request("GET", "/DEFAULT/controller/v1/" + CONTROLLER,
                       headers={"Authorization": "TargetToken " + TOKEN})
    assert connection.getresponse().read() and connection.sock is not None  # kept alive


def exit_code_within(process, seconds):
    started = time.monotonic()
    code = process.wait(seconds)
    return code, time.monotonic() - started


def test_a_download_in_flight_finishes_after_sigterm_while_new_connections_are_refused(
        tmp_path):
    server, module_id = start(tmp_path, stop_timeout=10)
    try:
        download = SlowDownload(server, module_id)
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(server.port), 2, "refusing new connections")
        time.sleep(1)  # the client takes its time; the server waits for it
        assert server.process.poll() is None, server.log()
        body = download.read_to_end()
        code, waited = exit_code_within(server.process, 5)
    finally:
        server.stop()
    assert len(body) == len(ARTIFACT), (len(body), server.log())
    assert hashlib.sha256(body).digest() == hashlib.sha256(ARTIFACT).digest()
    assert code == 0, server.log()
    assert waited < 2, server.log()
    assert "stopping: no new connections" in server.log()


def test_a_poll_answered_just_before_sigterm_is_committed_and_idle_connections_close(
        tmp_path):
    server, _ = start(tmp_path, stop_timeout=10)
    try:
        device = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        poll(device)  # the first poll is written at once; later ones wait in memory
        time.sleep(0.01)
        before = int(time.time() * 1000)
        poll(device)
        server.process.send_signal(signal.SIGTERM)
        device.sock.settimeout(5)
        assert device.sock.recv(1) == b""  # the idle keep-alive connection is closed
        code, waited = exit_code_within(server.process, 5)
    finally:
        server.stop()
    assert (code, waited < 2) == (0, True), server.log()
    # The server holds poll times in memory for up to a second; a stop writes them.
    (polled_at,), = database.rows_of(
        tmp_path / "data", "SELECT last_target_query FROM target WHERE controller_id = ?",
        (CONTROLLER,))
    assert polled_at is not None and polled_at >= before


@pytest.mark.parametrize("stop_timeout, signals", [(1, 1), (60, 2)],
                         ids=["the bound passes", "a second sigterm"])
def test_a_download_that_does_not_finish_is_cut_and_the_server_exits_0(tmp_path, stop_timeout,
                                                                       signals):
    server, module_id = start(tmp_path, stop_timeout=stop_timeout)
    try:
        download = SlowDownload(server, module_id)
        for _ in range(signals):
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        code, waited = exit_code_within(server.process, 5)
        body = download.read_to_end()
    finally:
        server.stop()
    assert code == 0, server.log()
    assert waited < 2.5, server.log()
    assert len(body) < len(ARTIFACT)
    assert "stopping now: 1 connection(s) closed before their answer was sent" in server.log()
