"""Readiness for systemd (service/systemd.py): `ddi-lite serve` sends READY=1 once its port
answers and STOPPING=1 when a stop begins, as datagrams to $NOTIFY_SOCKET, a filesystem or
an abstract-namespace ('@') address. The tests bind that socket as systemd would and watch a
real server process."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from live import PROJECT_DIR, clean_environment, free_port, stop_process

from service import systemd


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request, tmp_path):
    """(the $NOTIFY_SOCKET value, the datagram socket bound to it)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        listener.bind(address)
    else:
        name = "ddi-lite-test-%d-%s" % (os.getpid(), secrets.token_hex(4))
        listener.bind("\0" + name)
        address = "@" + name
    listener.settimeout(15)
    yield address, listener
    listener.close()


def test_notify_does_nothing_without_notify_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_notify_sends_its_assignments_as_lines_of_one_datagram(notify_socket, monkeypatch):
    address, listener = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert systemd.notify("READY=1", "STATUS=Serving") is True
    assert listener.recv(4096) == b"READY=1\nSTATUS=Serving\n"


def test_notify_to_a_socket_that_is_gone_is_logged_not_raised(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.notify("READY=1") is False
    assert "cannot notify systemd at %s" % (tmp_path / "gone") in caplog.text


def test_serve_is_ready_once_its_port_answers_and_stopping_after_sigterm(notify_socket,
                                                                          tmp_path):
    address, listener = notify_socket
    port = free_port()
    with open(str(tmp_path / "server.log"), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ddi_lite", "serve", "--config", os.devnull,
             "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=PROJECT_DIR, env=clean_environment(NOTIFY_SOCKET=address),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = listener.recv(4096)
        # At once: the port must already answer when systemd hears READY=1.
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as response:
            answered = response.status
        process.send_signal(signal.SIGTERM)
        stopping = listener.recv(4096)
        code = process.wait(10)
    finally:
        stop_process(process)
    server_log = (tmp_path / "server.log").read_text()
    assert ready.decode().splitlines() == [
        "READY=1", "STATUS=Serving on http://127.0.0.1:%d" % port], server_log
    assert answered == 200
    assert stopping.decode().splitlines() == [
        "STOPPING=1", "EXTEND_TIMEOUT_USEC=20000000",
        "STATUS=Stopping: requests in flight get 10 s"], server_log
    assert code == 0, server_log
