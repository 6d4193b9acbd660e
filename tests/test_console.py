"""The web console (console/): signing in and out, sessions, CSRF, what answers without a
session, the overview and the settings, through WebTest. Targets and software pages are in
test_console_pages.py."""

import time

import pytest
import webtest

import console.sessions
import ddi_lite
import storage
from conftest import DEVICE, token
from storage import tenant
from storage.db import write
from storage.models import Target
from ui import SIGNIN, csrf, problem, said, sign_in

PAGES = ["/ui", "/ui/targets", "/ui/targets/dev-1", "/ui/targets/dev-1/delete", "/ui/software",
         "/ui/software/modules/1", "/ui/settings"]
FORMS = ["/ui/signout", "/ui/targets", "/ui/targets/dev-1/assign",
         "/ui/targets/dev-1/actions/1/cancel", "/ui/targets/dev-1/tags",
         "/ui/targets/dev-1/tags/1/remove", "/ui/targets/dev-1/delete", "/ui/software/modules",
         "/ui/software/modules/1/delete", "/ui/software/sets", "/ui/software/sets/1/delete",
         "/ui/settings", "/ui/settings/gateway-token"]


@pytest.fixture
def signed_in(server):
    server.target("dev-1", "token-1")
    assert sign_in(server.http).status_int == 303
    return server


# --- no session ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_session_redirects_to_sign_in_and_back(server, path):
    response = server.http.get(path)
    assert response.status_int == 303
    assert response.location.endswith("/ui/signin?next=" + path.replace("/", "%2F"))


@pytest.mark.parametrize("path", FORMS)
def test_a_form_without_a_session_redirects_to_sign_in_and_changes_nothing(server, path):
    server.target("dev-1", "token-1")
    response = server.http.post(path, {"controllerId": "new-1", "confirm": "dev-1"})
    assert response.status_int == 303
    assert response.location.endswith(SIGNIN)
    assert Target.get_or_none(Target.controller_id == "new-1") is None
    assert Target.get_or_none(Target.controller_id == "dev-1") is not None


@pytest.mark.parametrize("path", ["/ui/fragment/overview", "/ui/fragment/modules/1/artifacts"])
def test_a_live_fragment_without_a_session_is_401(server, path):
    assert server.http.get(path, status=401).json["message"]


def test_an_upload_without_a_session_is_401_before_the_body_is_read(server):
    response = server.http.post("/ui/software/modules/1/artifacts?csrf=x",
                                upload_files=[("file", "a.bin", b"x")], status=401)
    assert "sign in" in response.text


def test_only_the_sign_in_page_and_its_stylesheet_answer_without_a_session(server):
    assert "<form id=\"signin\"" in server.http.get(SIGNIN).text
    css = server.http.get("/ui/static/console.css")
    assert css.content_type == "text/css"
    assert server.http.get("/ui/static/console.js").status_int == 303


def test_an_unknown_static_file_is_404(signed_in):
    signed_in.http.get("/ui/static/../views/base.tpl", status=404)
    signed_in.http.get("/ui/static/nothing.js", status=404)


# --- signing in --------------------------------------------------------------------------------

def test_signing_in_sets_an_httponly_strict_session_cookie_and_opens_the_overview(server):
    response = sign_in(server.http)
    assert response.status_int == 303 and response.location.endswith("/ui")
    cookie = [c for c in response.headers.getall("Set-Cookie")
              if c.startswith("ddi_lite_console=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie
    overview = response.follow()
    assert overview.status_int == 200 and "Fleet overview" in overview.text
    assert ">admin<" in overview.text


def test_signing_in_over_tls_makes_the_cookie_secure(server):
    response = sign_in(server.http, extra_environ={"wsgi.url_scheme": "https"})
    assert all("Secure" in cookie for cookie in response.headers.getall("Set-Cookie"))


def test_a_tls_proxy_in_trusted_proxies_makes_the_cookie_secure(config, tmp_path):
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "proxied"), "server.trusted_proxies": "192.0.2.10"})
    http = webtest.TestApp(ddi_lite.create_app(config), extra_environ={
        "REMOTE_ADDR": "192.0.2.10", "HTTP_X_FORWARDED_PROTO": "https"})
    try:
        response = sign_in(http)
        assert all("Secure" in cookie for cookie in response.headers.getall("Set-Cookie"))
    finally:
        storage.close_store()


def test_the_cookie_follows_how_the_request_came_not_public_url(tmp_path):
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "public"),
        "server.public_url": "https://updates.example.org"})
    http = webtest.TestApp(ddi_lite.create_app(config))
    try:
        response = sign_in(http)
        assert response.status_int == 303
        assert not any("Secure" in cookie for cookie in response.headers.getall("Set-Cookie"))
    finally:
        storage.close_store()


def _behind_a_proxy_at(prefix, tmp_path, peer="192.0.2.10"):
    """A console whose requests come from `peer` (the trusted proxy is 192.0.2.10) with
    X-Forwarded-Prefix `prefix`: the proxy serves the server under that path."""
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "prefixed"), "server.trusted_proxies": "192.0.2.10"})
    return webtest.TestApp(ddi_lite.create_app(config), extra_environ={
        "REMOTE_ADDR": peer, "HTTP_X_FORWARDED_PREFIX": prefix})


def test_behind_a_proxy_under_a_path_links_redirects_and_cookies_keep_its_prefix(tmp_path):
    http = _behind_a_proxy_at("/ota/", tmp_path)
    try:
        assert http.get("/ui/settings").location == "/ota/ui/signin?next=%2Fota%2Fui%2Fsettings"
        page = http.get(SIGNIN, {"next": "/ota/ui/settings"})
        assert 'href="/ota/ui/static/console.css"' in page.text
        form = page.forms["signin"]
        assert form.action == "/ota/ui/signin"
        # The proxy strips its prefix before passing the request on, cookie included.
        form.action = SIGNIN
        name, _, value = page.headers["Set-Cookie"].split(";")[0].partition("=")
        http.set_cookie(name, value)
        form["user"], form["password"] = "admin", "admin"
        response = form.submit()
        assert response.location == "/ota/ui/settings"
        cookies = response.headers.getall("Set-Cookie")
        assert cookies and all("Path=/ota/ui" in cookie for cookie in cookies)
    finally:
        storage.close_store()


@pytest.mark.parametrize("prefix, peer", [("//elsewhere.example", "192.0.2.10"),
                                          ("/ota\\x", "192.0.2.10"),
                                          ("/ota", "198.51.100.7")])
def test_a_prefix_that_is_no_plain_path_or_from_an_untrusted_peer_is_ignored(
        tmp_path, prefix, peer):
    http = _behind_a_proxy_at(prefix, tmp_path, peer)
    try:
        assert http.get("/ui/settings").location == "/ui/signin?next=%2Fui%2Fsettings"
        assert 'href="/ui/static/console.css"' in http.get(SIGNIN).text
    finally:
        storage.close_store()


def test_signing_in_goes_back_to_the_page_asked_for(server):
    server.http.get("/ui/settings")
    page = server.http.get(SIGNIN + "?next=/ui/settings")
    form = page.forms["signin"]
    form["user"], form["password"] = "admin", "admin"
    assert form.submit().location.endswith("/ui/settings")


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/ui",
                                    "/rest/v1/targets"])
def test_next_never_leads_off_the_console(server, target):
    page = server.http.get(SIGNIN, {"next": target})
    assert target not in page.text
    form = page.forms["signin"]
    form["user"], form["password"] = "admin", "admin"
    assert form.submit().location.endswith("/ui")


def test_a_wrong_password_is_401_with_the_form_again_and_no_session(server):
    response = sign_in(server.http, password="wrong")
    assert response.status_int == 401
    assert problem(response) == "Wrong user name or password."
    assert not any(c.startswith("ddi_lite_console=")
                   for c in response.headers.getall("Set-Cookie"))
    assert server.http.get("/ui").status_int == 303


def test_an_unknown_user_gets_the_same_answer(server):
    response = sign_in(server.http, user="nobody", password="admin")
    assert response.status_int == 401
    assert problem(response) == "Wrong user name or password."


def test_wrong_passwords_are_rationed_with_the_management_apis_logins(server):
    for _ in range(server.config["limits", "login_failures"]):
        assert sign_in(server.http, password="wrong").status_int == 401
    paused = sign_in(server.http, password="admin")
    assert paused.status_int == 429 and int(paused.headers["Retry-After"]) >= 1
    assert "wait" in problem(paused)
    server.http.get("/rest/v1/targets", headers={"Authorization": "Basic YWRtaW46YWRtaW4="},
                    status=429)


def test_sign_in_without_the_forms_token_is_403(server):
    response = server.http.post(SIGNIN, {"user": "admin", "password": "admin", "csrf": "x"},
                                status=403)
    assert "expired" in problem(response)
    assert server.http.get("/ui").status_int == 303


def test_signing_out_ends_the_session_for_good(signed_in):
    http = signed_in.http
    cookie = http.cookies["ddi_lite_console"]
    page = http.get("/ui")
    response = page.forms["signout"].submit()
    assert response.location.endswith("/ui/signin?said=signed-out")
    assert said(response.follow()) == "Signed out."
    http.set_cookie("ddi_lite_console", cookie)
    assert http.get("/ui").status_int == 303


@pytest.fixture
def session_clock(monkeypatch):
    """The sessions' clock, held still: [seconds], moved on by the test."""
    clock = [time.monotonic()]

    class Clock:
        @staticmethod
        def monotonic():
            return clock[0]
    monkeypatch.setattr(console.sessions, "time", Clock)
    return clock


def test_a_session_ends_after_its_idle_time(signed_in, session_clock):
    clock = session_clock
    idle = signed_in.config["server", "console_session"]
    clock[0] += idle - 1
    assert signed_in.http.get("/ui").status_int == 200  # a request moves the deadline on
    clock[0] += idle - 1
    assert signed_in.http.get("/ui").status_int == 200
    clock[0] += idle + 1
    assert signed_in.http.get("/ui").status_int == 303
    assert signed_in.http.get("/ui/fragment/overview", status=401)


def test_the_overviews_own_refreshes_do_not_keep_a_session_alive(signed_in, session_clock):
    clock = session_clock
    idle = signed_in.config["server", "console_session"]
    signed_in.http.get("/ui")
    for _ in range(2):
        clock[0] += idle / 2 - 1
        signed_in.http.get("/ui/fragment/overview", status=200)
    clock[0] += 3  # the page's last request was idle + 1 s ago
    signed_in.http.get("/ui/fragment/overview", status=401)
    assert signed_in.http.get("/ui").location.endswith("/ui/signin?next=%2Fui")


def test_a_session_ends_when_its_account_changes():
    class Accounts:
        hashes = {"admin": "hash-1"}
    sessions = console.sessions.Sessions(Accounts, 60)
    session_id, session = sessions.start("admin")
    assert sessions.find(session_id) is not None
    Accounts.hashes = {"admin": "hash-2"}
    assert sessions.find(session_id) is None
    session_id, _ = sessions.start("admin")
    Accounts.hashes = {}
    assert sessions.find(session_id) is None


def test_sessions_are_bounded_oldest_first():
    class Accounts:
        hashes = {"admin": "hash"}
    sessions = console.sessions.Sessions(Accounts, 60)
    sessions.max_sessions = 3
    ids = [sessions.start("admin")[0] for _ in range(4)]
    assert sessions.find(ids[0]) is None
    assert all(sessions.find(session_id) for session_id in ids[1:])


def test_the_console_can_be_switched_off(tmp_path):
    config = ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "off"), "server.console": "false"})
    http = webtest.TestApp(ddi_lite.create_app(config))
    try:
        http.get("/ui/signin", status=404)
    finally:
        storage.close_store()


# --- CSRF and hygiene ------------------------------------------------------------------------

@pytest.mark.parametrize("path", FORMS)
def test_a_form_without_the_sessions_token_is_403_and_changes_nothing(signed_in, path):
    for fields in ({}, {"csrf": "not-the-token"}):
        fields.update({"controllerId": "new-1", "confirm": "dev-1", "pollingTime": "00:00:40"})
        response = signed_in.http.post(path, fields, status=403)
        assert "expired" in problem(response)
    assert Target.get_or_none(Target.controller_id == "new-1") is None
    assert Target.get_or_none(Target.controller_id == "dev-1") is not None
    assert signed_in.http.get("/ui").status_int == 200  # still signed in


def test_the_token_of_another_session_is_refused(signed_in, server):
    other = webtest.TestApp(server.wsgi, extra_environ={"REMOTE_ADDR": "192.0.2.11"})
    sign_in(other)
    foreign = csrf(other.get("/ui"))
    signed_in.http.post("/ui/targets", {"controllerId": "new-1", "csrf": foreign}, status=403)


def test_an_upload_without_the_token_in_its_address_is_403(signed_in):
    signed_in.http.post("/ui/software/modules/1/artifacts?csrf=wrong",
                        upload_files=[("file", "a.bin", b"x")], status=403)


def test_pages_allow_no_other_host_and_are_not_cached(signed_in):
    for path in ("/ui", "/ui/targets", "/ui/software", "/ui/settings", SIGNIN):
        headers = signed_in.http.get(path).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_no_page_names_another_host(signed_in):
    for path in ("/ui", "/ui/targets", "/ui/targets/dev-1", "/ui/software", "/ui/settings"):
        text = signed_in.http.get(path).text
        assert "http://" not in text and "https://" not in text and "//" not in \
            text.replace("<!DOCTYPE", "")


def test_a_query_that_is_not_utf8_is_a_400_page(signed_in):
    response = signed_in.http.get("/ui/targets?text=%ff", status=400)
    assert "UTF-8" in problem(response)


# --- overview ------------------------------------------------------------------------------

def test_the_overview_counts_targets_by_update_status(signed_in):
    signed_in.target("dev-2", "token-2")
    signed_in.deployment(controller_id="dev-2")
    page = signed_in.http.get("/ui")
    assert 'data-status="unknown">1<' in page.text
    assert 'data-status="pending">1<' in page.text
    assert "(2 in all)" in page.text
    assert '<rect class="s-pending" x="' in page.text and 'width="50.000"' in page.text


def test_the_overview_lists_devices_not_seen_for_a_few_polling_intervals(signed_in):
    signed_in.http.get(DEVICE + "/dev-1", headers=token("token-1"))
    signed_in.target("dev-2", "token-2")
    signed_in.http.get(DEVICE + "/dev-2", headers=token("token-2"))
    with write():
        Target.update(last_target_query=int(time.time() * 1000) - 16 * 60 * 1000).where(
            Target.controller_id == "dev-2").execute()
    page = signed_in.http.get("/ui")
    section = page.text.split("Not seen for 3 polling intervals")[1].split("Latest actions")[0]
    assert ">dev-2<" in section and ">dev-1<" not in section
    assert "(polling time 00:05:00)" in page.text


def test_more_devices_not_seen_than_the_overview_shows_are_a_link_to_the_list(signed_in):
    signed_in.http.get(DEVICE + "/dev-1", headers=token("token-1"))
    for number in range(2, 14):
        signed_in.target("dev-%d" % number, "token-%d" % number)
        signed_in.http.get(DEVICE + "/dev-%d" % number, headers=token("token-%d" % number))
    with write():
        Target.update(last_target_query=int(time.time() * 1000) - 16 * 60 * 1000).execute()
    page = signed_in.http.get("/ui")
    listing = page.click("All 13 of them")
    assert "13 targets" in listing.text
    assert listing.forms["filter"]["sort"].value == "lastControllerRequestAt"


def test_the_overview_lists_the_latest_actions_newest_first(signed_in):
    first = signed_in.deployment(controller_id="dev-1")
    signed_in.target("dev-2", "token-2")
    second = signed_in.deployment(controller_id="dev-2")
    text = signed_in.http.get("/ui").text.split("Latest actions")[1]
    assert text.index(">%d</td>" % second.id) < text.index(">%d</td>" % first.id)
    assert 'data-action-status="running"' in text


def test_the_live_fragment_is_the_overview_without_the_page_around_it(signed_in):
    fragment = signed_in.http.get("/ui/fragment/overview")
    assert fragment.text.lstrip().startswith("<section")
    assert "<html" not in fragment.text and 'data-status="unknown">1<' in fragment.text
    assert 'data-live="/ui/fragment/overview"' in signed_in.http.get("/ui").text


# --- settings -----------------------------------------------------------------------------------

def test_the_settings_page_shows_the_tenant_configuration(signed_in):
    tenant.store({"pollingTime": "00:02:00", "authentication.gatewaytoken.enabled": True},
                 "test")
    form = signed_in.http.get("/ui/settings").forms["settings"]
    assert form["pollingTime"].value == "00:02:00"
    assert form["authentication.gatewaytoken.enabled"].checked
    assert form["authentication.targettoken.enabled"].checked  # the server fixture's
    assert not form["user.confirmation.flow.enabled"].checked


def test_saving_settings_writes_the_tenant_configuration_keys(signed_in):
    form = signed_in.http.get("/ui/settings").forms["settings"]
    form["pollingTime"] = "00:01:30"
    form["authentication.targettoken.enabled"].checked = False
    form["user.confirmation.flow.enabled"].checked = True
    form["authentication.header.authority"] = "a1b2c3, d4e5f6"
    response = form.submit()
    assert response.location.endswith("/ui/settings?said=saved")
    assert said(response.follow()) == "Settings saved."
    settings = tenant.settings()
    assert settings["pollingTime"] == "00:01:30"
    assert settings["authentication.targettoken.enabled"] is False
    assert settings["user.confirmation.flow.enabled"] is True
    assert settings["authentication.header.authority"] == "a1b2c3, d4e5f6"
    api = signed_in.http.get("/rest/v1/system/configs/pollingTime",
                             headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert api.json["value"] == "00:01:30"


@pytest.mark.parametrize("polling", ["soon", "00:00:01", "99:99:99"])
def test_a_polling_time_the_api_refuses_is_a_400_page_and_nothing_changes(signed_in, polling):
    form = signed_in.http.get("/ui/settings").forms["settings"]
    form["pollingTime"] = polling
    form["user.confirmation.flow.enabled"].checked = True
    response = form.submit(status=400)
    assert problem(response)
    assert tenant.settings()["pollingTime"] == "00:05:00"
    assert tenant.settings()["user.confirmation.flow.enabled"] is False


def test_a_new_gateway_token_is_shown_once_and_stored(signed_in):
    page = signed_in.http.get("/ui/settings")
    assert "No gateway token is set." in page.text
    response = page.forms["new-gateway-token"].submit()
    assert response.status_int == 200
    shown = response.html.find(id="gateway-token").text
    assert len(shown) == 48 and tenant.settings()["authentication.gatewaytoken.key"] == shown
    again = signed_in.http.get("/ui/settings")
    assert shown not in again.text and "A gateway token is set." in again.text
    second = again.forms["new-gateway-token"].submit().html.find(id="gateway-token").text
    assert second != shown and tenant.settings()["authentication.gatewaytoken.key"] == second
