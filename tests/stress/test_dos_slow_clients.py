"""Devices keep polling while clients without credentials try to stop them (issue 9, items 5
and 7), against a real process:

- 500 sockets that drip header bytes (a slow-loris) and 16 clients that keep sending wrong
  operator passwords leave the devices' poll latency where it was without them;
- so do more slow and silent sockets than [server] max_connections: the quietest of them
  makes room for each new connection;
- a client that never finishes its headers, or never begins them, is closed after [server]
  header_timeout;
- request headers beyond [limits] max_header_bytes are refused with 431.

Each poll opens a new connection, as a device polling every few minutes does: a connection
opened before the attack would not show that the server stopped accepting new ones.
"""
import base64
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from clients.harness import Operator
from live import DdiLite, stop_process, wait_until

# Each wrong-password client tries again this often: 64 logins/s in all, eight times the rate
# that raised the poll p50 from 4 ms to 1.1 s before the fix.
WRONG_PASSWORD_INTERVAL = 0.25
ROUNDS = 4
ROUND_SECONDS = 1.0
POLL_TIMEOUT = 2.0
TOKEN = "dos-token"


def poll_latency(port, controller_id):
    """Seconds one poll took on a fresh connection; POLL_TIMEOUT when it got no answer."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=POLL_TIMEOUT)
    try:
        connection.request("GET", "/DEFAULT/controller/v1/" + controller_id,
                           headers={"Authorization": "TargetToken " + TOKEN})
        response = connection.getresponse()
        response.read()
        answered = response.status == 200
    except OSError:
        answered = False
    finally:
        connection.close()
    return time.monotonic() - started if answered else POLL_TIMEOUT


def poll_for(port, controller_id, seconds):
    """Poll back to back for `seconds`; every latency."""
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latencies.append(poll_latency(port, controller_id))
    return latencies


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class HangingSockets:
    """`count` connections that never finish a request: each sends one more header byte every
    `interval` seconds (`drip`, a slow-loris) or nothing at all. One the server closes is
    opened again at once."""

    def __init__(self, port, count, drip, interval=0.1):
        self.port = port
        self.drip = drip
        self.interval = interval
        self.reopened = 0
        self._stop = threading.Event()
        self._sockets = [self._open() for _ in range(count)]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _open(self):
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.setblocking(False)
        if self.drip:
            connection.send(b"GET /DEFAULT/controller/v1/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        return connection

    def _closed(self, connection):
        try:
            if self.drip:
                connection.send(b"a")
                return False
            return connection.recv(1) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _run(self):
        while not self._stop.wait(self.interval):
            for index, connection in enumerate(self._sockets):
                if self._closed(connection):
                    connection.close()
                    self.reopened += 1
                    try:
                        self._sockets[index] = self._open()
                    except OSError:
                        pass

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        for connection in self._sockets:
            connection.close()


class WrongPasswords:
    """`count` clients, each sending a Management API request with a wrong password every
    `interval` seconds on a fresh connection; the statuses they got."""

    def __init__(self, port, count, interval):
        self.port = port
        self.interval = interval
        self.statuses = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(number,), daemon=True)
                         for number in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self, number):
        credentials = base64.b64encode(b"admin:wrong-%d" % number).decode("ascii")
        while not self._stop.is_set():
            started = time.monotonic()
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/rest/v1/targets",
                                   headers={"Authorization": "Basic " + credentials})
                response = connection.getresponse()
                response.read()
                self.statuses.append(response.status)
            except OSError:
                self.statuses.append(None)
            finally:
                connection.close()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def polls_under_attack(directory, settings, slow, silent, logins):
    """Poll a server under attack and its twin, a server no one attacks, in turns: the twin
    tells what this machine's other work does to the latency meanwhile. The attackers run in
    a process of their own: in this one, their threads would delay the polls measured.
    The attacked server must survive without a traceback in its log. (the twin's latencies,
    the attacked server's, what the attackers saw)."""
    server = DdiLite(directory / "server", config_lines=settings)
    twin = DdiLite(directory / "twin", config_lines=settings)
    quiet, attacked = [], []
    try:
        for each in (server, twin):
            Operator(each.url).add_target("dev-1", token=TOKEN)
            poll_for(each.port, "dev-1", 0.5)  # warm-up: connections, caches
        attackers = subprocess.Popen(
            [sys.executable, "-m", "stress.test_dos_slow_clients", str(server.port),
             str(slow), str(silent), str(logins)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            assert attackers.stdout.readline() == b"attacking\n"
            for _ in range(ROUNDS):
                attacked += poll_for(server.port, "dev-1", ROUND_SECONDS)
                quiet += poll_for(twin.port, "dev-1", ROUND_SECONDS)
            report, _ = attackers.communicate(b"", timeout=30)
        finally:
            stop_process(attackers)
        assert server.process.poll() is None, server.log()
        log = server.log_path.read_text("utf-8", errors="replace")
        assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]
    finally:
        server.stop()
        twin.stop()
    return quiet, attacked, report.decode().strip()


def assert_normal_latency(quiet, attacked, report):
    quiet_p99, attacked_p99 = percentile(quiet, 0.99), percentile(attacked, 0.99)
    figures = "quiet: %d polls, p50 %.1f ms, p99 %.1f ms; attacked: %d polls, p50 %.1f ms, " \
        "p99 %.1f ms; %s" % (len(quiet), 1000 * percentile(quiet, 0.5), 1000 * quiet_p99,
                            len(attacked), 1000 * percentile(attacked, 0.5),
                            1000 * attacked_p99, report)
    print(figures)
    assert POLL_TIMEOUT not in attacked, figures
    # 100 ms; on a machine so busy that the twin is slow too, no worse than three times it.
    assert attacked_p99 < max(0.1, 3 * quiet_p99), figures


def test_devices_poll_normally_while_500_slow_sockets_and_16_wrong_password_clients_run(
        tmp_path):
    # A short header_timeout: the slow sockets are cut off and come back, hundreds at once,
    # while the devices poll.
    assert_normal_latency(*polls_under_attack(tmp_path, ["header_timeout = 2"], slow=500,
                                              silent=0, logins=16))


def test_devices_poll_normally_while_more_slow_and_silent_sockets_than_max_connections_wait(
        tmp_path):
    # 1200 of them against the default max_connections (1000): descriptors past 1023 too,
    # where the event loop must leave select() for poll().
    assert_normal_latency(*polls_under_attack(tmp_path, [], slow=800, silent=400, logins=0))


def attack(port, slow, silent, logins):
    """The attackers of the tests above, until stdin closes; then what they saw."""
    dripping = HangingSockets(port, slow, drip=True)
    quiet = HangingSockets(port, silent, drip=False)
    guessing = WrongPasswords(port, logins, WRONG_PASSWORD_INTERVAL)
    print("attacking", flush=True)
    sys.stdin.read()
    for attacker in (guessing, quiet, dripping):
        attacker.stop()
    answers = {status: guessing.statuses.count(status) for status in set(guessing.statuses)}
    print("slow sockets reopened %d times, silent ones %d; wrong-password answers %s"
          % (dripping.reopened, quiet.reopened, answers))


@pytest.mark.parametrize("drip", [True, False], ids=["dripping", "silent"])
def test_a_client_that_never_finishes_its_headers_is_closed_after_header_timeout(tmp_path,
                                                                                 drip):
    server = DdiLite(tmp_path / "server", config_lines=["header_timeout = 1"])
    try:
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        if drip:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        connection.setblocking(False)
        started = time.monotonic()

        def closed():
            try:
                if drip:
                    connection.send(b"a")
                return connection.recv(4096) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True
        wait_until(closed, 4, "the server closing a connection that never ends its headers",
                   interval=0.1)
        elapsed = time.monotonic() - started
        connection.close()
    finally:
        server.stop()
    assert 0.9 <= elapsed <= 3.5, elapsed


def test_headers_beyond_max_header_bytes_are_refused_with_431(tmp_path):
    server = DdiLite(tmp_path / "server", config_lines=["[limits]", "max_header_bytes = 4096"])
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/", headers={"X-Big": "a" * 5000})
        response = connection.getresponse()
        status = response.status
        connection.close()
        small = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        small.request("GET", "/", headers={"X-Big": "a" * 3000})
        small_status = small.getresponse().status
        small.close()
    finally:
        server.stop()
    assert (status, small_status) == (431, 200)


if __name__ == "__main__":
    attack(*(int(argument) for argument in sys.argv[1:]))
