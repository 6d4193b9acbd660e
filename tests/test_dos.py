"""What the app does so that clients without credentials cannot stop the devices (issue 9):

- wrong operator logins are rationed: after [limits] login_failures a client is answered 429
  for [limits] login_pause seconds without a password check, and beyond [limits]
  password_checks checks at once every login gets 429; a login already verified passes;
- the question the server asks before it reads a body (BEFORE_BODY, see `serve`) is answered
  right after authentication: the refusal a request without valid credentials would get, the
  route's size error for a declared body beyond its limit, else 100 Continue with the limit,
  and nothing is changed by asking.

What lives between Waitress and the app (deadlines, the stop before a body, the connection
limit) is tested against real processes in tests/stress/test_dos_*.py.
"""

import base64
import threading

import pytest
import waitress.adjustments
import webob

import ddi_lite
from service import configuration, connections
from storage import accounts as operator_accounts
from storage import ddi

DEVICE = "/DEFAULT/controller/v1"
CLIENT = "192.0.2.10"


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode("ascii")


@pytest.fixture
def checks(monkeypatch):
    """The password of every check made, in order."""
    made = []
    matches = operator_accounts._password_matches

    def counting(password, stored):
        made.append(password)
        return matches(password, stored)
    monkeypatch.setattr(operator_accounts, "_password_matches", counting)
    return made


@pytest.fixture
def clock(monkeypatch):
    """A monotonic clock the test moves: [now]."""
    now = [1000.0]
    monkeypatch.setattr(operator_accounts.time, "monotonic", lambda: now[0])
    return now


def accounts(**limits):
    return operator_accounts.Accounts(
        {"admin": operator_accounts.hash_password("admin", iterations=1000)}, **limits)


def test_wrong_logins_beyond_login_failures_are_answered_429_without_a_check(checks, clock):
    guarded = accounts(login_failures=3, login_pause=30)
    assert [guarded.verify("admin", "wrong-%d" % n, CLIENT) for n in range(3)] == [False] * 3
    with pytest.raises(operator_accounts.PasswordNotChecked) as paused:
        guarded.verify("admin", "admin", CLIENT)
    assert paused.value.seconds == 30
    assert len(checks) == 3


def test_an_unknown_user_counts_as_a_wrong_login(checks, clock):
    guarded = accounts(login_failures=2)
    assert not guarded.verify("nobody", "x", CLIENT)
    assert not guarded.verify("admin", "wrong", CLIENT)
    with pytest.raises(operator_accounts.PasswordNotChecked):
        guarded.verify("admin", "admin", CLIENT)


def test_a_pause_ends_after_login_pause_and_the_client_may_try_as_often_again(checks, clock):
    guarded = accounts(login_failures=2, login_pause=30)
    guarded.verify("admin", "wrong", CLIENT)
    guarded.verify("admin", "wrong", CLIENT)
    clock[0] += 29
    with pytest.raises(operator_accounts.PasswordNotChecked) as paused:
        guarded.verify("admin", "admin", CLIENT)
    assert paused.value.seconds == 1
    clock[0] += 1
    assert not guarded.verify("admin", "wrong", CLIENT)
    assert guarded.verify("admin", "admin", CLIENT)


def test_a_right_login_forgives_the_wrong_ones_before_it(clock):
    guarded = accounts(login_failures=2)
    assert not guarded.verify("admin", "wrong", CLIENT)
    assert guarded.verify("admin", "admin", CLIENT)
    assert not guarded.verify("admin", "wrong", CLIENT)
    assert guarded.verify("admin", "admin", CLIENT)


def test_wrong_logins_are_counted_per_client(clock):
    guarded = accounts(login_failures=1)
    guarded.verify("admin", "wrong", CLIENT)
    with pytest.raises(operator_accounts.PasswordNotChecked):
        guarded.verify("admin", "admin", CLIENT)
    assert guarded.verify("admin", "admin", "192.0.2.11")


def test_a_verified_login_is_let_in_while_its_client_pauses(checks, clock):
    guarded = accounts(login_failures=1)
    assert guarded.verify("admin", "admin", CLIENT)
    assert not guarded.verify("admin", "wrong", CLIENT)
    assert guarded.verify("admin", "admin", CLIENT)
    assert checks == ["admin", "wrong"]


def test_login_failures_0_never_pauses(checks):
    guarded = accounts(login_failures=0)
    assert not any(guarded.verify("admin", "wrong", CLIENT) for _ in range(20))
    assert guarded.verify("admin", "admin", CLIENT)


def test_logins_beyond_password_checks_at_once_are_answered_429(monkeypatch):
    guarded = accounts(login_failures=0, password_checks=1)
    started, release = threading.Event(), threading.Event()

    def slow(password, stored):
        started.set()
        release.wait(5)
        return False
    monkeypatch.setattr(operator_accounts, "_password_matches", slow)
    first = threading.Thread(target=guarded.verify, args=("admin", "wrong", CLIENT))
    first.start()
    started.wait(5)
    try:
        with pytest.raises(operator_accounts.PasswordNotChecked) as busy:
            guarded.verify("admin", "other", "192.0.2.11")
    finally:
        release.set()
        first.join(5)
    assert busy.value.seconds == 1


def test_the_management_api_answers_a_pausing_client_429_with_retry_after(server):
    server.http.app = ddi_lite.create_app(limited(server.config, login_failures=1))
    server.http.get("/rest/v1/targets", headers={"Authorization": basic("admin", "x")},
                    status=401)
    response = server.http.get("/rest/v1/targets",
                               headers={"Authorization": basic("admin", "admin")}, status=429)
    assert response.headers["Retry-After"] == "30"
    assert response.json["status"] == 429
    other = server.http.get("/rest/v1/targets", extra_environ={"REMOTE_ADDR": "192.0.2.11"},
                            headers={"Authorization": basic("admin", "admin")}, status=200)
    assert other.json["total"] == 0


def limited(config, **limits):
    """The config with these limits, and an admin/admin of its own: one another test verified
    would be let in even while its client pauses."""
    values = dict(config._values)
    values.update({("limits", key): value for key, value in limits.items()})
    return configuration.Config(values, config.source,
                           {"admin": operator_accounts.hash_password("admin", iterations=1000)})


# --- the question before a body ---------------------------------------------------------------

def ask(app, method, path, authorization=None, length=10, chunked=False):
    """Call the app as `serve` does before it reads a body: (status, headers with lower-case
    names, environ)."""
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = webob.Request.blank(path, method=method, headers=headers,
                                  environ={connections.BEFORE_BODY: True,
                                           "REMOTE_ADDR": CLIENT})
    if chunked:
        request.environ.pop("CONTENT_LENGTH", None)
    else:
        request.environ["CONTENT_LENGTH"] = str(length)
    status, response_headers, _ = request.call_application(app)
    return (int(status.split()[0]), {name.lower(): value for name, value in response_headers},
            request.environ)


def test_a_device_body_without_valid_credentials_is_refused_before_it_is_read(server):
    server.target()
    assert ask(server.wsgi, "PUT", DEVICE + "/dev-1/configData")[0] == 401
    assert ask(server.wsgi, "PUT", DEVICE + "/dev-1/configData", "TargetToken nope")[0] == 401


def test_a_device_body_with_valid_credentials_may_come_up_to_max_body_bytes(server):
    server.target()
    status, _, environ = ask(server.wsgi, "PUT", DEVICE + "/dev-1/configData",
                             "TargetToken token-1", length=1048576)
    assert (status, environ[connections.BODY_LIMIT]) == (100, 1048576)


def test_a_device_body_declared_beyond_max_body_bytes_is_refused_before_it_is_read(server):
    server.target()
    status, headers, _ = ask(server.wsgi, "POST", DEVICE + "/dev-1/deploymentBase/1/feedback",
                             "TargetToken token-1", length=1048577)
    assert (status, headers["content-type"]) == (400, "application/json")


def test_a_management_body_without_valid_credentials_is_refused_before_it_is_read(server):
    status, headers, _ = ask(server.wsgi, "POST", "/rest/v1/targets", basic("admin", "x"))
    assert (status, headers["www-authenticate"]) == (401, 'Basic realm="hawkBit"')
    assert ask(server.wsgi, "POST", "/rest/v1/softwaremodules/1/artifacts")[0] == 401


def test_an_upload_may_be_as_large_as_max_artifact_bytes_and_any_other_body_max_body_bytes(
        server):
    admin = basic("admin", "admin")
    upload = ask(server.wsgi, "POST", "/rest/v1/softwaremodules/1/artifacts", admin,
                 chunked=True)
    targets = ask(server.wsgi, "POST", "/rest/v1/targets", admin, chunked=True)
    limits = server.config["limits", "max_artifact_bytes"], server.config["limits",
                                                                          "max_body_bytes"]
    assert (upload[0], targets[0]) == (100, 100)
    assert upload[2][connections.BODY_LIMIT] > limits[0]
    assert targets[2][connections.BODY_LIMIT] == limits[1]


def test_bodies_declared_beyond_their_routes_limit_get_that_routes_error(server):
    admin = basic("admin", "admin")
    too_large = server.config["limits", "max_artifact_bytes"] + 1024 * 1024
    assert ask(server.wsgi, "POST", "/rest/v1/softwaremodules/1/artifacts", admin,
               length=too_large)[0] == 413
    assert ask(server.wsgi, "POST", "/rest/v1/targets", admin, length=1048577)[0] == 400


def test_asking_about_a_body_changes_nothing(server):
    server.configure(**{"authentication.gatewaytoken.enabled": True,
                        "authentication.gatewaytoken.key": "gw"})
    status, _, _ = ask(server.wsgi, "GET", DEVICE + "/new-device", "GatewayToken gw")
    assert status == 100
    assert ddi.find_target("new-device") is None


def gated(*pieces):
    """A GatedRequest fed `pieces` as the event loop would, each as one receive."""
    request = connections.GatedRequest(waitress.adjustments.Adjustments())
    for data in pieces:
        while data and not request.completed:
            data = data[request.received(data):]
    return request


FEEDBACK_HEADERS = (b"POST /DEFAULT/controller/v1/dev-1/deploymentBase/1/feedback HTTP/1.1\r\n"
                    b"Host: h\r\nContent-Length: 2\r\n")


def test_a_body_that_came_whole_with_its_headers_goes_to_the_app_at_once():
    request = gated(FEEDBACK_HEADERS + b"\r\n{}")
    assert (request.completed, request.held, request.get_body_stream().read()) == \
        (True, None, b"{}")


def test_a_body_still_to_come_waits_for_the_apps_answer():
    request = gated(FEEDBACK_HEADERS + b"\r\n{", b"}")
    assert (request.completed, request.held) == (False, b"{}")


def test_a_body_after_expect_100_continue_waits_for_the_apps_answer():
    request = gated(FEEDBACK_HEADERS + b"Expect: 100-continue\r\n\r\n{}")
    assert (request.completed, request.held) == (False, b"{}")
