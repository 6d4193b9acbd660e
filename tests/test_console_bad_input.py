"""No console page answers 500: every console route, signed in and with the session's CSRF
token, gets hostile path segments, query parameters and form fields, and answers a 2xx,
3xx or 4xx page."""

import pytest

import console
from storage import rollouts
from ui import csrf, sign_in

# (Bytes that are not UTF-8 cannot be sent in a path through WebTest's cookie jar.)
SEGMENTS = ["0", "-1", "x", "9" * 30, "%00", "..", "a%20b", "%C3%A9", "1.5", "-0",
            "9223372036854775808"]
FIELDS = ["", " ", "x", "-1", "9" * 30, "\x00", "<script>", "'\"*\\", "\u00e9" * 300,
          "updateStatus==", "a" * 70000]
QUERY_NAMES = ["text", "rsql", "status", "tag", "sort", "dir", "offset", "next", "said", "csrf"]
FORM_NAMES = ["controllerId", "name", "version", "type", "set", "force", "tag", "confirm",
              "module", "pollingTime", "description", "authentication.targettoken.enabled",
              "next", "user", "password", "query", "filter", "groups", "percentages",
              "successThreshold", "errorThreshold", "startAt", "confirmationRequired",
              "remark"]


@pytest.fixture
def signed_in(server):
    server.target("dev-1", "token-1")
    module = server.module(files={"a.bin": b"abc"})
    distribution_set = server.distribution_set([module])
    server.assign(distribution_set, "dev-1")
    rollouts.create_rollout("", {"name": "wave", "distributionSetId": distribution_set.id,
                                 "targetFilterQuery": "controllerId==dev-1"}, "test")
    sign_in(server.http)
    return server


def routes_of(server):
    return [(method, console.PREFIX + path) for method, path, _ in _console_table()]


def _console_table():
    """The console's (method, path, handler) rows, read from a Console's install()."""
    class Recorder:
        def __init__(self):
            self.rows = []

        def route(self, path, method, handler):
            self.rows.append((method, path[len(console.PREFIX):], handler))

    class Config(dict):
        def __getitem__(self, key):
            return {"console_session": 60, "max_body_bytes": 1, "max_artifact_bytes": 1,
                    "trusted_proxies": "", "workers": 1, "url": ""}[key[1]]
    recorder = Recorder()
    console.Console(Config(), None, None, None, None).install(recorder)
    return recorder.rows


def filled(rule, segment):
    path = rule
    for name in ("<cid>", "<aid>", "<tid>", "<mid>", "<did>", "<name>", "<rid>", "<gid>",
                 "<verb>"):
        path = path.replace(name, segment)
    return path


def test_every_route_is_walked():
    assert len(_console_table()) >= 32


def test_hostile_path_segments_never_answer_500(signed_in):
    token = csrf(signed_in.http.get("/ui"))
    for method, rule in routes_of(signed_in):
        if rule.endswith("/signout") or "<" not in rule:
            continue
        for segment in SEGMENTS:
            path = filled(rule, segment)
            if method == "GET":
                response = signed_in.http.get(path, expect_errors=True)
            elif rule.endswith("/artifacts"):
                response = signed_in.http.post(path + "?csrf=" + token, expect_errors=True,
                                               upload_files=[("file", "a.bin", b"x")])
            else:
                response = signed_in.http.post(path, {"csrf": token}, expect_errors=True)
            assert response.status_int < 500, (method, path, response.text[:300])


@pytest.mark.parametrize("value", FIELDS)
def test_hostile_query_parameters_never_answer_500(signed_in, value):
    for method, rule in routes_of(signed_in):
        if method != "GET" or "<" in rule:
            continue
        for name in QUERY_NAMES:
            response = signed_in.http.get(rule, {name: value}, expect_errors=True)
            assert response.status_int < 500, (rule, name, value[:20], response.text[:300])


@pytest.mark.parametrize("value", FIELDS)
def test_hostile_form_fields_never_answer_500(signed_in, value):
    posts = []
    for method, rule in routes_of(signed_in):
        if method != "POST" or rule.endswith(("/signout", "/artifacts")):
            continue
        if "<verb>" in rule:  # every verb of a rollout, each in its own request
            posts.extend(rule.replace("<verb>", verb) for verb in console.ROLLOUT_VERBS)
        else:
            posts.append(rule)
    for rule in posts:
        path = filled(rule, "1").replace("/targets/1", "/targets/dev-1")
        token = csrf(signed_in.http.get("/ui")) if "/signin" not in rule else "x"
        fields = {name: value for name in FORM_NAMES}
        fields["csrf"] = token
        response = signed_in.http.post(path, fields, expect_errors=True)
        assert response.status_int < 500, (path, value[:20], response.text[:300])
        if response.status_int == 303 and "/signin" in response.location:
            sign_in(signed_in.http)


def test_a_form_body_that_is_not_utf8_is_a_400_page(signed_in):
    token = csrf(signed_in.http.get("/ui"))
    response = signed_in.http.post("/ui/targets", b"csrf=" + token.encode() +
                                   b"&controllerId=%ff%fe",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"},
                                   expect_errors=True)
    assert response.status_int == 400
