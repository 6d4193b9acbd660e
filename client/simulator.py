"""client.simulator: `ddi-lite simulate`, N virtual devices against a DDI server.

It plays devices against this server or any hawkBit-compatible one, to rehearse a rollout or
to load a server. Each device is one asyncio task that sleeps between polls; requests share
one client.http pool of keep-alive connections. Every request goes to the scheme, host and
port of --url: a link the server hands out that points anywhere else is refused and counted
as an error, never followed. With --create-targets, the targets are made through the
Management API (client.commands). The argparse definitions are in client.cli.
"""

import array
import asyncio
import collections
import hashlib
import json
import os
import re
import signal
import sys
import time
import urllib.parse

from client import DEFAULT_TENANT, http
from client.commands import (CommandFailed, ManagementClient, _all_pages, _reason, _segment,
                             _size, print_json, print_table)
from client.http import JSON

SIMULATED_STATES = ("idle", "downloading", "installing", "done", "failed")
REQUEST_KINDS = ("poll", "configData", "deploymentBase", "download", "feedback", "cancel")
SIMULATOR_AGENT = "ddi-lite-simulate"
# How long a device waits after a failed poll when neither --poll-interval nor an earlier
# answer told it how long to sleep.
RETRY_SECONDS = 30
# The shortest sleep a server's answer may impose (a `00:00:00` would make devices spin).
MIN_SERVER_SLEEP_SECONDS = 1
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


class SimulationStopped(Exception):
    """A bound was reached: no more requests are sent."""


class DeviceProblem(Exception):
    """Something a device cannot go on with; `kind` is what the summary counts it as."""

    def __init__(self, kind, detail=None):
        Exception.__init__(self, detail or kind)
        self.kind = kind


def _draw(seed, *words):
    """A number in [0, 1) that depends only on the seed and the words, so a run can be
    repeated whatever order the devices happen to run in."""
    digest = hashlib.sha256("|".join((str(seed),) + words).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _sleep_seconds(text):
    """`HH:MM:SS` (config.polling.sleep) in seconds."""
    try:
        hours, minutes, seconds = (int(field) for field in text.split(":"))
    except (AttributeError, ValueError):
        raise DeviceProblem("unexpected answer", "polling sleep %r" % (text,))
    return max(MIN_SERVER_SLEEP_SECONDS, hours * 3600 + minutes * 60 + seconds)


def _document(answer):
    try:
        document = json.loads(answer.body.decode("utf-8"))
    except ValueError:
        raise DeviceProblem("unexpected answer", "not JSON: %r" % answer.body[:80])
    if not isinstance(document, dict):
        raise DeviceProblem("unexpected answer", "not a JSON object")
    return document


def _href(links, rel):
    link = links.get(rel)
    return link.get("href") if isinstance(link, dict) else None


def _feedback(execution, finished, details, progress=None):
    result = {"finished": finished}
    if progress is not None:
        result["progress"] = progress
    return {"status": {"execution": execution, "result": result, "details": details}}


def _percentile(ordered, percent):
    """Nearest-rank percentile of a sorted, non-empty sequence."""
    rank = -(-percent * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


SimulationSettings = collections.namedtuple(
    "SimulationSettings",
    "url tenant poll_interval download range_size failure_rate seed duration max_requests "
    "stop_when_done configdata connections timeout",
    defaults=(DEFAULT_TENANT, None, "full", 1 << 20, 0.0, 0, 600.0, 1000000, False, False, 64,
              30.0))


class Simulation:
    """N virtual devices against one DDI server, until a bound (or --stop-when-done) ends
    the run: `summary = asyncio.run(Simulation(settings, devices).run())`.

    `devices` are (controller id, Authorization header value) pairs. The simulation owns the
    connection pool, the bounds and the statistics; the devices only ask it for requests.
    """

    def __init__(self, settings, devices, progress=None):
        self.settings = settings
        self.url = http.parse_url(settings.url)
        self.origin = (self.url.scheme, self.url.host, self.url.port)
        self.base_path = self.url.path
        self.devices = [SimulatedDevice(self, controller_id, authorization)
                        for controller_id, authorization in devices]
        self.progress = LiveProgress(progress)
        self.states = collections.Counter({"idle": len(self.devices)})
        self.latencies = {kind: array.array("d") for kind in REQUEST_KINDS}
        self.non_2xx = collections.Counter()
        self.errors = collections.Counter()
        self.error_examples = {}
        self.outcomes = collections.Counter()
        self.sent = 0
        self.bytes_downloaded = 0
        self.stopped = None
        self.pool = None
        self._stop_event = None
        self._quiet = set()
        self._crash = None

    # --- what the devices use -----------------------------------------------------------

    def target_of(self, href):
        """The request target (path and query) of a link from the server. A link to another
        scheme, host or port is refused: the simulator talks to --url only."""
        if not isinstance(href, str) or not href:
            raise DeviceProblem("unexpected answer", "a link without href")
        parts = urllib.parse.urlsplit(urllib.parse.urljoin(self.settings.url + "/", href))
        try:
            port = parts.port or http.DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        if (parts.scheme, (parts.hostname or "").lower(), port) != self.origin:
            raise DeviceProblem("link to another host refused", href)
        path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        return path + ("?" + parts.query if parts.query else "")

    async def call(self, kind, method, target, authorization, document=None, headers=None,
                   sink=None):
        """One request of a device, counted against --max-requests and in the statistics.
        Transport failures become DeviceProblems; any HTTP status is returned."""
        headers = dict(headers or {}, Authorization=authorization)
        headers["User-Agent"] = SIMULATOR_AGENT
        body = b""
        if kind != "download":
            headers["Accept"] = JSON
        if document is not None:
            headers["Content-Type"] = JSON
            body = json.dumps(document).encode("utf-8")
        try:
            answer = await self.pool.request(method, target, headers, body, sink=sink)
        except http.Timeout:
            raise DeviceProblem("timeout", "%s %s" % (method, target))
        except http.AnswerCutShort:
            raise DeviceProblem("connection closed during an answer", "%s %s" % (method, target))
        except http.ConnectionFailed as error:
            raise DeviceProblem("connection failed: %s" % error.reason, str(error))
        except (http.MalformedAnswer, http.AnswerTooLarge) as error:
            raise DeviceProblem(error.reason, str(error))
        self.latencies[kind].append(answer.seconds)
        if not 200 <= answer.status < 300:
            self.non_2xx[answer.status] += 1
        return answer

    def _admit(self):
        if self.stopped is not None:
            raise SimulationStopped()
        if self.sent >= self.settings.max_requests:
            self.stop("max-requests")
            raise SimulationStopped()
        self.sent += 1

    def count_error(self, problem):
        self.errors[problem.kind] += 1
        self.error_examples.setdefault(problem.kind, str(problem))

    def entered(self, old_state, new_state):
        self.states[old_state] -= 1
        self.states[new_state] += 1

    def polled(self, device, offered):
        """Bookkeeping for --stop-when-done: every device polled once, with nothing offered,
        since the last action closed."""
        if offered:
            self._quiet.discard(device)
            return
        self._quiet.add(device)
        if self.settings.stop_when_done and len(self._quiet) == len(self.devices):
            self.stop("done")

    def closed(self, outcome):
        """An action was closed (or its cancel confirmed): the quiet round starts over."""
        self.outcomes[outcome] += 1
        self._quiet.clear()

    def stop(self, reason):
        if self.stopped is None:
            self.stopped = reason
            if self._stop_event is not None:
                self._stop_event.set()

    # --- the run -------------------------------------------------------------------------

    async def run(self):
        """Play every device until a bound, --stop-when-done or stop() ends the run; the
        summary (see `summary`)."""
        settings = self.settings
        self.pool = http.HttpPool(self.url, settings.connections, settings.timeout,
                                  self._admit)
        self._stop_event = asyncio.Event()
        started, cpu_started = time.monotonic(), time.process_time()
        # Spread the first polls over a second (or one forced interval, if shorter).
        spread = min(1.0, settings.poll_interval or 1.0)
        tasks = [asyncio.ensure_future(device.live(
                 spread * _draw(settings.seed, device.controller_id, "start")))
                 for device in self.devices]
        for task in tasks:
            task.add_done_callback(self._device_ended)
        watcher = asyncio.ensure_future(self._watch(started))
        try:
            await asyncio.wait_for(self._stop_event.wait(), settings.duration)
        except asyncio.TimeoutError:
            self.stop("duration")
        finally:
            for task in tasks + [watcher]:
                task.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)
            self.pool.close()
            self.progress.finish()
        if self._crash is not None:
            raise self._crash
        return self.summary(time.monotonic() - started, time.process_time() - cpu_started)

    def _device_ended(self, task):
        # A device only ends by a bound; anything else is a bug worth a traceback.
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()
            self.stop("crashed")

    async def _watch(self, started):
        previous_time, previous_count = started, 0
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            answered = self.answered()
            rate = (answered - previous_count) / max(now - previous_time, 1e-6)
            previous_time, previous_count = now, answered
            states = " ".join("%s %d" % (state, self.states[state])
                              for state in SIMULATED_STATES)
            self.progress.show("%6.1fs  %s | %d req/s | errors %d" % (
                now - started, states, rate, sum(self.errors.values())), now)

    def answered(self):
        return sum(len(values) for values in self.latencies.values())

    def summary(self, seconds, cpu_seconds):
        """The run in numbers, JSON-ready; latencies in milliseconds."""
        latency = collections.OrderedDict()
        for kind in REQUEST_KINDS:
            ordered = sorted(self.latencies[kind])
            if ordered:
                latency[kind] = collections.OrderedDict(
                    [("requests", len(ordered))] +
                    [(name, round(_percentile(ordered, percent) * 1000, 2))
                     for name, percent in (("p50", 50), ("p90", 90), ("p99", 99))] +
                    [("max", round(ordered[-1] * 1000, 2))])
        answered = self.answered()
        return collections.OrderedDict((
            ("url", self.settings.url),
            ("tenant", self.settings.tenant),
            ("devices", len(self.devices)),
            ("seed", self.settings.seed),
            ("stopped", self.stopped),
            ("seconds", round(seconds, 3)),
            ("requests", self.sent),
            ("answered", answered),
            ("requests_per_second", round(answered / seconds, 1) if seconds else 0.0),
            ("latency_ms", latency),
            ("bytes_downloaded", self.bytes_downloaded),
            ("non_2xx", collections.OrderedDict(
                (str(status), count) for status, count in sorted(self.non_2xx.items()))),
            ("errors", collections.OrderedDict(sorted(self.errors.items()))),
            ("error_examples", collections.OrderedDict(sorted(self.error_examples.items()))),
            ("states", collections.OrderedDict(
                (state, self.states[state]) for state in SIMULATED_STATES)),
            ("outcomes", collections.OrderedDict(sorted(self.outcomes.items()))),
            ("cpu_seconds", round(cpu_seconds, 2)),
        ))


class SimulatedDevice:
    """One virtual device: poll, upload configData when asked, install (or fail to) what it
    is offered, confirm cancellations. One coroutine that sleeps between polls."""

    def __init__(self, simulation, controller_id, authorization):
        self.simulation = simulation
        self.controller_id = controller_id
        self.authorization = authorization
        self.base = "%s/%s/controller/v1/%s" % (simulation.base_path,
                                                 _segment(simulation.settings.tenant),
                                                 _segment(controller_id))
        self.state = "idle"
        self.server_sleep = None
        self.downloaded_action = None

    def enter(self, state):
        self.simulation.entered(self.state, state)
        self.state = state

    def call(self, kind, method, target, document=None, headers=None, sink=None):
        return self.simulation.call(kind, method, target, self.authorization, document,
                                    headers, sink)

    async def live(self, first_delay):
        await asyncio.sleep(first_delay)
        while True:
            try:
                await self.poll_once()
            except SimulationStopped:
                return
            await asyncio.sleep(self.simulation.settings.poll_interval or self.server_sleep or
                                RETRY_SECONDS)

    async def poll_once(self):
        """Poll the root resource and do what its links ask for."""
        offered = True  # until an answer shows otherwise, there may be work waiting
        try:
            answer = await self.call("poll", "GET", self.base)
            if answer.status == 200:
                try:
                    offered = await self.follow(_document(answer))
                except (KeyError, TypeError, AttributeError) as error:
                    raise DeviceProblem("unexpected answer",
                                        "%s: %s" % (type(error).__name__, error))
        except DeviceProblem as problem:
            self.simulation.count_error(problem)
            offered = True
            if self.state in ("downloading", "installing"):
                self.enter("idle")  # the next poll offers the action again
        self.simulation.polled(self, offered)

    async def follow(self, root):
        """Do what the root resource's links ask for; whether an action was offered."""
        self.server_sleep = _sleep_seconds(root["config"]["polling"]["sleep"])
        links = root.get("_links") or {}
        if "configData" in links and self.simulation.settings.configdata:
            await self.upload_config_data(_href(links, "configData"))
        if "cancelAction" in links:
            await self.confirm_cancel(_href(links, "cancelAction"))
        elif "deploymentBase" in links:
            await self.deploy(_href(links, "deploymentBase"))
        # confirmationBase (user consent) is not simulated: such an action just waits.
        return any(rel in links for rel in ("deploymentBase", "cancelAction", "confirmationBase"))

    async def upload_config_data(self, href):
        await self.call("configData", "PUT", self.simulation.target_of(href), {
            "mode": "merge",
            "data": {"serial": self.controller_id, "hwRevision": "sim-1", "simulator": "ddi-lite"}})

    async def confirm_cancel(self, href):
        answer = await self.call("cancel", "GET", self.simulation.target_of(href))
        if answer.status != 200:
            return
        document = _document(answer)
        action_id = str((document.get("cancelAction") or {}).get("stopId") or document["id"])
        answer = await self.call(
            "cancel", "POST", "%s/cancelAction/%s/feedback" % (self.base, _segment(action_id)),
            _feedback("closed", "success", ["ddi-lite simulate: cancelled"]))
        if 200 <= answer.status < 300:
            self.downloaded_action = None
            self.enter("idle")
            self.simulation.closed("cancelled")

    async def deploy(self, href):
        """deploymentBase: download and verify, then proceeding and closed (or downloaded,
        when the server says not to install yet)."""
        simulation = self.simulation
        answer = await self.call("deploymentBase", "GET", simulation.target_of(href))
        if answer.status != 200:
            return
        document = _document(answer)
        action_id = str(document["id"])
        deployment = document["deployment"]
        feedback = "%s/deploymentBase/%s/feedback" % (self.base, _segment(action_id))
        if deployment.get("download") == "skip":
            return  # waiting for a maintenance window
        artifacts = [artifact for chunk in deployment.get("chunks") or []
                     for artifact in chunk.get("artifacts") or []]
        if self.downloaded_action != action_id:
            self.enter("downloading")
            for artifact in artifacts:
                failure = await self.download(artifact)
                if failure is not None:
                    await self.close(feedback, "failure", [failure])
                    return
            self.downloaded_action = action_id
            if deployment.get("update") == "skip":
                answer = await self.call("feedback", "POST", feedback, _feedback(
                    "downloaded", "success", ["ddi-lite simulate: downloaded"]))
                if 200 <= answer.status < 300:
                    self.enter("done")
                    simulation.closed("downloaded")
                return
        if deployment.get("update") == "skip":
            return  # downloaded already; installs when the window opens
        self.enter("installing")
        answer = await self.call("feedback", "POST", feedback, _feedback(
            "proceeding", "none", ["ddi-lite simulate: installing"],
            {"cnt": len(artifacts), "of": len(artifacts)}))
        if not 200 <= answer.status < 300:
            self.enter("idle")
            return
        if _draw(simulation.settings.seed, self.controller_id, action_id) < \
                simulation.settings.failure_rate:
            await self.close(feedback, "failure", ["ddi-lite simulate: installation failed"])
        else:
            await self.close(feedback, "success", ["ddi-lite simulate: installed"])

    async def close(self, feedback, finished, details):
        answer = await self.call("feedback", "POST", feedback,
                                 _feedback("closed", finished, details))
        # 410: hawkBit's answer when the action was closed already (cancelled meanwhile).
        if 200 <= answer.status < 300 or answer.status == 410:
            self.enter("done" if finished == "success" else "failed")
            self.simulation.closed("success" if finished == "success" else "failure")
        else:
            self.enter("idle")

    async def download(self, artifact):
        """Fetch one artifact (whole, or in --range-size pieces) and check its size and hash;
        None when it is good, else what the failure report says."""
        simulation = self.simulation
        name = artifact.get("filename", "?")
        links = artifact.get("_links") or {}
        target = refused = None
        for rel in ("download-http", "download"):
            if rel in links:
                try:
                    target = simulation.target_of(_href(links, rel))
                    break
                except DeviceProblem as problem:
                    refused = refused or problem
        if target is None:
            if refused is not None:
                simulation.count_error(refused)
            return "no download link for %s at %s" % (name, simulation.settings.url)
        hashes = artifact.get("hashes") or {}
        algorithm = next((key for key in ("sha256", "sha1", "md5") if hashes.get(key)), "sha256")
        digest = hashlib.new(algorithm)
        size = artifact.get("size")
        received = [0]

        def take(chunk):
            digest.update(chunk)
            received[0] += len(chunk)
            simulation.bytes_downloaded += len(chunk)

        if simulation.settings.download == "full" or not isinstance(size, int):
            answer = await self.call("download", "GET", target, sink=take)
            if answer.status != 200:
                return "download of %s: HTTP %d" % (name, answer.status)
        else:
            while received[0] < size:
                first = received[0]
                last = min(first + simulation.settings.range_size, size) - 1
                answer = await self.call("download", "GET", target, sink=take,
                                         headers={"Range": "bytes=%d-%d" % (first, last)})
                if answer.status == 200 and first == 0:
                    break  # the server ignored Range and sent it all
                content_range = answer.headers.get("content-range")
                if answer.status != 206 or received[0] != last + 1 or \
                        content_range != "bytes %d-%d/%d" % (first, last, size):
                    return "download of %s bytes %d-%d: HTTP %d, Content-Range %s" % (
                        name, first, last, answer.status, content_range)
        if isinstance(size, int) and received[0] != size:
            simulation.count_error(DeviceProblem("size mismatch", name))
            return "%s has %d bytes, not %d" % (name, received[0], size)
        expected = hashes.get(algorithm)
        if expected and digest.hexdigest() != str(expected).lower():
            simulation.count_error(DeviceProblem("%s mismatch" % algorithm, name))
            return "%s of %s is %s, not %s" % (algorithm, name, digest.hexdigest(), expected)
        return None


class LiveProgress:
    """The simulation's status line on stderr: redrawn in place on a terminal, otherwise
    printed every few seconds."""

    every_seconds = 5

    def __init__(self, stream):
        self.stream = stream
        self.terminal = stream is not None and stream.isatty()
        self._printed = None

    def show(self, text, now):
        if self.stream is None:
            return
        if self.terminal:
            try:
                text = text[:os.get_terminal_size(self.stream.fileno()).columns - 1]
            except OSError:
                pass
            self.stream.write("\r" + text + "\x1b[K")
        elif self._printed is None or now - self._printed >= self.every_seconds:
            self.stream.write(text + "\n")
        else:
            return
        self._printed = now
        self.stream.flush()

    def finish(self):
        if self.terminal and self._printed is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def print_summary(summary):
    print("%d devices against %s (tenant %s, seed %d), stopped after %.1f s: %s" % (
        summary["devices"], summary["url"], summary["tenant"], summary["seed"],
        summary["seconds"], summary["stopped"]))
    print_table([
        ("requests", "%d sent, %d answered, %.1f/s" % (
            summary["requests"], summary["answered"], summary["requests_per_second"])),
        ("downloaded", "%s (%d bytes)" % (_size(summary["bytes_downloaded"]),
                                          summary["bytes_downloaded"])),
        ("devices", ", ".join("%s %d" % item for item in summary["states"].items())),
        ("actions", ", ".join("%s %d" % item for item in summary["outcomes"].items()) or None),
        ("non-2xx", ", ".join("HTTP %s: %d" % item for item in summary["non_2xx"].items())
         or None),
        ("errors", ", ".join("%s: %d" % item for item in summary["errors"].items()) or None),
        ("simulator CPU", "%.1f s (%.0f%% of one core)" % (
            summary["cpu_seconds"], 100 * summary["cpu_seconds"] / max(summary["seconds"], 1e-6))),
    ])
    print()
    print_table([(kind, numbers["requests"], numbers["p50"], numbers["p90"], numbers["p99"],
                  numbers["max"]) for kind, numbers in summary["latency_ms"].items()],
                header=("REQUEST", "COUNT", "P50 MS", "P90 MS", "P99 MS", "MAX MS"))
    for kind, example in summary["error_examples"].items():
        print("e.g. %s: %s" % (kind, example))


def _check_simulate_url(url):
    parts = urllib.parse.urlsplit(url)
    try:
        http.parse_url(url)
        plain = parts.username is None and not parts.query and not parts.fragment
    except ValueError:
        plain = False
    if not plain:
        raise CommandFailed("--url must look like http://HOST:PORT[/PATH] or https://..., "
                            "not %r" % url, 2)
    return url.rstrip("/")


def _read_token_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandFailed("cannot read --token-file %s: %s" % (path, _reason(error)), 2)
    tokens = collections.OrderedDict()
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise CommandFailed("%s line %d: expected 'controllerId token'" % (path, number), 2)
        if not TOKEN_PATTERN.fullmatch(words[1]):
            raise CommandFailed("%s line %d: a token is printable ASCII" % (path, number), 2)
        if words[0] in tokens:
            raise CommandFailed("%s line %d: %s is listed twice" % (path, number, words[0]), 2)
        tokens[words[0]] = words[1]
    if not tokens:
        raise CommandFailed("%s lists no devices" % path, 2)
    return tokens


def _simulated_devices(args):
    """(controller id, Authorization value) of every device, as the command line says."""
    if args.token_file is not None:
        if args.prefix is not None:
            raise CommandFailed("--prefix names generated devices; --token-file names its own", 2)
        tokens = _read_token_file(args.token_file)
        if args.devices is not None and args.devices > len(tokens):
            raise CommandFailed("--devices %d, but %s lists only %d" % (
                args.devices, args.token_file, len(tokens)), 2)
        listed = list(tokens.items())[:args.devices or len(tokens)]
        return [(controller_id, "TargetToken " + token) for controller_id, token in listed]
    prefix = "sim-" if args.prefix is None else args.prefix
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{0,200}", prefix):
        raise CommandFailed("--prefix may have up to 200 letters, digits or _.:-", 2)
    count = args.devices or 10
    controller_ids = ["%s%0*d" % (prefix, max(5, len(str(count))), n) for n in range(1, count + 1)]
    if args.gateway_token is not None:
        if not TOKEN_PATTERN.fullmatch(args.gateway_token):
            raise CommandFailed("--gateway-token must be printable ASCII without blanks", 2)
        return [(controller_id, "GatewayToken " + args.gateway_token)
                for controller_id in controller_ids]
    return [(controller_id, "TargetToken " + token)
            for controller_id, token in _created_targets(args, prefix, controller_ids)]


def _created_targets(args, prefix, controller_ids):
    """Create the targets that do not exist yet through the Management API, reuse the
    others; (controller id, security token) pairs."""
    password = args.password if args.password is not None else \
        os.environ.get("DDI_LITE_PASSWORD")
    user = args.user or os.environ.get("DDI_LITE_USER") or "admin"
    client = ManagementClient(args.url, user, password)
    try:
        wanted = set(controller_ids)
        listed = _all_pages(client, "/targets", {"q": "controllerId==%s*" % prefix})
        tokens = {target["controllerId"]: target.get("securityToken")
                  for target in listed if target["controllerId"] in wanted}
        missing = [controller_id for controller_id in controller_ids
                   if controller_id not in tokens]
        for start in range(0, len(missing), 500):
            created = client.call("POST", "/targets", [
                {"controllerId": controller_id, "description": "ddi-lite simulate"}
                for controller_id in missing[start:start + 500]])
            tokens.update((target["controllerId"], target.get("securityToken"))
                          for target in created)
    finally:
        client.close()
    print("ddi-lite: %d targets created, %d reused" % (
        len(missing), len(controller_ids) - len(missing)), file=sys.stderr)
    for controller_id in controller_ids:
        if not tokens.get(controller_id):
            raise CommandFailed("the server shows no security token for %s (may %s read "
                                "tokens?)" % (controller_id, user))
    return [(controller_id, tokens[controller_id]) for controller_id in controller_ids]


def simulate(args):
    """`ddi-lite simulate`: run the simulation and print its summary. Exit code 0; 1 when the
    server never answered or --stop-when-done was not reached; 2 for a wrong command line;
    130 when interrupted (after the summary)."""
    try:
        if (args.user is not None or args.password is not None) and not args.create_targets:
            raise CommandFailed("--user and --password go with --create-targets", 2)
        if args.range_size is not None and args.download != "ranges":
            raise CommandFailed("--range-size goes with --download ranges", 2)
        args.url = _check_simulate_url(args.url)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.tenant):
            raise CommandFailed("--tenant has 1 to 64 letters, digits or _.-", 2)
        devices = _simulated_devices(args)
    except CommandFailed as failure:
        print("ddi-lite: %s" % failure, file=sys.stderr)
        return failure.exit_code
    except (KeyError, IndexError, TypeError, AttributeError) as error:  # --create-targets
        print("ddi-lite: unexpected answer from %s (%s: %s)" % (
            args.url, type(error).__name__, error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    settings = SimulationSettings(
        url=args.url, tenant=args.tenant, poll_interval=args.poll_interval,
        download=args.download, range_size=args.range_size or 1 << 20,
        failure_rate=args.failure_rate,
        seed=args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big"),
        duration=args.duration, max_requests=args.max_requests,
        stop_when_done=args.stop_when_done, configdata=args.configdata,
        connections=args.connections, timeout=args.timeout)
    simulation = Simulation(settings, devices, progress=sys.stderr)
    summary = asyncio.run(_until_interrupted(simulation))
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    if summary["stopped"] == "interrupted":
        return 130
    if not summary["answered"] or (settings.stop_when_done and summary["stopped"] != "done"):
        return 1
    return 0


async def _until_interrupted(simulation):
    """Run the simulation; Ctrl-C (or SIGTERM) ends it early, with a summary."""
    loop = asyncio.get_running_loop()
    handled = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, simulation.stop, "interrupted")
            handled.append(number)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # Windows, or not the main thread: Ctrl-C stops without a summary
    try:
        return await simulation.run()
    finally:
        for number in handled:
            loop.remove_signal_handler(number)
