"""GET /metrics: Prometheus's text format 0.0.4, behind the operators' login unless
[server] metrics_open; requests counted per route family and status class with a latency
histogram; the store's counts as created; and Waitress's queue depth as a figure instead of
its "Task queue depth" warnings, on a real server."""

import base64
import math
import re
import socket
import urllib.request

import pytest

import ddi_lite
import live
import storage
from conftest import DEVICE, Server, token
from service import connections, metrics

OPERATOR = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode("ascii")}
POLL = "/<tenant>/controller/v1/<controller_id>"
DEPLOYMENT = POLL + "/deploymentBase/<action_id>"


###############################################################################
# A strict reader of the text format ##########################################
###############################################################################

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'  # name="value", escaped
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
_SAMPLE = re.compile(r"(?P<name>%s)(?:\{(?P<labels>%s(?:,%s)*)?\})? (?P<value>\S+)"
                     r"(?: -?[0-9]+)?" % (_NAME, _PAIR, _PAIR))
_VALUE = re.compile(r"[+-]?(?:Inf|NaN|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)")
KINDS = ("counter", "gauge", "histogram", "summary", "untyped")


def parse(text):
    """The families of an exposition, {name: {"type", "help", "samples": [(name, labels,
    value)]}}; AssertionError on anything the format does not allow: a sample outside its
    declared family or before its TYPE, a family split in two, a name, label or value that
    does not parse, a duplicate sample, a missing final line feed."""
    assert text.endswith("\n"), "the last line must end with a line feed"
    families, current, seen = {}, None, set()
    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (number, line)
        if line.startswith("#"):
            words = line.split(" ", 3)
            if len(words) >= 3 and words[1] in ("HELP", "TYPE"):
                name = words[2]
                assert re.fullmatch(_NAME, name), where
                if name != current:
                    assert name not in families, "a family split in two: " + where
                    families[name] = {"type": None, "help": None, "samples": []}
                    current = name
                family = families[name]
                key = words[1].lower()
                assert family[key] is None, "a second %s: %s" % (words[1], where)
                family[key] = words[3] if len(words) > 3 else ""
                if key == "type":
                    assert family["type"] in KINDS and not family["samples"], where
            continue
        assert line.strip(), "no empty lines here: " + where
        match = _SAMPLE.fullmatch(line)
        assert match, where
        name, labels_text, value = match.group("name", "labels", "value")
        assert _VALUE.fullmatch(value), where
        labels = dict((label, _unescape(text)) for label, text
                      in _LABEL.findall(labels_text or ""))
        family = families.get(current)
        assert family is not None and family["type"] is not None, "no TYPE before " + where
        suffixes = ("_bucket", "_sum", "_count") if family["type"] == "histogram" else ("",)
        assert any(name == current + suffix for suffix in suffixes), \
            "%s is not of family %s: %s" % (name, current, where)
        identity = (name, tuple(sorted(labels.items())))
        assert identity not in seen, "duplicate sample: " + where
        seen.add(identity)
        family["samples"].append((name, labels, float(value.replace("Inf", "inf"))))
    return families


def _unescape(text):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text)


def value(families, name, **labels):
    """The one sample of `name` with these labels (among others), or 0 when there is none."""
    found = [sample_value for family in families.values()
             for sample_name, sample_labels, sample_value in family["samples"]
             if sample_name == name and labels.items() <= sample_labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0


def scrape(server):
    response = server.http.get("/metrics", headers=OPERATOR)
    return parse(response.text)


def histogram_series(family):
    """{labels without le: {"buckets": [(le, count)], "sum": x, "count": n}}"""
    series = {}
    for name, labels, sample in family["samples"]:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            entry["buckets"].append((float(labels["le"].replace("Inf", "inf")), sample))
        else:
            entry[name.rsplit("_", 1)[1]] = sample
    return series


def test_the_reader_refuses_what_the_format_does_not_allow():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
    assert parse(good)["a_total"]["samples"] == [("a_total", {"x": "1"}, 2.0)]
    for bad in (good[:-1], good.replace("# TYPE a_total counter\n", ""),
                good + 'a_total{x="1"} 3\n', good + "b 1\n", good.replace(" 2", " two"),
                good.replace('x="1"', 'x="a"b"'), good + "# TYPE a_total gauge\n"):
        with pytest.raises(AssertionError):
            parse(bad)


###############################################################################
# Access ######################################################################
###############################################################################

def test_metrics_need_an_operator_login_by_default(server):
    response = server.http.get("/metrics", status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hawkBit"'
    assert response.content_type == "application/json"
    assert (response.json["status"], response.json["error"]) == (401, "Unauthorized")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode("ascii")}
    assert server.http.get("/metrics", headers=wrong, status=401).status_int == 401
    assert server.http.get("/metrics", headers=token(), status=401).status_int == 401


def test_wrong_logins_for_metrics_are_rationed_as_for_the_management_api(server):
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode("ascii")}
    answers = [server.http.get("/metrics", headers=wrong, status="*")
               for _ in range(server.config["limits", "login_failures"] + 1)]
    assert [answer.status_int for answer in answers[-2:]] == [401, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert answers[-1].json["status"] == 429


def test_metrics_open_without_login_with_the_setting(tmp_path):
    config = ddi_lite.load_config(path=None, environ={"DDI_LITE_SERVER_METRICS_OPEN": "true"},
                                  overrides={"server.data_dir": str(tmp_path / "data")})
    server = Server(config)
    try:
        response = server.http.get("/metrics")
        assert "ddi_lite_targets" in parse(response.text)
    finally:
        storage.close_store()


def test_the_page_is_prometheus_text_version_0_0_4(server):
    response = server.http.get("/metrics", headers=OPERATOR)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = parse(response.text)
    for family in families.values():
        assert family["help"] and family["type"]
    assert families["ddi_lite_targets"]["type"] == "gauge"
    assert families["ddi_lite_http_requests_total"]["type"] == "counter"
    assert families["ddi_lite_http_request_duration_seconds"]["type"] == "histogram"
    assert value(families, "process_start_time_seconds") > 0


###############################################################################
# Requests ####################################################################
###############################################################################

def test_requests_are_counted_by_route_family_and_status_class(server):
    action = server.deployment()
    before = scrape(server)
    for number in range(3):
        server.http.get(DEVICE + "/dev-1", headers=token())
    server.http.get(DEVICE + "/dev-1", headers=token("wrong"), status=401)
    server.http.get(DEVICE + "/dev-1/deploymentBase/%d" % action.id, headers=token())
    server.http.get("/rest/v1/targets", headers=OPERATOR)
    server.http.get("/no/such/path", status=404)
    after = scrape(server)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    counted = "ddi_lite_http_requests_total"
    assert moved(counted, method="GET", route=POLL, status="2xx") == 3
    assert moved(counted, method="GET", route=POLL, status="4xx") == 1
    assert moved(counted, method="GET", route=DEPLOYMENT, status="2xx") == 1
    assert moved(counted, method="GET", route="/rest/v1/targets", status="2xx") == 1
    assert moved(counted, method="GET", route="unmatched", status="4xx") == 1
    # The scrape before is counted by the one after.
    assert moved(counted, method="GET", route="/metrics", status="2xx") == 1
    timed = "ddi_lite_http_request_duration_seconds_count"
    assert moved(timed, method="GET", route=POLL, status="2xx") == 3


def test_the_route_label_is_the_rule_never_the_path(server):
    for number in range(20):
        server.target("dev-%d" % number, "token-%d" % number)
        server.http.get(DEVICE + "/dev-%d" % number, headers=token("token-%d" % number))
    routes = {labels["route"] for _, labels, _ in
              scrape(server)["ddi_lite_http_requests_total"]["samples"]}
    assert routes == {POLL}
    server.http.request("/x", method="BREW", status="*")
    methods = {labels["method"] for _, labels, _ in
               scrape(server)["ddi_lite_http_requests_total"]["samples"]}
    assert methods == {"GET", "OTHER"}


def test_histogram_buckets_are_cumulative_and_agree_with_count_and_sum(server):
    server.target()
    for number in range(5):
        server.http.get(DEVICE + "/dev-1", headers=token())
    server.http.get("/rest/v1/targets", headers=OPERATOR)
    families = scrape(server)
    series = histogram_series(families["ddi_lite_http_request_duration_seconds"])
    assert len(series) >= 2
    for labels, entry in series.items():
        bounds = [bound for bound, _ in entry["buckets"]]
        counts = [count for _, count in entry["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, labels
        assert list(metrics.BUCKETS) == bounds[:-1], labels
        assert counts == sorted(counts), "buckets must be cumulative: %s" % (labels,)
        assert entry["count"] == counts[-1], labels
        assert 0 < entry["sum"] <= entry["count"] * 10, labels
        assert value(families, "ddi_lite_http_requests_total", **dict(labels)) == entry["count"]
    poll = series[(("method", "GET"), ("route", POLL), ("status", "2xx"))]
    assert poll["count"] == 5


def test_the_question_before_a_body_is_not_a_request_of_its_own(server):
    """Behind Waitress the app is first asked whether a body may come (BEFORE_BODY); only the
    request's own answer counts, or the refusal when the body may not come."""
    server.target()
    config_data = DEVICE + "/dev-1/configData"
    question = {connections.BEFORE_BODY: True}
    assert server.http.put(config_data, headers=token(), extra_environ=question,
                           status="*").status_int == 100
    server.http.put_json(config_data, {"data": {"hw": "1"}}, headers=token())
    server.http.put(config_data, headers=token("wrong"), extra_environ=question, status=401)
    families = scrape(server)
    rule = POLL + "/configData"
    assert value(families, "ddi_lite_http_requests_total", route=rule, status="2xx") == 1
    assert value(families, "ddi_lite_http_requests_total", route=rule, status="1xx") == 0
    assert value(families, "ddi_lite_http_requests_total", route=rule, status="4xx") == 1


def test_the_app_answer_passes_through_unchanged():
    """A download's file wrapper must reach Waitress as the app returned it (Waitress sends
    it from the file only when it recognises it)."""
    body = object()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "9")])
        return body
    observed = metrics.Metrics().observe(app, lambda environ: "/file")
    assert observed({"REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: None) \
        is body


def test_an_exception_out_of_the_app_counts_as_a_5xx():
    recorder = metrics.Metrics()

    def app(environ, start_response):
        raise RuntimeError("broken")
    with pytest.raises(RuntimeError):
        recorder.observe(app, lambda environ: "/x")({"REQUEST_METHOD": "GET"}, None)
    families = parse(recorder.exposition().decode("utf-8"))
    assert value(families, "ddi_lite_http_requests_total", route="/x", status="5xx") == 1


###############################################################################
# The store ###################################################################
###############################################################################

def test_targets_by_update_status_match_what_was_created(server):
    server.target("new-1", "t1")
    server.target("new-2", "t2")
    server.target("polled", "t3")
    server.http.get(DEVICE + "/polled", headers=token("t3"))
    server.deployment(controller_id="assigned-1")
    server.deployment(controller_id="assigned-2")
    families = scrape(server)
    figures = {labels["update_status"]: count
               for _, labels, count in families["ddi_lite_targets"]["samples"]}
    assert figures == {"unknown": 2, "registered": 1, "pending": 2, "in_sync": 0, "error": 0}


def test_actions_by_status_match_what_happened(server):
    server.deployment(controller_id="dev-1")
    server.deployment(controller_id="dev-2")
    closed = server.deployment(controller_id="dev-3")
    server.http.post_json(DEVICE + "/dev-3/deploymentBase/%d/feedback" % closed.id,
                          {"status": {"execution": "closed", "result": {"finished": "success"}}},
                          headers=token("token-3"))
    families = scrape(server)
    assert value(families, "ddi_lite_actions", status="running") == 2
    assert value(families, "ddi_lite_actions", status="finished") == 1
    assert value(families, "ddi_lite_actions", status="canceled") == 0


def test_artifact_counts_and_bytes_match_what_was_uploaded(server):
    server.module(name="a", files={"a.bin": b"a" * 1000, "shared.bin": b"s" * 300})
    server.module(name="b", files={"copy.bin": b"s" * 300})
    families = scrape(server)
    assert value(families, "ddi_lite_artifacts") == 3
    assert value(families, "ddi_lite_artifact_bytes") == 1600
    assert value(families, "ddi_lite_artifact_blobs") == 2
    assert value(families, "ddi_lite_artifact_blob_bytes") == 1300


def test_readme_lists_every_metric_the_page_has(server):
    readme = open(live.PROJECT_DIR + "/README.md", encoding="utf-8").read()
    table = readme.split("| metric | type | labels | what it counts |\n")[1].split("\n\n")[0]
    listed = {name for row in table.splitlines()[1:]
              for name in re.findall(r"`((?:ddi_lite|process)_[a-z_]+)`", row.split("|")[1])}
    answered = set(scrape(server)) | {name for _, name, _, _ in metrics.SERVER_FIGURES}
    assert listed == answered


###############################################################################
# Waitress's queue, on a real server ##########################################
###############################################################################

def test_queue_depth_is_a_figure_not_a_log_line(tmp_path):
    """One worker thread, 64 connections sending their polls at once: requests wait for the
    thread, and Waitress would log "Task queue depth is N" for most of them."""
    server = live.DdiLite(tmp_path / "server", threads=1)
    try:
        live.api(server.url, "POST", "/targets",
                 [{"controllerId": "dev-1", "securityToken": "token-1"}])
        request = ("GET /DEFAULT/controller/v1/dev-1 HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: TargetToken token-1\r\nConnection: close\r\n\r\n").encode()
        sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=30)
                   for _ in range(64)]
        for connection in sockets:
            connection.sendall(request)
        for connection in sockets:
            with connection, connection.makefile("rb") as answer:
                assert answer.readline().startswith(b"HTTP/1.1 200")
                answer.read()
        page = urllib.request.Request(server.url + "/metrics",
                                      headers={"Authorization": live.ADMIN})
        with urllib.request.urlopen(page, timeout=10) as response:
            families = parse(response.read().decode("utf-8"))
    finally:
        server.stop()
    assert value(families, "ddi_lite_waitress_queue_depth_max") > 0
    assert value(families, "ddi_lite_waitress_threads") == 1
    assert value(families, "ddi_lite_waitress_busy_threads") == 1  # the one serving /metrics
    assert value(families, "ddi_lite_open_connections") >= 1
    assert value(families, "ddi_lite_http_requests_total", route=POLL, status="2xx") == 64
    assert "Task queue depth" not in server.log_path.read_text("utf-8")
