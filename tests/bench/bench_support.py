"""What every ddi-lite benchmark needs: scratch directories, real server processes, seeding,
load generation and reading a process's memory from /proc.

A benchmark seeds a fresh data directory through `storage/` and `artifacts/` while no server
runs, then starts ddi-lite (`python -m ddi_lite serve`) and its baseline (`bench_baselines.py`)
as their own processes on free loopback ports, and drives them with `wrk` (a generated Lua
script adds the device's headers). Without `wrk` a slower Python client stands in. Every
process is stopped and every directory removed, also when a benchmark fails.
"""

import collections
import contextlib
import hashlib
import http.client
import logging
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PROJECT_DIR = os.path.dirname(os.path.dirname(BENCH_DIR))
for path in (PROJECT_DIR, os.path.dirname(BENCH_DIR)):  # the project, and tests/ (live.py)
    if path not in sys.path:
        sys.path.insert(0, path)

import peewee  # noqa: E402

import artifacts  # noqa: E402
import ddi_lite  # noqa: E402
from live import free_port  # noqa: E402
import storage  # noqa: E402
from storage import assignments, catalog  # noqa: E402
from storage import transitions as t  # noqa: E402
from storage.db import write  # noqa: E402
from storage.models import Action, Target  # noqa: E402

MiB = 1024 * 1024
HOST = "127.0.0.1"
ADDRESS = "http://127.0.0.1"  # how ddi-lite records a device polling over loopback
DEVICE = "/DEFAULT/controller/v1"
BASELINES = os.path.join(BENCH_DIR, "bench_baselines.py")
STARTUP_TIMEOUT = 30.0
USER = "bench"


# --- how long and how hard -----------------------------------------------------------------

class Plan(collections.namedtuple("Plan", "quick seconds rounds threads scratch artifact")):
    """How long each load run lasts, how many alternating rounds, Waitress's thread count
    (the same for ddi-lite and every baseline), the run's scratch directory and its large
    artifact (an ArtifactFile, or None when no selected benchmark needs one)."""


Row = collections.namedtuple("Row", "benchmark ddi baseline ratio target met")

# ddi-lite's own default Waitress thread count ([server] threads).
DEFAULT_THREADS = next(setting.default for setting in ddi_lite.SETTINGS
                       if (setting.section, setting.key) == ("server", "threads"))


def median(values):
    return statistics.median(values) if values else float("nan")


# --- scratch directories and processes -----------------------------------------------------

@contextlib.contextmanager
def scratch_dir(parent, name):
    """A fresh directory under `parent`, removed afterwards whatever happens."""
    path = tempfile.mkdtemp(prefix=name + "-", dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _environment():
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("DDI_LITE_")}
    environment["PYTHONPATH"] = os.pathsep.join(
        [PROJECT_DIR] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environment


class ServerProcess:
    """A server in its own process, logging to a file in `workdir`; a context manager that
    always stops it."""

    def __init__(self, name, argv, port, workdir):
        self.name = name
        self.port = port
        self.log_path = os.path.join(workdir, "%s-%d.log" % (name, port))
        self.started_at = time.perf_counter()
        with open(self.log_path, "wb") as log_file:
            # cwd is the scratch directory, so a config.ini next to the caller is never read.
            self.process = subprocess.Popen(argv, cwd=workdir, env=_environment(),
                                            stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.process.pid

    def log_tail(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()[-3000:]

    def check_alive(self):
        if self.process.poll() is not None:
            raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.process.returncode,
                                                           self.log_tail()))

    def wait_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("%s did not listen on port %d" % (self.name, self.port))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def ddi_lite_process(data_dir, workdir, threads, port=None, workers=1, database_url=""):
    """ddi-lite as an operator starts it; the status-entry quota is lifted so that a
    feedback benchmark is never stopped by it. `database_url`: PostgreSQL instead of SQLite."""
    port = port or free_port()
    argv = [sys.executable, "-m", "ddi_lite", "serve", "--data-dir", data_dir, "--host", HOST,
            "--port", str(port), "--threads", str(threads), "--workers", str(workers),
            "--limits-status-entries-per-action", "0"]
    if database_url:
        argv += ["--database-url", database_url]
    return ServerProcess("ddi-lite", argv, port, workdir)


def baseline_process(kind, workdir, threads, *options, port=None):
    port = port or free_port()
    argv = [sys.executable, BASELINES, kind, "--port", str(port), "--threads", str(threads)]
    return ServerProcess("baseline-" + kind, argv + list(options), port, workdir)


# --- memory --------------------------------------------------------------------------------

# --- seeding (no server runs while a data directory is seeded) -----------------------------

@contextlib.contextmanager
def open_data_dir(data_dir, database_url=""):
    storage.open_store(data_dir, now_ms(), database_url=database_url)
    try:
        yield
    finally:
        storage.close_store()


def now_ms():
    return int(time.time() * 1000)


def token_of(controller_id):
    return "token-" + controller_id


def seed_assigned_target(controller_id, module_name, artifact=None, data_dir=None):
    """A target with its own module (optionally holding `artifact`, an ArtifactFile, linked
    into `data_dir`) in a set assigned to it: a running action. Returns (module, action)."""
    now = now_ms()
    target = catalog.create_target(controller_id, now, USER,
                                   security_token=token_of(controller_id))
    module = catalog.create_module("os", module_name, "1.0", now, USER)
    if artifact is not None:
        artifact.link_into(data_dir, module, now)
    distribution_set = catalog.create_distribution_set(module_name, "1.0", [module.id], now,
                                                       USER)
    with write():
        action = assignments.assign(distribution_set, target, now, USER)
    return module, action


def seed_fleet(count, prefix):
    """`count` registered targets `<prefix><n>` (n from 1), each with a running action of one
    shared set, inserted in bulk as if they had been polling for a while."""
    now = now_ms()
    module = catalog.create_module("os", prefix + "fw", "1.0", now, USER)
    distribution_set = catalog.create_distribution_set(prefix + "set", "1.0", [module.id], now,
                                                       USER)
    audit = dict(created_at=now, created_by=USER, last_modified_at=now, last_modified_by=USER)
    with write():
        for first in range(1, count + 1, 500):
            Target.insert_many([dict(
                controller_id="%s%d" % (prefix, n), name="%s%d" % (prefix, n),
                security_token=token_of("%s%d" % (prefix, n)), address=ADDRESS,
                update_status="PENDING", assigned_ds=distribution_set.id,
                last_target_query=now, request_attributes=False, attributes={}, **audit)
                for n in range(first, min(first + 500, count + 1))]).execute()
        fields = [Action.target, Action.distribution_set, Action.action_type, Action.status,
                  Action.active, Action.revision, Action.initiated_by, Action.created_at,
                  Action.created_by, Action.last_modified_at, Action.last_modified_by]
        values = [peewee.Value(value) for value in (
            distribution_set.id, t.FORCED, t.RUNNING, True, 0, USER, now, USER, now, USER)]
        Action.insert_from(Target.select(Target.id, *values)
                           .where(Target.controller_id.startswith(prefix)), fields).execute()


class ArtifactFile:
    """One artifact's bytes, written once per run and hard-linked into each data directory's
    blob store (the blob store's own layout), so every benchmark serves the same file."""

    def __init__(self, directory, size, seed=7):
        self.size = size
        self.path = os.path.join(directory, "artifact.bin")
        hashes = {name: hashlib.new(name) for name in ("md5", "sha1", "sha256")}
        generator = random.Random(seed)
        with open(self.path, "wb") as handle:
            remaining = size
            while remaining:
                chunk = generator.randbytes(min(MiB, remaining))
                handle.write(chunk)
                for digest in hashes.values():
                    digest.update(chunk)
                remaining -= len(chunk)
        self.blob = artifacts.Blob(sha1=hashes["sha1"].hexdigest(), md5=hashes["md5"].hexdigest(),
                                   sha256=hashes["sha256"].hexdigest(), size=size)

    def link_into(self, data_dir, module, now, filename="firmware.bin"):
        blobs = artifacts.BlobStore(os.path.join(data_dir, "artifacts"))
        blob_path = blobs.path(self.blob.sha1)
        os.makedirs(os.path.dirname(blob_path), exist_ok=True)
        os.link(self.path, blob_path)
        return catalog.add_artifact(module, filename, self.blob, now, USER)

    def slice_sha256(self, first, length):
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            handle.seek(first)
            digest.update(handle.read(length))
        return digest.hexdigest()


# --- single requests -----------------------------------------------------------------------

Reply = collections.namedtuple("Reply", "status headers body")


def request(port, path, method="GET", headers=None, body=None, hash_body=False):
    """One request on a new connection. With `hash_body` the reply's body is the SHA-256
    (hex) of the bytes received, which are never held in memory at once."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        if hash_body:
            digest = hashlib.sha256()
            for chunk in iter(lambda: response.read(MiB), b""):
                digest.update(chunk)
            data = digest.hexdigest()
        else:
            data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def device_headers(controller_id, **extra):
    headers = {"Authorization": "TargetToken " + token_of(controller_id)}
    headers.update(extra)
    return headers


def expect(reply, status, what):
    if reply.status != status:
        raise RuntimeError("%s answered %d, expected %d: %r" % (what, reply.status, status,
                                                                 reply.body[:300]))
    return reply


# --- load generation -----------------------------------------------------------------------

class Load(collections.namedtuple("Load", "method path headers body variants range_length size")):
    """What each request of a load run looks like.

    `path` and header values may name fields as `{name}`; each request fills them from one
    of `variants` (dicts), picked at random. With `range_length`, each request asks for that
    many bytes at a random offset of a `size`-byte file.
    """

    def __new__(cls, path, headers=None, method="GET", body=None, variants=None,
                range_length=0, size=0):
        return super().__new__(cls, method, path, dict(headers or {}), body,
                               list(variants or [{}]), range_length, size)

    def one(self, rng):
        """(method, path, headers, body) of one request (the Python client's way)."""
        fields = rng.choice(self.variants)
        headers = {name: value.format(**fields) for name, value in self.headers.items()}
        if self.range_length:
            first = rng.randint(0, self.size - self.range_length)
            headers["Range"] = "bytes=%d-%d" % (first, first + self.range_length - 1)
        return self.method, self.path.format(**fields), headers, self.body


class LoadResult(collections.namedtuple(
        "LoadResult", "requests seconds bytes errors status_errors p50_ms p99_ms")):
    @property
    def rate(self):
        return self.requests / self.seconds

    @property
    def bytes_per_second(self):
        return self.bytes / self.seconds


def _lua_string(text):
    return '"%s"' % (text.replace("\\", "\\\\").replace('"', '\\"')
                     .replace("\n", "\\n").replace("\r", "\\r"))


def _lua_expression(template):
    """A Lua expression for a template whose `{name}` fields come from the table `v`."""
    parts = re.split(r"\{(\w+)\}", template)
    terms = [_lua_string(part) if n % 2 == 0 else "v.%s" % part
             for n, part in enumerate(parts) if n % 2 or part]
    return " .. ".join(terms) or '""'


def lua_script(load, variants_path):
    """A wrk script: a request per `Load`, and one machine-readable result line at the end.
    The variants go to `variants_path`, one per line (LuaJIT limits a script's constants)."""
    fields = sorted(load.variants[0])
    with open(variants_path, "w") as handle:
        for variant in load.variants:
            handle.write("\t".join(str(variant[name]) for name in fields) + "\n")
    headers = ", ".join("[%s] = %s" % (_lua_string(name), _lua_expression(value))
                        for name, value in load.headers.items())
    body = _lua_string(load.body) if load.body is not None else "nil"
    lines = [
        "local fields = {%s}" % ", ".join(_lua_string(name) for name in fields),
        "local variants = {}",
        "local threads = 0",
        "function setup(thread)",
        "  threads = threads + 1",
        "  thread:set('seed', threads)",
        "end",
        "function init(args)",
        "  math.randomseed(seed * 7919 + os.time())",
        "  for line in io.lines(%s) do" % _lua_string(variants_path),
        "    local v, k = {}, 1",
        "    for value in (line .. '\\t'):gmatch('([^\\t]*)\\t') do",
        "      if fields[k] then v[fields[k]] = value end",
        "      k = k + 1",
        "    end",
        "    variants[#variants + 1] = v",
        "  end",
        "end",
        "function request()",
        "  local v = variants[math.random(#variants)]",
        "  local headers = {%s}" % headers,
    ]
    if load.range_length:
        lines += [
            "  local first = math.random(0, %d)" % (load.size - load.range_length),
            "  headers['Range'] = 'bytes=' .. first .. '-' .. (first + %d)"
            % (load.range_length - 1),
        ]
    lines += [
        "  return wrk.format(%s, %s, headers, %s)" % (_lua_string(load.method),
                                                      _lua_expression(load.path), body),
        "end",
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        "  io.write(string.format('WRK-RESULT %d %d %d %d %d %.0f %.0f\\n',",
        "    summary.requests, summary.duration, summary.bytes,",
        "    e.connect + e.read + e.write + e.timeout, e.status,",
        "    latency:percentile(50), latency:percentile(99)))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def have_wrk():
    return shutil.which("wrk") is not None


def run_load(port, load, connections, seconds, workdir, threads=1, timeout=10, python=False):
    """Drive `port` with `connections` keep-alive connections for `seconds` (whole seconds
    with wrk). `python`: the Python client even where wrk is installed."""
    if have_wrk() and not python:
        return _run_wrk(port, load, connections, seconds, workdir, threads, timeout)
    return _run_python_client(port, load, connections, seconds, timeout)


def _run_wrk(port, load, connections, seconds, workdir, threads, timeout):
    script = os.path.join(workdir, "load-%d.lua" % port)
    with open(script, "w") as handle:
        handle.write(lua_script(load, os.path.join(workdir, "load-%d.variants" % port)))
    argv = ["wrk", "-t%d" % min(threads, connections), "-c%d" % connections,
            "-d%ds" % max(1, round(seconds)), "--timeout", "%ds" % timeout, "-s", script,
            "http://%s:%d/" % (HOST, port)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^WRK-RESULT (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise RuntimeError("wrk failed (%d):\n%s\n%s" % (completed.returncode, completed.stdout,
                                                         completed.stderr))
    requests, micros, size, errors, status_errors, p50, p99 = (
        float(value) for value in match.group(1).split())
    return LoadResult(int(requests), micros / 1e6, int(size), int(errors), int(status_errors),
                      p50 / 1000, p99 / 1000)


def _run_python_client(port, load, connections, seconds, timeout):
    """The stand-in for wrk: one thread and one keep-alive connection per client. It shares
    the GIL with itself, so it saturates far earlier than wrk; ratios remain comparable."""
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    totals = {"requests": 0, "bytes": 0, "errors": 0, "status_errors": 0}
    latencies = []

    def client(number):
        rng = random.Random(number)
        buffer = bytearray(MiB)
        connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
        mine = []
        counts = collections.Counter()
        while time.perf_counter() < deadline:
            method, path, headers, body = load.one(rng)
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                while True:
                    read = response.readinto(buffer)
                    if not read:
                        break
                    counts["bytes"] += read
            except (OSError, http.client.HTTPException):
                counts["errors"] += 1
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
                continue
            mine.append(time.perf_counter() - started)
            counts["requests"] += 1
            if response.status >= 400:
                counts["status_errors"] += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for key, value in counts.items():
                totals[key] += value

    started = time.perf_counter()
    clients = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(fraction):
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000
    return LoadResult(totals["requests"], elapsed, totals["bytes"], totals["errors"],
                      totals["status_errors"], percentile(0.5), percentile(0.99))


def checked(result, what, complete=True):
    """A load run's result, refused when any request failed: a fast error is no figure.
    Unless `complete`, a run may end before any response did (long downloads)."""
    if result.errors or result.status_errors or not (result.requests if complete
                                                     else result.bytes):
        raise RuntimeError("%s: %d requests, %d connection errors, %d error statuses"
                           % (what, result.requests, result.errors, result.status_errors))
    return result


# --- SQL a request runs ----------------------------------------------------------------------

class SqlRecorder(logging.Handler):
    """Collects the (sql, params) peewee logs while it is installed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements = []

    def emit(self, record):
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.statements.append(record.msg)

    def __enter__(self):
        logger = logging.getLogger("peewee")
        self._level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc_info):
        logger = logging.getLogger("peewee")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def in_process_app(data_dir, workdir):
    """The ddi-lite WSGI app on `data_dir` in this process (default settings)."""
    empty = os.path.join(workdir, "empty.ini")
    open(empty, "w").close()
    config = ddi_lite.load_config(path=empty, environ={},
                                  overrides={"server.data_dir": data_dir})
    return ddi_lite.create_app(config)


def call_wsgi(app, path, headers):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_NAME": HOST, "SERVER_PORT": "80", "REMOTE_ADDR": HOST,
               "HTTP_HOST": HOST, "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": None, "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
               "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: status.append(s)))
    return status[0], body


def query_plan_scans(database, sql, params):
    """The full scans (of a table or of a whole index) SQLite plans for one statement."""
    rows = database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [row[-1] for row in rows if row[-1].startswith("SCAN ")]


def alternate(rounds, ddi_run, baseline_run):
    """Run both measurements `rounds` times back to back, swapping which goes first each
    round so neither always runs on a warmer or quieter machine; (ddi results, baseline
    results)."""
    ddi_results, baseline_results = [], []
    for number in range(rounds):
        pair = [(ddi_run, ddi_results), (baseline_run, baseline_results)]
        for run, results in (pair if number % 2 == 0 else pair[::-1]):
            results.append(run())
    return ddi_results, baseline_results
