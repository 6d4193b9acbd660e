"""Figures of a running server for Prometheus, in its text exposition format 0.0.4.

`Metrics.observe(app, route_of)` wraps a WSGI app: every answer is counted and timed, by
method, route family and status class, in a histogram. The route family is what `route_of`
names (the app's route rule, e.g. `/<tenant>/controller/v1/<controller_id>`), never the raw
path, so that the number of series stays bounded however many devices poll. The time is the
app's, from its call to its answer: a download's bytes stream after that, and do not count.

What is not per request is asked when Prometheus scrapes: the store's counts (`watch_store`),
the connection layer's figures (`watch_server`, e.g. Waitress's queue depth) and this
process's. Each source answers a dict of plain values, which the tables below name as metrics.
Knows the app only as WSGI; imports nothing of ddi-lite.
Sections:

    Families      one metric and its samples, and how they are written
    Requests      the per-request record and the WSGI wrapper
    Metrics       everything a scrape answers
"""

import bisect
import collections
import math
import os
import resource
import threading
import time

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


###############################################################################
# Families ####################################################################
###############################################################################

# One metric: `samples` are (suffix, labels, value), `labels` a tuple of (name, value) pairs.
# `kind` is counter, gauge or histogram.
Family = collections.namedtuple("Family", "name kind help samples")


def gauge(name, description, value, label=None):
    """A gauge of one value, or with `label` one sample per item of a dict `value`."""
    if label is None:
        return Family(name, "gauge", description, [("", (), value)])
    return Family(name, "gauge", description, [("", ((label, key),), count)
                                               for key, count in value.items()])


def _escape_label(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value):
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def render(families):
    """The families in the text exposition format: a HELP and a TYPE line each, then one line
    per sample; UTF-8, every line ending in a line feed."""
    lines = []
    for family in families:
        lines.append("# HELP %s %s" % (family.name,
                                       family.help.replace("\\", "\\\\").replace("\n", "\\n")))
        lines.append("# TYPE %s %s" % (family.name, family.kind))
        for suffix, labels, value in family.samples:
            if labels:
                lines.append("%s%s{%s} %s" % (
                    family.name, suffix,
                    ",".join('%s="%s"' % (name, _escape_label(str(text)))
                             for name, text in labels),
                    _number(value)))
            else:
                lines.append("%s%s %s" % (family.name, suffix, _number(value)))
    return ("\n".join(lines) + "\n").encode("utf-8")


###############################################################################
# Requests ####################################################################
###############################################################################

# Upper bounds (seconds) of the latency buckets: a poll answers in about a millisecond, an
# upload may take seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Any other method (a client may send any token) is counted as OTHER: a bounded label.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))

# The question the connection layer asks before a body (service.connections.BEFORE_BODY) is
# answered `100 Continue` when the app lets the body come: the request itself follows, and
# only its answer counts. A refusal there is the request's one answer, and counts.
CONTINUE = "1"


class Requests:
    """Answered requests by (method, route, status class): per latency bucket how many (not
    cumulative), and the sum of their times. One lock, held for a few dictionary steps."""

    def __init__(self, buckets=BUCKETS):
        self.buckets = buckets
        self._series = {}
        self._lock = threading.Lock()

    def record(self, method, route, status_class, seconds):
        index = bisect.bisect_left(self.buckets, seconds)
        key = (method, route, status_class)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0] * (len(self.buckets) + 1) + [0.0]
            series[index] += 1
            series[-1] += seconds

    def families(self):
        with self._lock:
            series = sorted((key, list(values)) for key, values in self._series.items())
        counts, histogram = [], []
        bounds = [_number(bound) for bound in self.buckets] + ["+Inf"]
        for (method, route, status_class), values in series:
            labels = (("method", method), ("route", route), ("status", status_class))
            total = 0
            for bound, count in zip(bounds, values[:-1]):
                total += count
                histogram.append(("_bucket", labels + (("le", bound),), total))
            histogram.append(("_sum", labels, values[-1]))
            histogram.append(("_count", labels, total))
            counts.append(("", labels, total))
        return [
            Family("ddi_lite_http_requests_total", "counter",
                   "Requests answered, by method, route and status class.", counts),
            Family("ddi_lite_http_request_duration_seconds", "histogram",
                   "Time from the app's call to its answer, by method, route and status "
                   "class.", histogram),
        ]

    def observe(self, app, route_of):
        """`app`, with each answer recorded; `route_of(environ)`, asked after the app has
        answered, names the route family."""
        clock = time.perf_counter
        record = self.record

        def observed(environ, start_response):
            started = clock()
            answered = ["500"]  # an exception out of the app becomes Waitress's 500

            def start(status, headers, exc_info=None):
                answered[0] = status
                return start_response(status, headers, exc_info)
            try:
                return app(environ, start)
            finally:
                status = answered[0]
                if status[0] != CONTINUE:
                    method = environ.get("REQUEST_METHOD", "")
                    record(method if method in METHODS else "OTHER", route_of(environ),
                           status[0] + "xx", clock() - started)
        return observed


###############################################################################
# Metrics #####################################################################
###############################################################################

# What the connection layer reports (service.connections.Server.figures): the key of each
# figure, its metric's name and description, and the label of its values (None: one value).
SERVER_FIGURES = (
    ("queue_depth", "ddi_lite_waitress_queue_depth",
     "Requests waiting for a free worker thread now.", None),
    ("queue_depth_max", "ddi_lite_waitress_queue_depth_max",
     "The most requests that have waited for a worker thread at once since the start.", None),
    ("busy_threads", "ddi_lite_waitress_busy_threads", "Worker threads serving a request now.",
     None),
    ("threads", "ddi_lite_waitress_threads", "Worker threads.", None),
    ("connections", "ddi_lite_open_connections", "Client connections open now.", None),
)

# What the store reports (storage.counts.store_counts), the same way.
STORE_FIGURES = (
    ("targets", "ddi_lite_targets", "Targets by update status.", "update_status"),
    ("actions", "ddi_lite_actions", "Actions by status.", "status"),
    ("artifacts", "ddi_lite_artifacts", "Artifacts of software modules (deleted ones too).",
     None),
    ("artifact_bytes", "ddi_lite_artifact_bytes", "The artifacts' sizes added up.", None),
    ("blobs", "ddi_lite_artifact_blobs",
     "Files in the blob store: artifacts of the same content share one.", None),
    ("blob_bytes", "ddi_lite_artifact_blob_bytes", "Bytes the blob store holds.", None),
)


class Metrics:
    """The figures a scrape answers: the requests (`observe`), the store's (`watch_store`),
    the server's (`watch_server`) and the process's."""

    def __init__(self):
        self.requests = Requests()
        self.started = time.time()
        self._sources = []

    def observe(self, app, route_of):
        return self.requests.observe(app, route_of)

    def watch_store(self, figures):
        """`figures()` answers a dict with the keys of STORE_FIGURES; asked at each scrape."""
        self._sources.append((figures, STORE_FIGURES))

    def watch_server(self, figures):
        """`figures()` answers a dict with the keys of SERVER_FIGURES; asked at each scrape."""
        self._sources.append((figures, SERVER_FIGURES))

    def watch(self, figures, table):
        """`figures()` answers a dict with the keys of `table` (rows as in STORE_FIGURES),
        e.g. gateway mode's; asked at each scrape."""
        self._sources.append((figures, table))

    def exposition(self):
        """The page a scrape answers, in the text exposition format."""
        families = self.requests.families()
        for figures, table in self._sources:
            values = figures()
            families += [gauge(name, description, values[key], label)
                         for key, name, description, label in table]
        return render(families + self._process())

    def _process(self):
        """The process facts Prometheus's client libraries name the same way."""
        times = os.times()
        result = [
            gauge("process_start_time_seconds", "When the server started (Unix time).",
                  self.started),
            Family("process_cpu_seconds_total", "counter", "CPU time used, user and system.",
                   [("", (), times.user + times.system)]),
        ]
        try:
            with open("/proc/self/statm") as statm:
                resident_pages = int(statm.read().split()[1])
            result.append(gauge("process_resident_memory_bytes", "Resident memory.",
                                resident_pages * resource.getpagesize()))
            result.append(gauge("process_open_fds", "Open file descriptors.",
                                len(os.listdir("/proc/self/fd"))))
        except OSError:  # no /proc: not Linux
            pass
        return result
