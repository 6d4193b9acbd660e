"""HTTP-level tests of the root poll, configData, authentication, negotiation and routing.

Section numbers refer to /work/shared/ddi-contract.md; "clients §9" to ddi-clients.md §9.
"""

import datetime
import hashlib
import json
import re

import cbor2
import pytest
import webtest

import ddi_lite
import storage
from conftest import DEVICE, Server, now_ms, token
from storage import assignments, ddi
from storage.models import Action

ROOT = DEVICE + "/dev-1"
CONFIG_DATA = ROOT + "/configData"
GATEWAY = {"authentication.gatewaytoken.enabled": True, "authentication.gatewaytoken.key": "gw"}
NOT_READABLE = {
    "exceptionClass": "org.eclipse.hawkbit.rest.exception.MessageNotReadableException",
    "errorCode": "hawkbit.server.error.rest.body.notReadable",
    "message": "The given request body is not well formed",
}
SLEEP = re.compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})$")


# --- helpers -----------------------------------------------------------------------------------

def headers(*extra, **more):
    result = dict(token())
    for item in extra:
        result.update(item)
    result.update(more)
    return result


def poll(server, path=ROOT, status=200, **kwargs):
    return server.http.get(path, headers=kwargs.pop("headers", token()), status=status, **kwargs)


def links(response):
    return response.json.get("_links", {})


def href(response, rel):
    return response.json["_links"][rel]["href"]


def c_of(link):
    match = re.fullmatch(r".*/deploymentBase/[0-9]+\?c=(-?[0-9]+)", link)
    assert match, link
    return int(match.group(1))


def sleep_seconds(response):
    match = SLEEP.match(response.json["config"]["polling"]["sleep"])
    assert match, response.json
    hours, minutes, seconds = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def put_config(server, document, path=CONFIG_DATA, status=200, auth=None):
    return server.http.put_json(path, document, headers=auth or token(), status=status)


def attributes(controller_id="dev-1"):
    return ddi.find_target(controller_id).attributes


def feedback(server, action, execution="closed", finished="success"):
    return server.http.post_json(
        ROOT + "/deploymentBase/%d/feedback" % action.id,
        {"status": {"execution": execution, "result": {"finished": finished}}},
        headers=token(), status=200)


def window_at(delta):
    """A Quartz schedule firing once, `delta` from now (UTC), open for 30 minutes."""
    start = datetime.datetime.now(datetime.timezone.utc) + delta
    cron = "%d %d %d %d %d ? %d" % (start.second, start.minute, start.hour, start.day,
                                     start.month, start.year)
    return (cron, "00:30:00", "+00:00")


def status_of(action):
    return Action.get_by_id(action.id).status


def error_body(response):
    return json.loads(response.body.decode("utf-8"))


def assert_empty_401(response):
    assert response.status_int == 401
    assert response.body == b""
    assert "WWW-Authenticate" not in response.headers


@pytest.fixture
def own_server(tmp_path):
    """Build a server from custom settings (trusted proxies, public_url, limits)."""
    made = []

    def make(**overrides):
        values = {"server.data_dir": str(tmp_path / "own-data"), "server.trusted_proxies": "",
                  "server.public_url": ""}
        values.update(overrides)
        server = Server(ddi_lite.load_config(environ={}, overrides=values))
        server.configure(**{"authentication.targettoken.enabled": True})
        made.append(server)
        return server

    yield make
    storage.close_store()


@pytest.fixture
def proxied(own_server):
    """A server that trusts the test client's address (192.0.2.10) as a reverse proxy."""
    return own_server(**{"server.trusted_proxies": "192.0.2.10"})


HEADER_AUTH = {"authentication.header.enabled": True,
               "authentication.header.authority": "abc123; Issuer-Two"}
UNTRUSTED = {"REMOTE_ADDR": "198.51.100.7"}


# --- root poll: sleep and links (§4.1) -------------------------------------------------------

def test_sleep_is_tenant_polling_time_as_hh_mm_ss(server):
    server.target()
    server.configure(pollingTime="01:02:03")
    response = poll(server)
    assert response.json["config"] == {"polling": {"sleep": "01:02:03"}}


def test_default_sleep_is_five_minutes_zero_padded(server):
    server.target()
    assert poll(server).json["config"]["polling"]["sleep"] == "00:05:00"


def test_links_are_absent_when_none_apply(server):
    server.target()
    put_config(server, {"data": {"serial": "1"}})
    response = poll(server)
    assert response.json == {"config": {"polling": {"sleep": "00:05:00"}}}


def test_running_action_gets_deployment_base_link_with_c_query(server):
    action = server.deployment()
    response = poll(server, headers=headers(Host="device.example.com:8080"))
    link = href(response, "deploymentBase")
    assert re.fullmatch(
        r"http://device\.example\.com:8080/DEFAULT/controller/v1/dev-1/deploymentBase/%d"
        r"\?c=-?[0-9]+" % action.id, link), link
    assert -2 ** 31 <= c_of(link) < 2 ** 31
    assert "cancelAction" not in links(response)
    assert "confirmationBase" not in links(response)


def test_default_port_is_left_out_of_links(server):
    server.target()
    response = poll(server, headers=headers(Host="device.example.com:80"))
    assert href(response, "configData") == (
        "http://device.example.com/DEFAULT/controller/v1/dev-1/configData")


def test_canceling_action_gets_cancel_action_link_without_query(server):
    action = server.deployment()
    assignments.cancel(action, now_ms(), "admin")
    response = poll(server, headers=headers(Host="srv:8080"))
    assert href(response, "cancelAction") == (
        "http://srv:8080/DEFAULT/controller/v1/dev-1/cancelAction/%d" % action.id)
    assert "deploymentBase" not in links(response)


def test_waiting_action_gets_confirmation_base_link_when_flow_enabled(server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    action = server.deployment()
    response = poll(server, headers=headers(Host="srv:8080"))
    link = href(response, "confirmationBase")
    assert re.fullmatch(r"http://srv:8080/DEFAULT/controller/v1/dev-1/confirmationBase/%d"
                        r"\?c=-?[0-9]+" % action.id, link), link
    assert "deploymentBase" not in links(response)
    assert "cancelAction" not in links(response)


def test_successful_installation_gives_installed_base_link(server):
    action = server.deployment()
    feedback(server, action, "closed", "success")
    response = poll(server, headers=headers(Host="srv:8080"))
    assert href(response, "installedBase") == (
        "http://srv:8080/DEFAULT/controller/v1/dev-1/installedBase/%d" % action.id)
    assert "deploymentBase" not in links(response)


def test_failed_installation_gives_no_installed_base_link(server):
    action = server.deployment()
    feedback(server, action, "closed", "failure")
    assert "installedBase" not in links(poll(server))


def test_links_come_in_hawkbit_order(server):
    first = server.deployment()
    feedback(server, first, "closed", "success")
    server.deployment()
    assert list(links(poll(server))) == ["deploymentBase", "installedBase", "configData"]


def test_config_data_link_present_on_first_contact(server):
    server.target()
    assert href(poll(server), "configData").endswith("/DEFAULT/controller/v1/dev-1/configData")


def test_config_data_link_gone_after_config_data_put(server):
    server.target()
    put_config(server, {"data": {"serial": "1"}})
    assert "configData" not in links(poll(server))


def test_config_data_link_back_after_successful_installation(server):
    action = server.deployment()
    put_config(server, {"data": {"serial": "1"}})
    feedback(server, action, "closed", "success")
    assert "configData" in links(poll(server))


def test_config_data_link_not_back_after_failed_installation(server):
    action = server.deployment()
    put_config(server, {"data": {"serial": "1"}})
    feedback(server, action, "closed", "failure")
    assert "configData" not in links(poll(server))


def test_config_data_link_gone_after_remove_mode_put(server):
    server.target()
    put_config(server, {"mode": "remove", "data": {"nothing": ""}})
    assert "configData" not in links(poll(server))


def test_c_is_stable_while_the_action_does_not_change(server):
    server.deployment()
    first = c_of(href(poll(server), "deploymentBase"))
    second = c_of(href(poll(server), "deploymentBase"))
    assert first == second


def test_c_changes_when_deployment_base_is_retrieved(server):
    server.deployment()
    before = href(poll(server), "deploymentBase")
    server.http.get(before, headers=token(), status=200)
    after = href(poll(server), "deploymentBase")
    assert before.split("?")[0] == after.split("?")[0]
    assert c_of(after) != c_of(before)


def test_c_is_stable_after_repeated_deployment_base_reads(server):
    server.deployment()
    server.http.get(href(poll(server), "deploymentBase"), headers=token(), status=200)
    once = href(poll(server), "deploymentBase")
    server.http.get(once, headers=token(), status=200)
    twice = href(poll(server), "deploymentBase")
    assert c_of(once) == c_of(twice)


def test_c_changes_when_timeforced_time_passes(server, monkeypatch):
    start = now_ms()
    server.deployment(action_type="TIMEFORCED", forced_time=start + 3600 * 1000)
    before = c_of(href(poll(server), "deploymentBase"))
    assert c_of(href(poll(server), "deploymentBase")) == before
    monkeypatch.setattr(ddi, "now_ms", lambda: start + 2 * 3600 * 1000)
    after = c_of(href(poll(server), "deploymentBase"))
    assert after != before


def test_c_differs_between_forced_time_in_future_and_in_past(server):
    action = server.deployment(action_type="TIMEFORCED", forced_time=now_ms() + 3600 * 1000)
    future = c_of(href(poll(server), "deploymentBase"))
    # Same action, same revision: only the forced time moves behind now.
    Action.update(forced_time=now_ms() - 3600 * 1000).where(Action.id == action.id).execute()
    past = c_of(href(poll(server), "deploymentBase"))
    assert past != future


def test_older_canceling_action_hides_newer_assignment(server):
    old = server.deployment()
    new = server.deployment()
    assert status_of(old) == "CANCELING"
    response = poll(server)
    assert href(response, "cancelAction").endswith("/cancelAction/%d" % old.id)
    assert "deploymentBase" not in links(response)
    assert new.id > old.id


def test_newer_action_with_higher_weight_is_shown_before_older_canceling_one(server):
    old = server.deployment(weight=100)
    new = server.deployment(weight=500)
    assert status_of(old) == "CANCELING"
    response = poll(server)
    assert re.search(r"/deploymentBase/%d\?c=" % new.id, href(response, "deploymentBase"))
    assert "cancelAction" not in links(response)


def test_new_action_shown_after_older_cancellation_closed(server):
    old = server.deployment()
    new = server.deployment()
    server.http.post_json(ROOT + "/cancelAction/%d/feedback" % old.id,
                          {"status": {"execution": "closed", "result": {"finished": "success"}}},
                          headers=token(), status=200)
    response = poll(server)
    assert re.search(r"/deploymentBase/%d\?c=" % new.id, href(response, "deploymentBase"))


# --- maintenance windows (§4.1.4, §4.1.2 step 4) -----------------------------------------------

def test_window_in_ten_minutes_shortens_sleep_to_between_three_and_five_minutes(server):
    server.configure(pollingTime="00:05:00")
    server.deployment(window=window_at(datetime.timedelta(minutes=10)))
    seconds = sleep_seconds(poll(server))
    assert 180 <= seconds < 300


def test_window_in_five_minutes_shortens_sleep_below_two_minutes(server):
    server.configure(pollingTime="00:05:00")
    server.deployment(window=window_at(datetime.timedelta(minutes=5)))
    seconds = sleep_seconds(poll(server))
    assert 30 <= seconds < 120


def test_window_soon_never_shortens_sleep_below_minimum(server):
    server.configure(pollingTime="00:05:00")
    server.deployment(window=window_at(datetime.timedelta(seconds=40)))
    assert poll(server).json["config"]["polling"]["sleep"] == "00:00:30"


def test_open_window_keeps_normal_sleep(server):
    server.configure(pollingTime="00:05:00")
    server.deployment(window=window_at(datetime.timedelta(minutes=-1)))
    assert poll(server).json["config"]["polling"]["sleep"] == "00:05:00"


def test_c_changes_when_maintenance_window_opens(server):
    action = server.deployment(window=window_at(datetime.timedelta(minutes=10)))
    closed = c_of(href(poll(server), "deploymentBase"))
    # Same action, same revision: only the window moves to be open now.
    opened_schedule = window_at(datetime.timedelta(minutes=-1))[0]
    Action.update(maintenance_schedule=opened_schedule).where(Action.id == action.id).execute()
    opened = c_of(href(poll(server), "deploymentBase"))
    assert opened != closed


def test_lapsed_maintenance_window_cancels_action_on_poll(server):
    action = server.deployment(window=("0 0 0 1 1 ? 2020", "00:30:00", "+00:00"))
    response = poll(server)
    assert href(response, "cancelAction").endswith(
        "/DEFAULT/controller/v1/dev-1/cancelAction/%d" % action.id)
    assert "deploymentBase" not in links(response)
    assert status_of(action) == "CANCELING"


# --- ETag (§1.4) -------------------------------------------------------------------------------

def test_poll_etag_is_quoted_zero_and_md5_of_body(server):
    server.deployment()
    response = poll(server)
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"0[0-9a-f]{32}"', etag)
    assert etag == '"0' + hashlib.md5(response.body).hexdigest() + '"'


def test_matching_if_none_match_gives_304_with_etag_and_no_body(server):
    server.deployment()
    etag = poll(server).headers["ETag"]
    response = poll(server, status=304, headers=headers({"If-None-Match": etag}))
    assert response.headers["ETag"] == etag
    assert response.body == b""


def test_weak_if_none_match_matches(server):
    server.target()
    etag = poll(server).headers["ETag"]
    response = poll(server, status=304, headers=headers({"If-None-Match": "W/" + etag}))
    assert response.body == b""


def test_if_none_match_in_a_list_matches(server):
    server.target()
    etag = poll(server).headers["ETag"]
    poll(server, status=304, headers=headers({"If-None-Match": '"0abc", ' + etag}))


def test_star_if_none_match_matches(server):
    server.target()
    poll(server)
    response = poll(server, status=304, headers=headers({"If-None-Match": "*"}))
    assert re.fullmatch(r'"0[0-9a-f]{32}"', response.headers["ETag"])


def test_different_if_none_match_gives_200(server):
    server.target()
    response = poll(server, headers=headers({"If-None-Match": '"0' + "0" * 32 + '"'}))
    assert response.json["config"]["polling"]["sleep"] == "00:05:00"


def test_etag_changes_when_the_poll_document_changes(server):
    server.target()
    before = poll(server).headers["ETag"]
    put_config(server, {"data": {"serial": "1"}})
    assert poll(server).headers["ETag"] != before


def test_no_etag_and_no_304_on_error(server):
    server.target()
    response = server.http.get(ROOT + "/deploymentBase/999999",
                               headers=headers({"If-None-Match": "*"}), status=404)
    assert "ETag" not in response.headers
    assert error_body(response)["errorCode"] == "hawkbit.server.error.repo.entityNotFound"


def test_no_etag_on_401(server):
    server.target()
    response = server.http.get(ROOT, headers={"If-None-Match": "*"}, status=401)
    assert "ETag" not in response.headers


def test_304_still_registers_unknown_controller(server):
    server.configure(**GATEWAY)
    server.http.get(DEVICE + "/gw-new", headers={"Authorization": "GatewayToken gw",
                                                 "If-None-Match": "*"}, status=304)
    assert ddi.find_target("gw-new") is not None


# --- content negotiation (§1.2) ----------------------------------------------------------------

def test_no_accept_gives_hal_json(server):
    server.target()
    response = poll(server)
    assert response.headers["Content-Type"].split(";")[0] == "application/hal+json"


def test_accept_json_with_charset_gives_json(server):
    server.target()
    response = poll(server, headers=headers(Accept="application/json;charset=UTF-8"))
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert response.json["config"]["polling"]["sleep"] == "00:05:00"


def test_accept_any_gives_hal_json(server):
    server.target()
    response = poll(server, headers=headers(Accept="*/*"))
    assert response.headers["Content-Type"].split(";")[0] == "application/hal+json"


def test_accept_hal_json_gives_hal_json(server):
    server.target()
    response = poll(server, headers=headers(Accept="application/hal+json"))
    assert response.headers["Content-Type"].split(";")[0] == "application/hal+json"


def test_accept_text_plain_is_406(server):
    server.target()
    poll(server, status=406, headers=headers(Accept="text/plain"))


def test_accept_cbor_gives_cbor_encoding_of_the_same_document(server):
    server.deployment()
    as_json = poll(server).json
    response = poll(server, headers=headers(Accept="application/cbor"))
    assert response.headers["Content-Type"].split(";")[0] == "application/cbor"
    assert cbor2.loads(response.body) == as_json


# --- methods (§1.5) ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_wrong_method_on_root_is_405_with_allow(server, method):
    server.target()
    response = server.http.request(ROOT, method=method, headers=token(), status=405)
    allowed = {part.strip().upper() for part in response.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert method not in allowed


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_wrong_method_on_config_data_is_405_with_allow(server, method):
    server.target()
    response = server.http.request(CONFIG_DATA, method=method, headers=token(), status=405)
    allowed = {part.strip().upper() for part in response.headers["Allow"].split(",")}
    assert "PUT" in allowed
    assert method not in allowed


# --- paths (§1.1, clients §9 item 1) ---------------------------------------------------------

def test_lower_case_tenant_hits_the_same_data(server):
    action = server.deployment()
    upper = href(poll(server), "deploymentBase")
    lower = href(poll(server, "/default/controller/v1/dev-1"), "deploymentBase")
    assert c_of(lower) == c_of(upper)
    assert re.search(r"/deploymentBase/%d\?" % action.id, lower)


def test_config_data_put_under_lower_case_tenant_reaches_the_target(server):
    server.target()
    put_config(server, {"data": {"serial": "7"}}, path="/default/controller/v1/dev-1/configData")
    assert attributes() == {"serial": "7"}


def test_links_use_the_tenant_as_spelled_in_the_request(server):
    server.target()
    response = poll(server, "/default/controller/v1/dev-1", headers=headers(Host="srv:8080"))
    assert href(response, "configData") == "http://srv:8080/default/controller/v1/dev-1/configData"


def test_unknown_tenant_is_401_with_empty_body(server):
    server.target()
    assert_empty_401(poll(server, "/OTHER/controller/v1/dev-1", status=401))


def test_double_leading_slash_is_accepted(server):
    server.target()
    assert poll(server, "/" + ROOT).json["config"]["polling"]["sleep"] == "00:05:00"


def test_trailing_slash_is_accepted(server):
    server.target()
    assert poll(server, ROOT + "/").json["config"]["polling"]["sleep"] == "00:05:00"


def test_controller_root_without_controller_id_is_404(server):
    server.target()
    poll(server, DEVICE + "/", status=404)


def test_percent_encoded_controller_id_is_decoded(server):
    server.target("dev:1.a_b", token="tok")
    response = poll(server, DEVICE + "/dev%3A1.a_b", headers=token("tok"))
    assert "configData" in links(response)


# --- plug and play (§4.1.2 step 1) -----------------------------------------------------------

def test_gateway_token_registers_unknown_controller(server):
    server.configure(**GATEWAY)
    response = poll(server, DEVICE + "/gw-7781", headers={"Authorization": "GatewayToken gw"})
    assert response.json["config"]["polling"]["sleep"] == "00:05:00"
    target = ddi.find_target("gw-7781")
    assert target is not None
    assert target.update_status == "REGISTERED"
    assert target.address == "http://192.0.2.10"
    assert target.name == "gw-7781"
    assert target.description == "Plug and Play target: gw-7781"
    assert target.request_attributes is True


def test_registered_controller_is_asked_for_config_data(server):
    server.configure(**GATEWAY)
    response = poll(server, DEVICE + "/gw-1", headers={"Authorization": "GatewayToken gw"})
    assert href(response, "configData").endswith("/DEFAULT/controller/v1/gw-1/configData")


def test_first_poll_of_provisioned_target_sets_registered(server):
    server.target()
    assert ddi.find_target("dev-1").update_status == "UNKNOWN"
    poll(server)
    assert ddi.find_target("dev-1").update_status == "REGISTERED"


@pytest.mark.parametrize("controller_id", ["dev%201", "dev%09x", "a" * 257])
def test_invalid_controller_id_is_400_constraint_violation(server, controller_id):
    server.configure(**GATEWAY)
    response = poll(server, DEVICE + "/" + controller_id,
                    headers={"Authorization": "GatewayToken gw"}, status=400)
    body = error_body(response)
    assert body["errorCode"] == "hawkbit.server.error.repo.constraintViolation"
    assert body["exceptionClass"].endswith("ConstraintViolationException")
    assert set(body) <= {"exceptionClass", "errorCode", "message", "info"}


def test_invalid_controller_id_is_not_registered(server):
    server.configure(**GATEWAY)
    poll(server, DEVICE + "/dev%201", headers={"Authorization": "GatewayToken gw"}, status=400)
    assert ddi.find_target("dev 1") is None


def test_controller_id_of_256_characters_registers(server):
    server.configure(**GATEWAY)
    poll(server, DEVICE + "/" + "a" * 256, headers={"Authorization": "GatewayToken gw"})
    assert ddi.find_target("a" * 256) is not None


def test_target_token_cannot_register_unknown_target(server):
    assert_empty_401(poll(server, DEVICE + "/new-1", headers=token("anything"), status=401))
    assert ddi.find_target("new-1") is None


def test_config_data_of_unknown_target_is_404_entity_not_found(server):
    server.configure(**GATEWAY)
    response = put_config(server, {"data": {"a": "1"}}, path=DEVICE + "/ghost/configData",
                          status=404, auth={"Authorization": "GatewayToken gw"})
    body = error_body(response)
    assert body["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert body["info"] == {"type": "Target", "entityId": "ghost"}
    assert ddi.find_target("ghost") is None


def test_deployment_base_of_unknown_target_is_404_entity_not_found(server):
    server.configure(**GATEWAY)
    response = server.http.get(DEVICE + "/ghost/deploymentBase/100",
                               headers={"Authorization": "GatewayToken gw"}, status=404)
    body = error_body(response)
    assert body["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert body["exceptionClass"] == (
        "org.eclipse.hawkbit.repository.exception.EntityNotFoundException")
    assert ddi.find_target("ghost") is None


# --- authentication (§2) -----------------------------------------------------------------------

def test_missing_authorization_is_401_empty_without_www_authenticate(server):
    server.target()
    assert_empty_401(server.http.get(ROOT, status=401))


def test_wrong_target_token_is_401(server):
    server.target()
    assert_empty_401(poll(server, headers=token("wrong"), status=401))


def test_token_of_another_target_is_401(server):
    server.target()
    server.target("dev-2", token="token-2")
    assert_empty_401(poll(server, headers=token("token-2"), status=401))


def test_target_token_disabled_is_401_even_with_right_token(server):
    server.target()
    server.configure(**{"authentication.targettoken.enabled": False})
    assert_empty_401(poll(server, status=401))


def test_target_token_with_right_token_is_200(server):
    server.target()
    assert poll(server).json["config"]["polling"]["sleep"] == "00:05:00"


def test_target_token_scheme_is_case_insensitive(server):
    server.target()
    poll(server, headers={"Authorization": "targettoken token-1"})


def test_gateway_token_scheme_is_case_insensitive(server):
    server.configure(**GATEWAY)
    server.target()
    poll(server, headers={"Authorization": "GATEWAYTOKEN gw"})


def test_right_gateway_token_is_200_for_known_target(server):
    server.configure(**GATEWAY)
    server.target()
    poll(server, headers={"Authorization": "GatewayToken gw"})


def test_wrong_gateway_token_is_401(server):
    server.configure(**GATEWAY)
    server.target()
    assert_empty_401(poll(server, headers={"Authorization": "GatewayToken nope"}, status=401))


def test_disabled_gateway_token_is_401(server):
    server.configure(**{"authentication.gatewaytoken.enabled": False,
                        "authentication.gatewaytoken.key": "gw"})
    server.target()
    assert_empty_401(poll(server, headers={"Authorization": "GatewayToken gw"}, status=401))


def test_gateway_token_with_empty_key_is_401(server):
    server.configure(**{"authentication.gatewaytoken.enabled": True,
                        "authentication.gatewaytoken.key": ""})
    server.target()
    assert_empty_401(poll(server, headers={"Authorization": "GatewayToken "}, status=401))
    assert_empty_401(poll(server, headers={"Authorization": "GatewayToken"}, status=401))


def test_gateway_token_is_not_accepted_as_target_token(server):
    server.configure(**GATEWAY)
    server.target()
    assert_empty_401(poll(server, headers={"Authorization": "TargetToken gw"}, status=401))


def test_header_auth_with_authority_list_from_trusted_proxy(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    poll(proxied, headers={"X-Controller-Id": "dev-1", "X-Authority": "other; ABC123"})


def test_header_auth_with_indexed_authority_headers(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    poll(proxied, headers={"X-Controller-Id": "dev-1", "X-Authority-0": "other",
                           "X-Authority-1": "issuer-two"})


def test_header_auth_with_legacy_ssl_headers(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    poll(proxied, headers={"X-Ssl-Client-Cn": "dev-1", "X-Ssl-Issuer-Hash-1": "AbC123"})


def test_header_auth_registers_unknown_controller(proxied):
    proxied.configure(**HEADER_AUTH)
    poll(proxied, DEVICE + "/cert-9", headers={"X-Controller-Id": "cert-9",
                                               "X-Authority": "abc123"})
    assert ddi.find_target("cert-9").update_status == "REGISTERED"


def test_header_auth_with_wrong_controller_id_is_401(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    assert_empty_401(poll(proxied, status=401, headers={"X-Controller-Id": "dev-2",
                                                        "X-Authority": "abc123"}))


def test_header_auth_with_unknown_authority_is_401(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    assert_empty_401(poll(proxied, status=401, headers={"X-Controller-Id": "dev-1",
                                                        "X-Authority": "zzz999"}))


def test_header_auth_from_untrusted_peer_is_401(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    assert_empty_401(poll(proxied, status=401, extra_environ=UNTRUSTED,
                          headers={"X-Controller-Id": "dev-1", "X-Authority": "abc123"}))


def test_legacy_header_auth_from_untrusted_peer_is_401(proxied):
    proxied.configure(**HEADER_AUTH)
    proxied.target()
    assert_empty_401(poll(proxied, status=401, extra_environ=UNTRUSTED,
                          headers={"X-Ssl-Client-Cn": "dev-1", "X-Ssl-Issuer-Hash-1": "abc123"}))


def test_header_auth_disabled_is_401(proxied):
    proxied.configure(**{"authentication.header.enabled": False,
                         "authentication.header.authority": "abc123"})
    proxied.target()
    assert_empty_401(poll(proxied, status=401, headers={"X-Controller-Id": "dev-1",
                                                        "X-Authority": "abc123"}))


# --- configData (§4.2) ------------------------------------------------------------------------

def test_config_data_answer_is_200_with_empty_body(server):
    server.target()
    response = put_config(server, {"data": {"serial": "1"}})
    assert response.status_int == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"


def test_config_data_merge_sets_and_null_deletes(server):
    server.target()
    put_config(server, {"data": {"a": "1", "b": "2"}})
    put_config(server, {"mode": "merge", "data": {"b": None, "c": "3", "a": "9"}})
    assert attributes() == {"a": "9", "c": "3"}


def test_config_data_without_mode_merges(server):
    server.target()
    put_config(server, {"data": {"a": "1"}})
    put_config(server, {"data": {"b": "2"}})
    assert attributes() == {"a": "1", "b": "2"}


def test_config_data_null_mode_merges(server):
    server.target()
    put_config(server, {"data": {"a": "1"}})
    put_config(server, {"mode": None, "data": {"b": "2"}})
    assert attributes() == {"a": "1", "b": "2"}


def test_config_data_replace_drops_old_keys_and_null_values(server):
    server.target()
    put_config(server, {"data": {"a": "1", "b": "2"}})
    put_config(server, {"mode": "replace", "data": {"c": "3", "d": None}})
    assert attributes() == {"c": "3"}


def test_config_data_remove_deletes_keys_ignoring_values(server):
    server.target()
    put_config(server, {"data": {"a": "1", "b": "2", "c": "3"}})
    put_config(server, {"mode": "remove", "data": {"a": "whatever", "c": None, "zz": "x"}})
    assert attributes() == {"b": "2"}


def test_config_data_legacy_envelope_is_accepted(server):
    server.target()
    put_config(server, {"id": "", "time": "20261121T195744", "mode": "replace",
                        "status": {"execution": "closed", "result": {"finished": "success"},
                                   "details": []},
                        "data": {"MAC": "00:1b:7a:44:10:2c"}})
    assert attributes() == {"MAC": "00:1b:7a:44:10:2c"}


def test_config_data_scalar_values_are_stored_as_strings(server):
    server.target()
    put_config(server, {"data": {"yes": True, "no": False, "one": 1}})
    assert attributes() == {"yes": "true", "no": "false", "one": "1"}


@pytest.mark.parametrize("document", [{"data": {}}, {"mode": "merge"}, {}],
                         ids=["empty-data", "missing-data", "empty-object"])
def test_config_data_without_entries_is_400_not_readable(server, document):
    server.target()
    response = put_config(server, document, status=400)
    body = error_body(response)
    assert set(body) == {"exceptionClass", "errorCode", "message"}
    assert body["exceptionClass"] == NOT_READABLE["exceptionClass"]
    assert body["errorCode"] == NOT_READABLE["errorCode"]


def test_config_data_unknown_mode_is_400_not_readable(server):
    server.target()
    response = put_config(server, {"mode": "append", "data": {"a": "1"}}, status=400)
    assert error_body(response)["errorCode"] == NOT_READABLE["errorCode"]
    assert attributes() == {}


@pytest.mark.parametrize("entry", [{"k" * 129: "v"}, {"key": "v" * 129}],
                         ids=["long-key", "long-value"])
def test_config_data_too_long_entry_is_400_and_nothing_stored(server, entry):
    server.target()
    put_config(server, {"data": {"keep": "1"}})
    data = {"other": "2"}
    data.update(entry)
    response = put_config(server, {"data": data}, status=400)
    body = error_body(response)
    assert body["errorCode"] == "hawkbit.server.error.repo.invalidTargetAttributes"
    assert body["exceptionClass"] == (
        "org.eclipse.hawkbit.repository.exception.InvalidTargetAttributeException")
    assert attributes() == {"keep": "1"}


def test_config_data_rejected_entry_keeps_config_data_requested(server):
    server.target()
    put_config(server, {"data": {"k" * 129: "v"}}, status=400)
    assert "configData" in links(poll(server))


def test_config_data_entries_of_128_characters_are_accepted(server):
    server.target()
    put_config(server, {"data": {"k" * 128: "v" * 128}})
    assert attributes() == {"k" * 128: "v" * 128}


def test_config_data_growing_beyond_quota_is_429_and_nothing_stored(own_server):
    server = own_server(**{"limits.attributes_per_target": "3"})
    server.target()
    put_config(server, {"data": {"a": "1", "b": "2", "c": "3"}})
    response = put_config(server, {"data": {"d": "4", "a": "changed"}}, status=429)
    body = error_body(response)
    assert body["errorCode"] == "hawkbit.server.error.quota.tooManyEntries"
    assert body["exceptionClass"] == (
        "org.eclipse.hawkbit.repository.exception.AssignmentQuotaExceededException")
    assert attributes() == {"a": "1", "b": "2", "c": "3"}


def test_config_data_at_quota_without_growth_is_accepted(own_server):
    server = own_server(**{"limits.attributes_per_target": "2"})
    server.target()
    put_config(server, {"data": {"a": "1", "b": "2"}})
    put_config(server, {"data": {"a": "9"}})
    assert attributes() == {"a": "9", "b": "2"}


def test_config_data_malformed_json_is_400(server):
    server.target()
    response = server.http.put(CONFIG_DATA, b'{"data": {"a": ', headers=token(),
                               content_type="application/json", status=400)
    assert error_body(response)["errorCode"] == NOT_READABLE["errorCode"]


def test_config_data_non_object_body_is_400(server):
    server.target()
    response = server.http.put(CONFIG_DATA, b'["data"]', headers=token(),
                               content_type="application/json", status=400)
    assert error_body(response)["errorCode"] == NOT_READABLE["errorCode"]


def test_config_data_text_plain_is_415(server):
    server.target()
    server.http.put(CONFIG_DATA, b'{"data": {"a": "1"}}', headers=token(),
                    content_type="text/plain", status=415)
    assert attributes() == {}


def test_config_data_json_with_charset_is_accepted(server):
    server.target()
    server.http.put(CONFIG_DATA, b'{"data": {"a": "1"}}', headers=token(),
                    content_type="application/json;charset=UTF-8", status=200)
    assert attributes() == {"a": "1"}


def test_config_data_without_content_type_is_read_as_json(server):
    server.target()
    request = webtest.TestRequest.blank(CONFIG_DATA, method="PUT",
                                        body=b'{"data": {"a": "1"}}', headers=token())
    assert "CONTENT_TYPE" not in request.environ
    response = server.http.do_request(request, status=200)
    assert response.body == b""
    assert attributes() == {"a": "1"}


def test_config_data_cbor_body_is_accepted(server):
    server.target()
    server.http.put(CONFIG_DATA, cbor2.dumps({"mode": "merge", "data": {"a": "1"}}),
                    headers=token(), content_type="application/cbor", status=200)
    assert attributes() == {"a": "1"}


def test_config_data_body_over_limit_is_400(own_server):
    server = own_server(**{"limits.max_body_bytes": "200"})
    server.target()
    document = {"data": {"key%d" % i: "v" * 20 for i in range(20)}}
    response = put_config(server, document, status=400)
    assert error_body(response)["errorCode"] == NOT_READABLE["errorCode"]
    assert attributes() == {}
