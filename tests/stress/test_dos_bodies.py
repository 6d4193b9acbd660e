"""No body is read before its sender is authenticated (issue 9, item 6), against a real process:

- four unauthenticated 250 MB PUTs to configData are refused after a few megabytes at most
  (what the sockets' buffers take), and the server keeps no temporary file meanwhile or after;
- a declared 500 MB body that never comes is answered at once when the sender has no valid
  credentials, and closed after [server] idle_timeout when it has;
- an upload sent with `Expect: 100-continue` is told to continue only with valid credentials.
"""

import base64
import os
import select
import socket
import threading
import time

import pytest
from clients.harness import Operator
from live import ADMIN, DdiLite, Sampler

MiB = 1024 * 1024
CONFIG_DATA = "/DEFAULT/controller/v1/dev-1/configData"
WRONG = "Basic " + base64.b64encode(b"admin:wrong").decode("ascii")


def open_temp_bytes(pid, own_directory):
    """Bytes in the files a process holds open that are deleted and not its own (the
    anonymous temporary files Waitress and Bottle buffer bodies in)."""
    total = 0
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
            if target.endswith(" (deleted)") and not target.startswith(str(own_directory)):
                total += os.stat(os.path.join(fd_dir, name)).st_size
        except OSError:
            pass
    return total


def temp_sampler(server):
    """The figures of `open_temp_bytes` every 10 ms while the block runs (`.peak`)."""
    return Sampler(lambda: open_temp_bytes(server.process.pid, server.directory), 0.01)


def push_body(port, head, size, seconds=30):
    """Send `head`, then up to `size` body bytes as fast as the server takes them, until it
    answers or closes. (bytes of body sent, the answer's first bytes or b"")."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(head)
    connection.setblocking(False)
    chunk = b"x" * MiB
    sent = 0
    answer = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            writers = [connection] if sent < size else []
            readable, writable, _ = select.select([connection], writers, [], 0.5)
            if readable:
                data = connection.recv(65536)
                answer += data
                if not data or b"\r\n\r\n" in answer:
                    break
            if writable:
                sent += connection.send(chunk[:size - sent])
    except OSError:
        pass  # reset by the server: it closed with our body unread
    finally:
        connection.close()
    return sent, answer


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def put_head(length, authorization=None):
    lines = ["PUT %s HTTP/1.1" % CONFIG_DATA, "Host: x", "Content-Type: application/json",
             "Content-Length: %d" % length]
    if authorization:
        lines.append("Authorization: " + authorization)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def upload_head(module_id, length, authorization=None, expect=False):
    lines = ["POST /rest/v1/softwaremodules/%d/artifacts HTTP/1.1" % module_id, "Host: x",
             "Content-Type: multipart/form-data; boundary=b", "Content-Length: %d" % length]
    if authorization:
        lines.append("Authorization: " + authorization)
    if expect:
        lines.append("Expect: 100-continue")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def answer_within(port, head, seconds):
    """Send `head` and nothing more; (the answer's first bytes or b"" when the server closed,
    seconds it took), or (None, seconds) when it did neither in time."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    started = time.monotonic()
    try:
        connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    except socket.timeout:
        answer = None
    except OSError:
        answer = b""
    finally:
        connection.close()
    return answer, time.monotonic() - started


@pytest.fixture
def server(tmp_path):
    server = DdiLite(tmp_path / "server", config_lines=["idle_timeout = 2"])
    Operator(server.url).add_target("dev-1", token="token-1")
    yield server
    server.stop()


def test_unauthenticated_250_mb_puts_to_config_data_are_refused_without_reading_them(server):
    results = [None] * 4

    def put(index):
        results[index] = push_body(server.port, put_head(250 * MiB), 250 * MiB)
    with temp_sampler(server) as temp:
        threads = [threading.Thread(target=put, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    left = open_temp_bytes(server.process.pid, server.directory)
    figures = "sent before the answer (MiB): %s; answers %s; temp peak %.1f MiB, left %d B" % (
        [round(sent / MiB, 1) for sent, _ in results],
        [status_of(answer) for _, answer in results], temp.peak / MiB, left)
    print(figures)
    for sent, answer in results:
        assert sent < 16 * MiB, figures
        assert status_of(answer) in (401, None), figures
    assert temp.peak < MiB and left == 0, figures


@pytest.mark.parametrize("what, authorization", [
    ("configData", None), ("configData", "TargetToken wrong"), ("upload", None),
    ("upload", WRONG)])
def test_a_declared_500_mb_body_without_valid_credentials_is_answered_at_once(
        server, what, authorization):
    head = put_head(500 * MiB, authorization) if what == "configData" \
        else upload_head(1, 500 * MiB, authorization)
    answer, seconds = answer_within(server.port, head, 5)
    assert answer is not None, "no answer and no close in 5 s"
    assert status_of(answer) == 401, answer
    assert seconds < 1, seconds


def test_an_authenticated_upload_whose_body_never_comes_is_closed_after_idle_timeout(server):
    module = Operator(server.url).call("POST", "/softwaremodules",
                                       [{"name": "fw", "version": "1", "type": "os"}])[0]
    answer, seconds = answer_within(server.port, upload_head(module["id"], 500 * MiB, ADMIN),
                                    10)
    assert answer == b"", answer
    assert 1.5 <= seconds <= 4.5, seconds
    assert os.listdir(server.directory / "data" / "artifacts" / "tmp") == []


def test_an_upload_expecting_100_continue_is_told_to_continue_only_with_valid_credentials(
        server):
    module = Operator(server.url).call("POST", "/softwaremodules",
                                       [{"name": "fw", "version": "1", "type": "os"}])[0]
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fw.bin\"\r\n\r\n"
            b"firmware\r\n--b--\r\n")
    refused, _ = answer_within(server.port, upload_head(module["id"], len(body), WRONG,
                                                        expect=True), 5)
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        connection.sendall(upload_head(module["id"], len(body), ADMIN, expect=True))
        interim = connection.recv(65536)
        connection.sendall(body)
        final = connection.recv(65536)
    finally:
        connection.close()
    assert status_of(refused) == 401
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert status_of(final) == 201, final
