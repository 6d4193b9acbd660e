"""Real ddi-lite processes for tests that need one: start on a free loopback port with its own
config.ini and data directory, wait for readiness, stop for sure. Waits poll a condition
with a deadline instead of sleeping a fixed time.
"""

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import database

ADMIN = "Basic " + base64.b64encode(b"admin:admin").decode("ascii")
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTUP_TIMEOUT = 15.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout, what, interval=0.05, on_timeout=None):
    """Call `condition` until it returns something truthy (returned); AssertionError after
    `timeout` seconds, with `on_timeout()` (e.g. a client log) in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError("%s did not happen within %.0f s%s"
                                 % (what, timeout, "\n" + extra if extra else ""))
        time.sleep(interval)


def stop_process(process, timeout=5.0, group=False):
    """SIGTERM, a bounded wait, then SIGKILL. With `group`, the signals go to the process
    group the process leads (it was started with start_new_session=True), so the helpers it
    forked stop with it. The leader is only reaped after the group's SIGKILL: while it is
    unreaped its id cannot name anyone else's process group."""
    if not group:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait(timeout)
        return
    _kill_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not exited(process) and time.monotonic() < deadline:
        time.sleep(0.02)
    _kill_group(process, signal.SIGKILL)
    process.wait(timeout)


def exited(process):
    """Whether the process has exited, without reaping it."""
    if process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) \
            is not None
    except ChildProcessError:
        return True


def _kill_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class HttpError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %d: %s" % (status, body[:500]))
        self.status = status
        self.body = body


class DdiLite:
    """`ddi-lite serve` on a free loopback port with its own config.ini and data directory."""

    def __init__(self, directory, config_lines=(), min_polling_time="00:00:01",
                 entry=("-m", "ddi_lite"), threads=8, port=None):
        """`entry`: what Python runs instead of `-m ddi_lite` (a script that calls
        `ddi_lite.main` after setting a trap, for crash tests). `port`: the one a stopped
        server had, for a restart its clients must find again."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = directory / "server.log"
        self.config_path = directory / "config.ini"
        self.config_path.write_text("\n".join(["[server]", "threads = %d" % threads]
                                              + list(config_lines))
                                    + "\n", encoding="utf-8")
        environment = server_environment(directory / "data")
        with open(str(self.log_path), "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *entry, "serve", "--config", str(self.config_path),
                 "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(directory / "data"),
                 "--ddi-min-polling-time", min_polling_time],
                cwd=PROJECT_DIR, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, STARTUP_TIMEOUT, "ddi-lite start-up", on_timeout=self.log)
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError("ddi-lite exited with %s:\n%s"
                                 % (self.process.returncode, self.log()))
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self):
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        stop_process(self.process)


def api(url, method, path, document=None):
    """One Management API call as admin/admin; the JSON answer, or None for an empty one."""
    body = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(url + "/rest/v1" + path, data=body, method=method,
                                     headers={"Authorization": ADMIN,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = response.read()
    return json.loads(data.decode("utf-8")) if data else None


def clean_environment(**extra):
    """This process's environment without any DDI_LITE_* setting of the person running it."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("DDI_LITE_")}
    environment.update(extra)
    return environment


def server_environment(data_dir, **extra):
    """clean_environment() for a server on `data_dir`, with the database that stands for it
    when the tests run on PostgreSQL (tests/database.py)."""
    if database.ON_POSTGRES:
        extra["DDI_LITE_DATABASE_URL"] = database.url_for_directory(data_dir)
    return clean_environment(**extra)


def once_holder(data_dir, name):
    """The pid of the process holding the once-only lock `name` (storage/once.py): written in
    the lock file on SQLite, in the lock connection's application_name on PostgreSQL; 0 before
    anyone took it."""
    if not database.ON_POSTGRES:
        return int((data_dir / ("once-%s.lock" % name)).read_text().strip() or 0)
    import psycopg2
    from storage.once import holder_name
    prefix = holder_name(name, 0)[:-1]
    with psycopg2.connect(database.url_for_directory(data_dir)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT application_name FROM pg_stat_activity "
                           "WHERE application_name LIKE %s", (prefix + "%",))
            row = cursor.fetchone()
    return 0 if row is None else int(row[0][len(prefix):])


def rss_bytes(pid, field="VmRSS"):
    """A memory figure of a process from /proc (VmRSS, or VmHWM for the peak)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError("no %s in /proc/%d/status" % (field, pid))


def reset_peak_rss(pid):
    """Reset VmHWM (Linux >= 4.0); False when the kernel does not allow it."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class Sampler:
    """Calls `measure()` every `interval` seconds in a background thread while the block
    runs, keeping every figure; stops at the first OSError (the process is gone)."""

    def __init__(self, measure, interval):
        self.measure = measure
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak(self):
        return max(self.samples, default=0)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self.measure())
            except OSError:
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(5)


def RssSampler(pid):
    """A Sampler of a process's VmRSS every 20 ms."""
    return Sampler(lambda: rss_bytes(pid), 0.02)


# --- worker processes ([server] workers) --------------------------------------------------

def child_pids(pid):
    """The processes whose parent is `pid` (a master's workers), from /proc."""
    children = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(name))
    return sorted(children)


def serving_pid(connection, pids):
    """Which of `pids` holds the server's end of an http.client connection that has had an
    answer (so the server has accepted it): matched through /proc/net/tcp and the processes'
    open sockets. None when none of them does."""
    here = connection.sock.getsockname()
    there = connection.sock.getpeername()
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                rows = lines.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if local_port == there[1] and remote_port == here[1]:
                inodes.add("socket:[%s]" % fields[9])
    for pid in pids:
        try:
            descriptors = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, descriptor)) in inodes:
                    return pid
            except OSError:
                continue
    return None
