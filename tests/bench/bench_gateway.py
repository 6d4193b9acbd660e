"""Gateway mode (issue 14): an upstream ddi-lite in normal mode (the stand-in for hawkBit, a
real DDI server) and a gateway ddi-lite relaying it, real processes on loopback.

1. Upstream bytes: N devices (`ddi-lite simulate`, which checks each download's size and
   sha256) install one assigned artifact through the gateway, and every report must close its
   action upstream. Figure: the artifact bytes upstream sent (the gateway's cache counter,
   checked against upstream's own count of download requests); baseline: N x the artifact's
   size, what upstream sends when the same devices fetch it directly. Then everything
   upstream answered the gateway (polls, deployments, reports and the artifact) against the
   same baseline.
2. Local poll latency: devices with an open action poll the gateway over keep-alive
   connections (the Python client, several threads) with upstream up, then hung (SIGSTOP:
   its kernel accepts connections, nobody answers), alternating in the same rounds, and last
   with upstream killed. Upstream's sleep is 1 s, so the gateway keeps asking upstream on the
   devices' behalf while they poll (with hawkBit's minutes it would not ask at all within a
   run). Rows: p50, p99 and polls/s, hung and killed against up.
3. Polls/s through the gateway (upstream up) against the same devices polling upstream, a
   plain ddi-lite, directly, in the same rounds.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import bench_support
from bench_support import (DEVICE, HOST, MiB, USER, ArtifactFile, Load, Row, ServerProcess,
                           checked, expect, median, now_ms, open_data_dir, request, run_load,
                           scratch_dir)
from live import free_port
from storage import assignments, catalog
from storage.db import write

UPSTREAM_TOKEN = "bench-upstream-gateway-key"
LOCAL_TOKEN = "bench-local-gateway-key"
ADMIN = "Basic " + base64.b64encode(b"admin:admin").decode("ascii")
DOWNLOAD_ROUTE = "/<tenant>/controller/v1/<controller_id>/softwaremodules/<module_id>" \
                 "/artifacts/<filename>"
FLEET_PREFIX = "gw-"  # `ddi-lite simulate` names its devices PREFIX00001...
POLLERS = 20  # devices with an open action that poll in parts 2 and 3
CONNECTIONS = 8  # client threads, one keep-alive connection each
# Seconds the gateway gives one upstream request: the tests' value. It is also how long the
# gateway takes to notice a hung upstream (README's default, 10, would only lengthen the run).
UPSTREAM_TIMEOUT = 2
INSTALL_LIMIT = 120  # seconds the simulated fleet may take before the run fails
REPORTS_LIMIT = 60  # seconds for every report to close its action upstream
NOTICE_LIMIT = 20  # seconds for the gateway to notice upstream down or back


def run(plan):
    devices = 20 if plan.quick else 100
    size = (1 if plan.quick else 20) * MiB
    rows, notes = [], []
    with scratch_dir(plan.scratch, "gateway") as work:
        artifact = ArtifactFile(work, size, seed=14)
        fleet = ["%s%05d" % (FLEET_PREFIX, n) for n in range(1, devices + 1)]
        pollers = ["gw-poll-%02d" % n for n in range(1, POLLERS + 1)]
        upstream_dir = os.path.join(work, "upstream")
        _seed_upstream(os.path.join(upstream_dir, "data"), artifact, fleet + pollers)
        with _upstream_process(upstream_dir, work, plan.threads) as upstream:
            upstream.wait_listening()
            with _gateway_process(os.path.join(work, "gateway"), work, plan.threads,
                                  upstream.port) as gateway:
                gateway.wait_listening()
                started = time.monotonic()
                summary = _install_fleet(gateway, len(fleet), size, work)
                _wait_reports_closed(upstream, len(fleet))
                install_seconds = time.monotonic() - started
                rows += _bytes_rows(upstream, gateway, devices, size, summary, install_seconds,
                                    notes)
                rows += _poll_rows(plan, upstream, gateway, pollers, work, notes)
    return rows, notes


# --- servers ---------------------------------------------------------------------------------

def _seed_upstream(data_dir, artifact, controller_ids):
    """One module holding the artifact, in one set assigned to every device: a running
    action each, as after an operator's assignment upstream."""
    now = now_ms()
    with open_data_dir(data_dir):
        module = catalog.create_module("os", "gateway-fw", "1.0", now, USER)
        artifact.link_into(data_dir, module, now)
        distribution_set = catalog.create_distribution_set("gateway-fw", "1.0", [module.id],
                                                           now, USER)
        targets = [catalog.create_target(cid, now, USER) for cid in controller_ids]
        with write():
            for target in targets:
                assignments.assign(distribution_set, target, now, USER)


def _server(name, directory, workdir, threads, config_lines, port=None):
    """ddi-lite with `directory`/config.ini (`config_lines`) and `directory`/data."""
    os.makedirs(directory, exist_ok=True)
    config = os.path.join(directory, "config.ini")
    with open(config, "w") as handle:
        handle.write("\n".join(config_lines) + "\n")
    port = port or free_port()
    argv = [sys.executable, "-m", "ddi_lite", "serve", "--config", config,
            "--data-dir", os.path.join(directory, "data"),
            "--host", HOST, "--port", str(port), "--threads", str(threads),
            "--ddi-min-polling-time", "00:00:01"]
    return ServerProcess(name, argv, port, workdir)


def _upstream_process(directory, workdir, threads):
    return _server("upstream", directory, workdir, threads, [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + UPSTREAM_TOKEN,
        "polling_time = 00:00:01"])


def _gateway_process(directory, workdir, threads, upstream_port):
    return _server("gateway", directory, workdir, threads, [
        "[ddi]", "gateway_token_auth = true", "gateway_token = " + LOCAL_TOKEN,
        "[upstream]", "url = http://%s:%d" % (HOST, upstream_port),
        "gateway_token = " + UPSTREAM_TOKEN, "timeout = %d" % UPSTREAM_TIMEOUT])


def _api(server, path):
    """A Management API GET (or /metrics) as admin: the answer's text."""
    asked = urllib.request.Request("http://%s:%d%s" % (HOST, server.port, path),
                                   headers={"Authorization": ADMIN})
    with urllib.request.urlopen(asked, timeout=10) as response:
        return response.read().decode("utf-8")


def _gateway_status(gateway):
    return json.loads(_api(gateway, "/rest/v1/gateway"))


def _download_requests(upstream):
    """Upstream's own count of artifact downloads it answered (2xx), from its /metrics."""
    prefix = 'ddi_lite_http_requests_total{method="GET",route="%s",status="2xx"} ' \
             % DOWNLOAD_ROUTE
    return sum(int(line[len(prefix):]) for line in _api(upstream, "/metrics").splitlines()
               if line.startswith(prefix))


# --- 1. upstream bytes -------------------------------------------------------------------------

def _install_fleet(gateway, devices, size, workdir):
    """`ddi-lite simulate` plays the fleet against the gateway until every device installed;
    its summary, after checking that every device succeeded with every byte."""
    argv = [sys.executable, "-m", "ddi_lite", "simulate", "--url",
            "http://%s:%d" % (HOST, gateway.port), "--json", "--gateway-token", LOCAL_TOKEN,
            "--devices", str(devices), "--prefix", FLEET_PREFIX, "--poll-interval", "1",
            "--stop-when-done", "--duration", str(INSTALL_LIMIT), "--seed", "14"]
    completed = subprocess.run(argv, cwd=workdir, env=bench_support._environment(),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=INSTALL_LIMIT + 60)
    try:
        summary = json.loads(completed.stdout)
    except ValueError:
        raise RuntimeError("ddi-lite simulate exited with %d without a summary:\n%s"
                           % (completed.returncode, completed.stderr[-3000:]))
    problems = []
    if completed.returncode != 0 or summary.get("stopped") != "done":
        problems.append("exit %d, stopped: %s" % (completed.returncode, summary.get("stopped")))
    if summary.get("outcomes") != {"success": devices}:
        problems.append("outcomes %s, expected %d successes" % (summary.get("outcomes"),
                                                                 devices))
    if summary.get("bytes_downloaded") != devices * size:
        problems.append("%s bytes downloaded, expected %d" % (summary.get("bytes_downloaded"),
                                                              devices * size))
    if summary.get("errors") or summary.get("non_2xx"):
        problems.append("errors %s, non-2xx %s" % (summary.get("errors"),
                                                   summary.get("non_2xx")))
    if problems:
        raise RuntimeError("the fleet's install through the gateway failed: %s\n%s\n%s" % (
            "; ".join(problems), json.dumps(summary.get("error_examples", {}))[:2000],
            gateway.log_tail()))
    return summary


def _wait_reports_closed(upstream, devices):
    """Every fleet device's closing report delivered: its action finished upstream."""
    deadline = time.monotonic() + REPORTS_LIMIT
    finished = 0
    while time.monotonic() < deadline:
        finished = json.loads(_api(upstream, "/rest/v1/actions?limit=1&q=status==finished"))[
            "total"]
        if finished >= devices:
            return
        time.sleep(0.1)
    raise RuntimeError("only %d of %d actions finished upstream after %d s"
                       % (finished, devices, REPORTS_LIMIT))


def _bytes_rows(upstream, gateway, devices, size, summary, install_seconds, notes):
    status = _gateway_status(gateway)
    artifact_bytes = status["cache"]["bytes_from_upstream"]
    all_bytes = status["upstream"]["bytesReceived"] + artifact_bytes
    downloads = _download_requests(upstream)
    direct = devices * size
    served_once = artifact_bytes == size and downloads == 1
    notes.append("Gateway bytes: %d devices (`ddi-lite simulate`, sha256 checked) installed a "
                 "%d MiB artifact through the gateway in %.1f s, reports closed upstream "
                 "included; upstream answered %d artifact download(s) (its /metrics), the "
                 "gateway received %d artifact bytes and %d bytes of other answers (polls, "
                 "deployments, reports) in %d requests, and served %d artifact bytes. Baseline: "
                 "%d x the artifact's size, what upstream sends devices that fetch it directly."
                 % (devices, size // MiB, install_seconds, downloads, artifact_bytes,
                    status["upstream"]["bytesReceived"], status["upstream"]["requests"],
                    status["cache"]["bytes_served"], devices))
    return [Row("Gateway: artifact bytes upstream sent for %d devices vs direct (MiB)" % devices,
                "%.2f" % (artifact_bytes / MiB), "%.0f" % (direct / MiB),
                artifact_bytes / direct, "1/%d (once)" % devices, served_once),
            Row("Gateway: all bytes upstream answered for %d installs vs direct artifact "
                "bytes (MiB)" % devices, "%.2f" % (all_bytes / MiB), "%.0f" % (direct / MiB),
                all_bytes / direct, "-", None)]


# --- 2 and 3. polls ----------------------------------------------------------------------------

def _first_polls(gateway, pollers, load):
    """Each poller known to the gateway, with its open action shown (the first poll of a
    device waits for upstream; later ones never do)."""
    deadline = time.monotonic() + NOTICE_LIMIT
    for controller_id in pollers:
        while True:
            reply = request(gateway.port, "%s/%s" % (DEVICE, controller_id),
                            headers=load.headers)
            if reply.status == 200 and b"deploymentBase" in reply.body:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("%s's deployment not shown through the gateway: %d %r"
                                   % (controller_id, reply.status, reply.body[:300]))
            time.sleep(0.05)


def _wait_upstream_seen(gateway, load, pollers, up):
    """Poll through the gateway until it has noticed upstream down (or up again); (seconds
    it took, the slowest poll meanwhile in ms). Polls drive the gateway's upstream requests."""
    started = time.monotonic()
    slowest = 0.0
    number = 0
    while True:
        path = "%s/%s" % (DEVICE, pollers[number % len(pollers)])
        number += 1
        before = time.perf_counter()
        expect(request(gateway.port, path, headers=load.headers), 200,
               "a poll while upstream is %s" % ("coming back" if up else "going down"))
        slowest = max(slowest, (time.perf_counter() - before) * 1000)
        if _gateway_status(gateway)["upstream"]["up"] == up:
            return time.monotonic() - started, slowest
        if time.monotonic() - started > NOTICE_LIMIT:
            raise RuntimeError("the gateway did not notice upstream %s within %d s"
                               % ("back" if up else "down", NOTICE_LIMIT))
        time.sleep(0.05)


def _poll_rows(plan, upstream, gateway, pollers, work, notes):
    variants = [{"device": controller_id} for controller_id in pollers]
    path = "%s/{device}" % DEVICE
    via_gateway = Load(path, {"Authorization": "GatewayToken " + LOCAL_TOKEN},
                       variants=variants)
    direct = Load(path, {"Authorization": "GatewayToken " + UPSTREAM_TOKEN}, variants=variants)
    _first_polls(gateway, pollers, via_gateway)
    expect(request(upstream.port, "%s/%s" % (DEVICE, pollers[0]), headers=direct.headers),
           200, "a direct poll of upstream")
    warm_up = 0.5 if plan.quick else 1.0
    run_load(gateway.port, via_gateway, CONNECTIONS, warm_up, work, python=True)
    run_load(upstream.port, direct, CONNECTIONS, warm_up, work, python=True)

    attempts = {}  # the gateway's upstream requests and errors during each kind of run

    def measure(server, load, what, kind=None):
        before = _gateway_status(gateway)["upstream"] if kind else None
        result = checked(run_load(server.port, load, CONNECTIONS, plan.seconds, work,
                                  python=True), what)
        if kind:
            after = _gateway_status(gateway)["upstream"]
            tried = attempts.setdefault(kind, [0, 0, 0])
            tried[0] += after["requests"] - before["requests"]
            tried[1] += after["errors"] - before["errors"]
            tried[2] += result.requests
        return result

    results = {"up": [], "hung": [], "direct": []}
    noticed = []

    def up():
        results["up"].append(measure(gateway, via_gateway, "gateway polls, upstream up", "up"))

    def hung():
        upstream.process.send_signal(signal.SIGSTOP)
        try:
            noticed.append(_wait_upstream_seen(gateway, via_gateway, pollers, up=False))
            results["hung"].append(measure(gateway, via_gateway,
                                           "gateway polls, upstream hung (SIGSTOP)", "hung"))
        finally:
            upstream.process.send_signal(signal.SIGCONT)
        _wait_upstream_seen(gateway, via_gateway, pollers, up=True)

    def plain():
        results["direct"].append(measure(upstream, direct, "polls of a plain ddi-lite"))

    for number in range(plan.rounds):
        order = (up, hung, plain) if number % 2 == 0 else (plain, hung, up)
        for step in order:
            step()
    upstream.process.kill()  # a stopped process dies too; SIGKILL, as a crash or power cut
    upstream.process.wait(5)
    killed_noticed = _wait_upstream_seen(gateway, via_gateway, pollers, up=False)
    killed = measure(gateway, via_gateway, "gateway polls, upstream killed", "killed")

    up_p50 = median([r.p50_ms for r in results["up"]])
    up_p99 = median([r.p99_ms for r in results["up"]])
    up_rate = median([r.rate for r in results["up"]])
    rows = []
    for label, figures in (("hung (SIGSTOP)", results["hung"]), ("killed", [killed])):
        p50 = median([r.p50_ms for r in figures])
        p99 = median([r.p99_ms for r in figures])
        rate = median([r.rate for r in figures])
        rows += [Row("Gateway poll p50, upstream %s vs up (ms)" % label, "%.1f" % p50,
                     "%.1f" % up_p50, p50 / up_p50, "-", None),
                 Row("Gateway poll p99, upstream %s vs up (ms)" % label, "%.1f" % p99,
                     "%.1f" % up_p99, p99 / up_p99, "-", None),
                 Row("Gateway polls/s, upstream %s vs up" % label, "%.0f" % rate,
                     "%.0f" % up_rate, rate / up_rate, "-", None)]
    direct_rate = median([r.rate for r in results["direct"]])
    rows.append(Row("Polls/s through the gateway (upstream up) vs a plain ddi-lite directly",
                    "%.0f" % up_rate, "%.0f" % direct_rate, up_rate / direct_rate, "-", None))

    def listed(figures, attribute, form):
        return ", ".join(form % getattr(r, attribute) for r in figures)
    notes.append("Gateway polls: %d devices with an open action, %d client threads (the "
                 "Python client, keep-alive), %.0f s per run, upstream's sleep 1 s, the "
                 "gateway's upstream timeout %d s; killed measured once, after the rounds. "
                 "Down figures are measured once the gateway has noticed: hung after %s s "
                 "(slowest poll meanwhile %s ms), killed after %.1f s (slowest %.0f ms)."
                 % (len(pollers), CONNECTIONS, plan.seconds, UPSTREAM_TIMEOUT,
                    ", ".join("%.1f" % seconds for seconds, _ in noticed),
                    ", ".join("%.0f" % slowest for _, slowest in noticed), *killed_noticed))
    notes.append("Gateway upstream attempts while devices polled (its /rest/v1/gateway): %s."
                 % "; ".join("%s: %d answered, %d failed, for %d polls" % (
                     kind, tried[0], tried[1], tried[2])
                     for kind, tried in sorted(attempts.items())))
    notes.append("Gateway poll rounds: up p50/p99 ms %s / %s, polls/s %s; hung p50/p99 ms "
                 "%s / %s, polls/s %s; killed p50/p99 ms %.1f / %.1f, polls/s %.0f; plain "
                 "ddi-lite polls/s %s." % (
                     listed(results["up"], "p50_ms", "%.1f"),
                     listed(results["up"], "p99_ms", "%.1f"),
                     listed(results["up"], "rate", "%.0f"),
                     listed(results["hung"], "p50_ms", "%.1f"),
                     listed(results["hung"], "p99_ms", "%.1f"),
                     listed(results["hung"], "rate", "%.0f"),
                     killed.p50_ms, killed.p99_ms, killed.rate,
                     listed(results["direct"], "rate", "%.0f")))
    return rows
