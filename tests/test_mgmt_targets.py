"""HTTP-level tests of the Management API: authentication, content types, targets, actions and
the system configuration.

Section numbers refer to /work/shared/mgmt-contract.md. Seeding goes through the conftest
helpers; device behaviour is driven through the DDI API with the target's token.
"""

import base64
import json
import re

import pytest
import webtest

from conftest import DEVICE, token
from storage import transitions as t
from mgmt import (ALREADY_EXISTS, API, AUDIT, BASE, CONSTRAINT, MULTI_ASSIGNMENT, NOT_FOUND,
                  NOT_READABLE, RSQL_FIELD, RSQL_SYNTAX, SORT_FIELD, SORT_SYNTAX)

TARGETS = API + "/targets"
CONFIGS = API + "/system/configs"

SORT_DIRECTION = "hawkbit.server.error.rest.param.invalidDirection"
CONFIG_KEY = "hawkbit.server.error.configKeyInvalid"
CONFIG_VALUE = "hawkbit.server.error.configValueInvalid"
NOT_CANCELABLE = "hawkbit.server.error.action.notCancelable"
NOT_FORCE_QUITABLE = "hawkbit.server.error.action.notForceQuitable"
NOT_DELETABLE = "hawkbit.server.error.action.notDeletable"
AUTO_CONFIRM_ACTIVE = "hawkbit.server.error.repo.autoConfAlreadyActive"

EXCEPTIONS = {
    NOT_FOUND: "org.eclipse.hawkbit.repository.exception.EntityNotFoundException",
    ALREADY_EXISTS: "org.eclipse.hawkbit.repository.exception.EntityAlreadyExistsException",
    NOT_READABLE: "org.eclipse.hawkbit.rest.exception.MessageNotReadableException",
    RSQL_SYNTAX: "org.eclipse.hawkbit.repository.exception.RSQLParameterSyntaxException",
    RSQL_FIELD:
        "org.eclipse.hawkbit.repository.exception.RSQLParameterUnsupportedFieldException",
    SORT_SYNTAX:
        "org.eclipse.hawkbit.mgmt.rest.resource.exception.SortParameterSyntaxErrorException",
    SORT_FIELD: "org.eclipse.hawkbit.mgmt.rest.resource.exception."
                "SortParameterUnsupportedFieldException",
    SORT_DIRECTION: "org.eclipse.hawkbit.mgmt.rest.resource.exception."
                    "SortParameterUnsupportedDirectionException",
    CONFIG_KEY:
        "org.eclipse.hawkbit.repository.exception.InvalidTenantConfigurationKeyException",
    CONFIG_VALUE:
        "org.eclipse.hawkbit.repository.exception.TenantConfigurationValidatorException",
    NOT_CANCELABLE: "org.eclipse.hawkbit.repository.exception.CancelActionNotAllowedException",
    NOT_FORCE_QUITABLE:
        "org.eclipse.hawkbit.repository.exception.ForceQuitActionNotAllowedException",
    NOT_DELETABLE: "org.eclipse.hawkbit.repository.exception.DeleteActionNotAllowedException",
    AUTO_CONFIRM_ACTIVE:
        "org.eclipse.hawkbit.repository.exception.AutoConfirmationAlreadyActiveException",
    MULTI_ASSIGNMENT: "org.eclipse.hawkbit.repository.exception.MultiAssignmentException",
}

# §11.3: the current keys plus default.ds.type.
CONFIG_KEYS = {
    "pollingTime", "pollingOverdueTime", "maintenanceWindowPollCount",
    "authentication.targettoken.enabled", "authentication.gatewaytoken.enabled",
    "authentication.gatewaytoken.key", "authentication.header.enabled",
    "authentication.header.authority", "repository.actions.autoclose.enabled",
    "user.confirmation.flow.enabled", "implicit.lock.enabled", "rollout.approval.enabled",
    "batch.assignments.enabled", "action.cleanup.auto.expiry", "action.cleanup.auto.status",
    "action.cleanup.onQuotaHit.percent", "default.ds.type",
}


# --- helpers -------------------------------------------------------------------------------

def basic(user, password):
    credentials = base64.b64encode(("%s:%s" % (user, password)).encode("utf-8"))
    return {"Authorization": "Basic " + credentials.decode("ascii")}


def assert_error(response, status, code):
    """A hawkBit error body (§3.1) with this status and errorCode."""
    assert response.status_int == status, response.body
    assert response.content_type in ("application/json", "application/hal+json")
    body = response.json
    assert body["errorCode"] == code, body
    if code in EXCEPTIONS:
        assert body["exceptionClass"] == EXCEPTIONS[code], body
    assert isinstance(body.get("message"), str) and body["message"]


def assert_framework_error(response, status, reason):
    """Spring's framework error body (§3.3)."""
    assert response.status_int == status, response.body
    assert response.content_type == "application/json"
    body = response.json
    assert set(body) == {"timestamp", "status", "error"}, body
    assert body["status"] == status
    assert body["error"] == reason
    assert isinstance(body["timestamp"], str) and body["timestamp"]


def assert_empty(response, status):
    """No body; an empty error still says application/json (tests/test_empty_answers.py)."""
    assert response.status_int == status
    assert response.body == b""
    assert response.headers.get("Content-Type") == ("application/json" if status >= 400 else None)


def create(api, *items, status=201):
    return api.http.post_json(TARGETS, list(items), status=status)


def target_of(api, controller_id="dev-1"):
    return api.http.get("%s/%s" % (TARGETS, controller_id)).json


def ids(page, field="controllerId"):
    return [entry[field] for entry in page["content"]]


def poll(api, controller_id="dev-1", tok="token-1", status=200):
    return api.http.get("%s/%s" % (DEVICE, controller_id), headers=token(tok), status=status)


def put_attributes(api, data, controller_id="dev-1", tok="token-1"):
    api.http.put_json("%s/%s/configData" % (DEVICE, controller_id), {"data": data},
                      headers=token(tok), status=200)


def device_feedback(api, action_id, execution="closed", finished="success", details=None,
                    code=None, controller_id="dev-1", tok="token-1"):
    status = {"execution": execution, "result": {"finished": finished}}
    if details is not None:
        status["details"] = details
    if code is not None:
        status["code"] = code
    api.http.post_json("%s/%s/deploymentBase/%d/feedback" % (DEVICE, controller_id, action_id),
                       {"status": status}, headers=token(tok), status=200)


def finished_deployment(api, controller_id="dev-1"):
    action = api.deployment(controller_id=controller_id)
    device_feedback(api, action.id, controller_id=controller_id,
                    tok="token-" + controller_id.split("-")[-1])
    return action


def action_url(action_id, controller_id="dev-1"):
    return "%s/%s/actions/%d" % (TARGETS, controller_id, action_id)


def action_of(api, action_id, controller_id="dev-1"):
    return api.http.get(action_url(action_id, controller_id)).json


def statuses(api, action_id, controller_id="dev-1", query=""):
    return api.http.get(action_url(action_id, controller_id) + "/status" + query).json


def new_set(api, name="os-set", version="1.0"):
    module = api.module(name=name + "-fw", version=version)
    return api.distribution_set([module], name=name, version=version)


def config(api, key):
    return api.http.get("%s/%s" % (CONFIGS, key)).json


def put_config(api, key, value, status=204):
    return api.http.put_json("%s/%s" % (CONFIGS, key), {"value": value}, status=status)


def enable_confirmation_flow(api):
    api.configure(**{"user.confirmation.flow.enabled": True})


# --- authentication (§2) -------------------------------------------------------------------

def test_no_credentials_is_401_with_basic_challenge(server):
    response = server.http.get(TARGETS, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hawkBit"'
    assert_framework_error(response, 401, "Unauthorized")


def test_wrong_password_is_401_with_basic_challenge(server):
    response = server.http.get(TARGETS, headers=basic("admin", "wrong"), status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hawkBit"'
    assert_framework_error(response, 401, "Unauthorized")


def test_unknown_user_answers_like_wrong_password(server):
    wrong_password = server.http.get(TARGETS, headers=basic("admin", "nope"), status=401)
    unknown_user = server.http.get(TARGETS, headers=basic("mallory", "nope"), status=401)
    assert unknown_user.headers["WWW-Authenticate"] == \
        wrong_password.headers["WWW-Authenticate"]
    assert unknown_user.content_type == wrong_password.content_type
    strip = lambda body: {k: v for k, v in body.items() if k != "timestamp"}  # noqa: E731
    assert strip(unknown_user.json) == strip(wrong_password.json)


def test_non_basic_authorization_scheme_is_401(server):
    response = server.http.get(TARGETS, headers={"Authorization": "Bearer admin"}, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hawkBit"'


def test_target_token_does_not_open_the_management_api(server):
    server.target()
    server.http.get(TARGETS, headers=token("token-1"), status=401)


def test_unauthenticated_create_creates_nothing(server):
    server.http.post_json(TARGETS, [{"controllerId": "sneaky"}], status=401)
    server.http.get(TARGETS + "/sneaky", headers=basic("admin", "admin"), status=404)


def test_default_tenant_prefixed_login_is_accepted(server):
    response = server.http.get(TARGETS, headers=basic("DEFAULT\\admin", "admin"), status=200)
    assert response.json["total"] == 0


def test_tenant_prefix_is_case_insensitive(server):
    server.http.get(TARGETS, headers=basic("default\\admin", "admin"), status=200)


def test_other_tenant_prefixed_login_is_401(server):
    response = server.http.get(TARGETS, headers=basic("OTHER\\admin", "admin"), status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hawkBit"'


def test_root_get_needs_no_credentials(server):
    response = server.http.get("/", status=200)
    assert response.status_int == 200


def test_root_head_needs_no_credentials(server):
    response = server.http.head("/", status=200)
    assert response.body == b""


def test_userinfo_names_tenant_user_and_permissions(api):
    response = api.http.get(API + "/userinfo", status=200)
    body = response.json
    assert body["tenant"] == "DEFAULT"
    assert body["username"] == "admin"
    assert body["permissions"] and all(isinstance(p, str) for p in body["permissions"])


def test_userinfo_of_tenant_prefixed_login_names_the_plain_user(server):
    response = server.http.get(API + "/userinfo", headers=basic("DEFAULT\\admin", "admin"))
    assert response.json["username"] == "admin"


def test_userinfo_without_credentials_is_401(server):
    server.http.get(API + "/userinfo", status=401)


# --- content types and JSON rules (§1) ---------------------------------------------------------

def test_response_is_hal_json_without_accept(api):
    api.target()
    response = api.http.get(TARGETS + "/dev-1")
    assert response.content_type == "application/hal+json"


def test_response_is_hal_json_for_accept_any(api):
    api.target()
    response = api.http.get(TARGETS + "/dev-1", headers={"Accept": "*/*"})
    assert response.content_type == "application/hal+json"


def test_response_is_json_when_only_json_is_asked_for(api):
    api.target()
    response = api.http.get(TARGETS + "/dev-1", headers={"Accept": "application/json"})
    assert response.content_type == "application/json"
    assert response.json["controllerId"] == "dev-1"


def test_response_is_hal_json_when_hal_json_is_asked_for(api):
    api.target()
    response = api.http.get(TARGETS + "/dev-1", headers={"Accept": "application/hal+json"})
    assert response.content_type == "application/hal+json"


@pytest.mark.parametrize("content_type", [
    "application/json", "application/hal+json", "application/json;charset=UTF-8",
    "application/hal+json;charset=UTF-8"])
def test_json_body_is_accepted_with_json_content_types(api, content_type):
    response = api.http.post(TARGETS, json.dumps([{"controllerId": "dev-1"}]),
                             content_type=content_type, status=201)
    assert response.json[0]["controllerId"] == "dev-1"


def test_json_body_without_content_type_is_accepted(api):
    request = webtest.TestRequest.blank(TARGETS, method="POST",
                                        body=b'[{"controllerId": "dev-1"}]')
    request.environ.pop("CONTENT_TYPE", None)
    response = api.http.request(request, status=201)
    assert response.json[0]["controllerId"] == "dev-1"


def test_text_plain_body_is_415_with_framework_body(api):
    response = api.http.post(TARGETS, '[{"controllerId": "dev-1"}]', content_type="text/plain",
                             status=415)
    assert_framework_error(response, 415, "Unsupported Media Type")
    api.http.get(TARGETS + "/dev-1", status=404)


def test_malformed_json_is_400_not_readable(api):
    response = api.http.post(TARGETS, '[{"controllerId": "dev-1"', content_type="application/json",
                             status=400)
    assert_error(response, 400, NOT_READABLE)


def test_missing_body_is_400_not_readable(api):
    response = api.http.post(TARGETS, "", content_type="application/json", status=400)
    assert_error(response, 400, NOT_READABLE)


def test_unknown_json_properties_are_ignored(api):
    response = create(api, {"controllerId": "dev-1", "colour": "red", "start": "auto",
                            "_links": {"self": {"href": "x"}}, "pollStatus": {"overdue": True}})
    assert "colour" not in response.json[0]
    assert "pollStatus" not in response.json[0]


def test_number_is_coerced_for_a_string_field(api):
    response = create(api, {"controllerId": "dev-1", "description": 1.1})
    assert response.json[0]["description"] == "1.1"


def test_digit_string_is_coerced_for_an_integer_field(api):
    api.target()
    distribution_set = new_set(api)
    response = api.http.post_json(TARGETS + "/dev-1/assignedDS",
                                  [{"id": str(distribution_set.id), "weight": "500"}])
    action_id = response.json["assignedActions"][0]["id"]
    assert action_of(api, action_id)["weight"] == 500


def test_true_string_is_coerced_for_a_boolean_field(api):
    api.target()
    put_attributes(api, {"serial": "1"})
    assert target_of(api)["requestAttributes"] is False
    response = api.http.put_json(TARGETS + "/dev-1", {"requestAttributes": "true"}, status=200)
    assert response.json["requestAttributes"] is True


def test_uncoercible_value_is_400_not_readable(api):
    response = api.http.post_json(TARGETS, [{"controllerId": "dev-1", "name": {"a": 1}}],
                                  status=400)
    assert_error(response, 400, NOT_READABLE)


def test_unknown_query_parameters_are_ignored(api):
    api.target()
    response = api.http.get(TARGETS + "?status=active,pending&representation=full&x=1")
    assert ids(response.json) == ["dev-1"]


def test_trailing_slash_is_tolerated_on_create(api):
    response = api.http.post_json(TARGETS + "/", [{"controllerId": "dev-1"}], status=201)
    assert response.json[0]["controllerId"] == "dev-1"


def test_trailing_slash_is_tolerated_on_get(api):
    api.target()
    assert api.http.get(TARGETS + "/dev-1/").json["controllerId"] == "dev-1"


def test_unknown_route_is_404_with_framework_body(api):
    response = api.http.get(API + "/nothing-here", status=404)
    assert_framework_error(response, 404, "Not Found")


def test_wrong_method_is_405_with_allow(api):
    api.target()
    response = api.http.request(TARGETS + "/dev-1", method="PATCH", status=405)
    allowed = {part.strip().upper() for part in response.headers["Allow"].split(",")}
    assert {"GET", "PUT", "DELETE"} <= allowed
    assert "PATCH" not in allowed
    assert_framework_error(response, 405, "Method Not Allowed")


def test_non_integer_action_id_in_path_is_400_framework(api):
    api.target()
    response = api.http.get(TARGETS + "/dev-1/actions/abc", status=400)
    assert_framework_error(response, 400, "Bad Request")


def test_non_integer_limit_is_400_framework(api):
    response = api.http.get(TARGETS + "?limit=ten", status=400)
    assert_framework_error(response, 400, "Bad Request")


def test_null_properties_are_omitted(api):
    body = create(api, {"controllerId": "dev-1"}).json[0]
    for absent in ("description", "address", "ipAddress", "group", "installedAt",
                   "lastControllerRequestAt", "pollStatus"):
        assert absent not in body
    assert None not in body.values()


# --- create targets (§6.2) -----------------------------------------------------------------

def test_create_answers_201_with_the_created_targets(api):
    response = create(api, {"controllerId": "dev-1", "name": "Board", "description": "lab 7"})
    assert response.content_type == "application/hal+json"
    [body] = response.json
    assert set(body) == AUDIT | {"name", "description", "controllerId", "updateStatus",
                                 "securityToken", "requestAttributes", "_links"}
    assert body["createdBy"] == body["lastModifiedBy"] == "admin"
    assert isinstance(body["createdAt"], int) and body["createdAt"] == body["lastModifiedAt"]
    assert body["name"] == "Board"
    assert body["description"] == "lab 7"
    assert body["updateStatus"] == "unknown"
    assert body["requestAttributes"] is True
    assert body["_links"] == {"self": {"href": BASE + "/rest/v1/targets/dev-1"}}


def test_create_generates_a_32_hex_security_token(api):
    token_value = create(api, {"controllerId": "dev-1"}).json[0]["securityToken"]
    assert re.fullmatch(r"[0-9a-f]{32}", token_value), token_value


def test_generated_tokens_differ_between_targets(api):
    body = create(api, {"controllerId": "dev-1"}, {"controllerId": "dev-2"}).json
    assert body[0]["securityToken"] != body[1]["securityToken"]


def test_empty_security_token_is_replaced_by_a_generated_one(api):
    token_value = create(api, {"controllerId": "dev-1", "securityToken": ""}).json[0][
        "securityToken"]
    assert re.fullmatch(r"[0-9a-f]{32}", token_value), token_value


def test_given_security_token_is_stored_verbatim(api):
    body = create(api, {"controllerId": "dev-1", "securityToken": "ieHai3du7gee7aPhojeth4ong"})
    assert body.json[0]["securityToken"] == "ieHai3du7gee7aPhojeth4ong"
    assert target_of(api)["securityToken"] == "ieHai3du7gee7aPhojeth4ong"


def test_given_security_token_authenticates_the_device(api):
    create(api, {"controllerId": "dev-1", "securityToken": "ieHai3du7gee7aPhojeth4ong"})
    poll(api, tok="ieHai3du7gee7aPhojeth4ong", status=200)


def test_name_defaults_to_controller_id(api):
    assert create(api, {"controllerId": "dev-1"}).json[0]["name"] == "dev-1"


def test_create_ignores_request_attributes_false(api):
    body = create(api, {"controllerId": "dev-1", "requestAttributes": False}).json[0]
    assert body["requestAttributes"] is True


def test_create_answers_in_request_order(api):
    body = create(api, {"controllerId": "zz"}, {"controllerId": "aa"}, {"controllerId": "mm"})
    assert [entry["controllerId"] for entry in body.json] == ["zz", "aa", "mm"]


def test_create_existing_controller_id_is_409_and_creates_nothing(api):
    api.target("dev-1")
    response = create(api, {"controllerId": "dev-2"}, {"controllerId": "dev-1"}, status=409)
    assert_error(response, 409, ALREADY_EXISTS)
    api.http.get(TARGETS + "/dev-2", status=404)


def test_duplicate_in_request_is_409_and_creates_nothing(api):
    response = create(api, {"controllerId": "dev-1"}, {"controllerId": "dev-2"},
                      {"controllerId": "dev-1"}, status=409)
    assert_error(response, 409, ALREADY_EXISTS)
    assert api.http.get(TARGETS).json["total"] == 0


@pytest.mark.parametrize("controller_id", ["dev 1", "dev\t1", "dev-1 ", " dev-1", "dev\n1"])
def test_whitespace_in_controller_id_is_400_constraint_violation(api, controller_id):
    response = create(api, {"controllerId": controller_id}, status=400)
    assert_error(response, 400, CONSTRAINT)
    assert api.http.get(TARGETS).json["total"] == 0


@pytest.mark.parametrize("item", [{"controllerId": ""}, {"controllerId": "   "},
                                  {"name": "no id"}, {"controllerId": None}])
def test_missing_or_blank_controller_id_is_400_constraint_violation(api, item):
    response = create(api, item, status=400)
    assert_error(response, 400, CONSTRAINT)


def test_bad_item_in_request_creates_nothing(api):
    create(api, {"controllerId": "dev-1"}, {"controllerId": "bad id"}, status=400)
    assert api.http.get(TARGETS).json["total"] == 0


def test_create_with_object_instead_of_array_is_400_not_readable(api):
    response = api.http.post_json(TARGETS, {"controllerId": "dev-1"}, status=400)
    assert_error(response, 400, NOT_READABLE)
    api.http.get(TARGETS + "/dev-1", status=404)


def test_over_long_name_is_400_constraint_violation(api):
    response = create(api, {"controllerId": "dev-1", "name": "n" * 129}, status=400)
    assert_error(response, 400, CONSTRAINT)


def test_rauc_example_body_creates_the_target(api):
    response = api.http.post(TARGETS, '[{"controllerId": "test-target", "name": "test-target"}]',
                             content_type="application/json;charset=UTF-8", status=201)
    assert response.json[0]["controllerId"] == "test-target"
    body = target_of(api, "test-target")
    assert body["name"] == "test-target"
    assert re.fullmatch(r"[0-9a-f]{32}", body["securityToken"])
    poll(api, "test-target", body["securityToken"], status=200)


# --- get one target (§6.1, §6.4) -----------------------------------------------------------

def test_new_target_shows_token_unknown_status_and_request_attributes(api):
    create(api, {"controllerId": "dev-1", "securityToken": "secret"})
    body = target_of(api)
    assert body["securityToken"] == "secret"
    assert body["updateStatus"] == "unknown"
    assert body["requestAttributes"] is True


def test_never_polled_target_has_no_poll_status(api):
    create(api, {"controllerId": "dev-1"})
    body = target_of(api)
    for absent in ("pollStatus", "lastControllerRequestAt", "ipAddress", "address"):
        assert absent not in body


def test_ddi_poll_adds_poll_status(api):
    api.target()
    poll(api)
    body = target_of(api)
    status = body["pollStatus"]
    assert set(status) == {"lastRequestAt", "nextExpectedRequestAt", "overdue"}
    assert status["lastRequestAt"] == body["lastControllerRequestAt"]
    assert status["nextExpectedRequestAt"] == status["lastRequestAt"] + 300000
    assert status["overdue"] is False


def test_poll_status_follows_the_polling_time_setting(api):
    put_config(api, "pollingTime", "00:00:30")
    api.target()
    poll(api)
    status = target_of(api)["pollStatus"]
    assert status["nextExpectedRequestAt"] == status["lastRequestAt"] + 30000


def test_ddi_poll_records_last_controller_request_time(api):
    api.target()
    before = target_of(api)
    poll(api)
    after = target_of(api)
    assert "lastControllerRequestAt" not in before
    assert after["lastControllerRequestAt"] >= before["createdAt"]


def test_ddi_poll_records_address_and_ip_address(api):
    api.target()
    poll(api)
    body = target_of(api)
    assert body["address"] == "http://192.0.2.10"
    assert body["ipAddress"] == "192.0.2.10"


def test_ddi_poll_makes_an_unknown_target_registered(api):
    api.target()
    poll(api)
    assert target_of(api)["updateStatus"] == "registered"


def test_single_target_carries_the_full_links(api):
    api.target()
    links = target_of(api)["_links"]
    own = BASE + "/rest/v1/targets/dev-1"
    assert links == {
        "self": {"href": own},
        "assignedDS": {"href": own + "/assignedDS"},
        "installedDS": {"href": own + "/installedDS"},
        "attributes": {"href": own + "/attributes"},
        "actions": {"href": own + "/actions?offset=0&limit=50&sort=id%3ADESC"},
        "metadata": {"href": own + "/metadata"},
    }


def test_links_follow_the_host_header(api):
    api.target()
    body = api.http.get(TARGETS + "/dev-1", headers={"Host": "mgmt.example:8080"}).json
    assert body["_links"]["self"]["href"] == "http://mgmt.example:8080/rest/v1/targets/dev-1"


def test_list_entries_carry_the_self_link_only(api):
    api.target()
    poll(api)
    [entry] = api.http.get(TARGETS).json["content"]
    assert entry["_links"] == {"self": {"href": BASE + "/rest/v1/targets/dev-1"}}
    assert "pollStatus" in entry


def test_get_unknown_target_is_404_entity_not_found(api):
    response = api.http.get(TARGETS + "/nope", status=404)
    assert_error(response, 404, NOT_FOUND)
    assert response.json["info"] == {"type": "Target", "entityId": "nope"}


def test_confirmation_flow_adds_auto_confirm_state_and_link(api):
    api.target()
    assert "autoConfirmActive" not in target_of(api)
    enable_confirmation_flow(api)
    body = target_of(api)
    assert body["autoConfirmActive"] is False
    assert body["_links"]["autoConfirm"] == {
        "href": BASE + "/rest/v1/targets/dev-1/autoConfirm"}


def test_successful_installation_sets_installed_at_and_in_sync(api):
    finished_deployment(api)
    body = target_of(api)
    assert body["updateStatus"] == "in_sync"
    assert isinstance(body["installedAt"], int)


def test_failed_installation_marks_the_target_error(api):
    action = api.deployment()
    device_feedback(api, action.id, "closed", "failure")
    assert target_of(api)["updateStatus"] == "error"


def test_finished_deployment_asks_for_attributes_again(api):
    action = api.deployment()
    put_attributes(api, {"serial": "1"})
    assert target_of(api)["requestAttributes"] is False
    device_feedback(api, action.id)
    assert target_of(api)["requestAttributes"] is True


def test_create_with_unknown_target_type_is_404(api):
    response = create(api, {"controllerId": "dev-1", "targetType": 4711}, status=404)
    assert_error(response, 404, NOT_FOUND)
    api.http.get(TARGETS + "/dev-1", status=404)


def test_update_with_target_type_minus_one_unassigns(api):
    api.target()
    body = api.http.put_json(TARGETS + "/dev-1", {"targetType": -1}, status=200).json
    assert "targetType" not in body


def test_update_with_unknown_target_type_is_404(api):
    api.target()
    response = api.http.put_json(TARGETS + "/dev-1", {"targetType": 4711}, status=404)
    assert_error(response, 404, NOT_FOUND)


# --- list targets (§6.3, §4) ----------------------------------------------------------------

def test_list_pages_with_offset_and_limit(api):
    for number in range(1, 6):
        api.target("dev-%d" % number, "token-%d" % number)
    page = api.http.get(TARGETS + "?offset=1&limit=2").json
    assert page["total"] == 5
    assert page["size"] == 2
    assert ids(page) == ["dev-2", "dev-3"]


def test_list_page_past_the_end_is_empty(api):
    api.target()
    page = api.http.get(TARGETS + "?offset=5&limit=2").json
    assert page == {"content": [], "total": 1, "size": 0}


def test_list_without_matches_is_an_empty_page(api):
    assert api.http.get(TARGETS).json == {"content": [], "total": 0, "size": 0}


def test_list_limit_zero_means_the_default(api):
    for name in ("a", "b", "c"):
        api.target(name, "t-" + name)
    page = api.http.get(TARGETS + "?limit=0").json
    assert page["size"] == 3


def test_list_negative_offset_is_treated_as_zero(api):
    api.target()
    page = api.http.get(TARGETS + "?offset=-3").json
    assert ids(page) == ["dev-1"]


def test_list_default_order_is_controller_id_ascending(api):
    for name in ("charlie", "alpha", "bravo"):
        api.target(name, "t-" + name)
    assert ids(api.http.get(TARGETS).json) == ["alpha", "bravo", "charlie"]


def test_list_sort_by_controller_id_descending(api):
    for name in ("charlie", "alpha", "bravo"):
        api.target(name, "t-" + name)
    page = api.http.get(TARGETS + "?sort=controllerId:DESC").json
    assert ids(page) == ["charlie", "bravo", "alpha"]


def test_list_sort_direction_and_field_are_case_insensitive(api):
    for name in ("charlie", "alpha", "bravo"):
        api.target(name, "t-" + name)
    page = api.http.get(TARGETS + "?sort=CONTROLLERID:desc").json
    assert ids(page) == ["charlie", "bravo", "alpha"]


def test_list_sort_by_unknown_field_is_400_invalid_field(api):
    response = api.http.get(TARGETS + "?sort=colour:ASC", status=400)
    assert_error(response, 400, SORT_FIELD)


def test_list_sort_without_direction_is_400_sort_param_syntax(api):
    response = api.http.get(TARGETS + "?sort=controllerId", status=400)
    assert_error(response, 400, SORT_SYNTAX)


def test_list_sort_with_bad_direction_is_400_invalid_direction(api):
    response = api.http.get(TARGETS + "?sort=controllerId:UP", status=400)
    assert_error(response, 400, SORT_DIRECTION)


def test_list_filters_name_with_wildcard(api):
    for name in ("dev-1", "dev-2", "lab-1"):
        api.target(name, "t-" + name)
    page = api.http.get(TARGETS, params={"q": "name==dev-*"}).json
    assert ids(page) == ["dev-1", "dev-2"]
    assert page["total"] == 2


def test_list_filters_update_status_pending(api):
    api.target("dev-1", "token-1")
    api.target("dev-2", "token-2")
    api.deployment(controller_id="dev-2")
    page = api.http.get(TARGETS, params={"q": "updateStatus==pending"}).json
    assert ids(page) == ["dev-2"]


def test_list_filters_reported_attribute(api):
    api.target("dev-1", "token-1")
    api.target("dev-2", "token-2")
    put_attributes(api, {"channel": "nightly"}, "dev-1", "token-1")
    put_attributes(api, {"channel": "stable"}, "dev-2", "token-2")
    page = api.http.get(TARGETS, params={"q": "attribute.channel==nightly"}).json
    assert ids(page) == ["dev-1"]


def test_list_total_counts_all_matches_not_the_page(api):
    for number in range(1, 5):
        api.target("dev-%d" % number, "token-%d" % number)
    page = api.http.get(TARGETS, params={"q": "name==dev-*", "limit": "1"}).json
    assert page["total"] == 4
    assert page["size"] == 1


def test_list_with_unparsable_q_is_400_rsql_param_syntax(api):
    response = api.http.get(TARGETS, params={"q": "(name==dev-1"}, status=400)
    assert_error(response, 400, RSQL_SYNTAX)


def test_a_wildcard_value_longer_than_sqlite_takes_is_400_rsql_param_syntax(api):
    api.target("dev-1")  # SQLite only fails once a row is compared
    response = api.http.get(TARGETS, params={"q": "name==*%s*" % ("a" * 50000)}, status=400)
    assert_error(response, 400, RSQL_SYNTAX)


def test_list_with_unknown_q_field_is_400_rsql_invalid_field(api):
    response = api.http.get(TARGETS, params={"q": "colour==red"}, status=400)
    assert_error(response, 400, RSQL_FIELD)


# --- update target (§6.5) ------------------------------------------------------------------

def test_update_changes_only_the_given_fields(api):
    create(api, {"controllerId": "dev-1", "name": "old", "description": "kept"})
    response = api.http.put_json(TARGETS + "/dev-1", {"name": "new"}, status=200)
    assert response.json["name"] == "new"
    assert response.json["description"] == "kept"
    assert target_of(api)["name"] == "new"


def test_update_answers_the_full_target(api):
    api.target()
    body = api.http.put_json(TARGETS + "/dev-1", {"description": "x"}).json
    assert set(body["_links"]) == {"self", "assignedDS", "installedDS", "attributes",
                                   "actions", "metadata"}
    assert body["lastModifiedBy"] == "admin"


def test_update_with_null_leaves_a_field_alone(api):
    create(api, {"controllerId": "dev-1", "description": "kept"})
    body = api.http.put_json(TARGETS + "/dev-1", {"description": None}).json
    assert body["description"] == "kept"


def test_update_request_attributes_true_sets_the_flag(api):
    api.target()
    put_attributes(api, {"serial": "1"})
    body = api.http.put_json(TARGETS + "/dev-1", {"requestAttributes": True}).json
    assert body["requestAttributes"] is True


def test_update_request_attributes_true_re_adds_config_data_link(api):
    api.target()
    put_attributes(api, {"serial": "1"})
    assert "configData" not in poll(api).json.get("_links", {})
    api.http.put_json(TARGETS + "/dev-1", {"requestAttributes": True}, status=200)
    assert "configData" in poll(api).json["_links"]


def test_update_request_attributes_false_is_400_empty(api):
    api.target()
    response = api.http.put_json(TARGETS + "/dev-1", {"requestAttributes": False}, status=400)
    assert_empty(response, 400)


def test_update_ignores_controller_id_in_the_body(api):
    api.target()
    body = api.http.put_json(TARGETS + "/dev-1", {"controllerId": "other", "name": "x"}).json
    assert body["controllerId"] == "dev-1"
    api.http.get(TARGETS + "/other", status=404)


def test_put_back_a_whole_get_result_is_accepted(api):
    api.target()
    poll(api)
    document = target_of(api)
    document["description"] = "edited"
    body = api.http.put_json(TARGETS + "/dev-1", document, status=200).json
    assert body["description"] == "edited"
    assert body["controllerId"] == "dev-1"


def test_update_security_token_changes_the_device_credentials(api):
    api.target()
    api.http.put_json(TARGETS + "/dev-1", {"securityToken": "fresh"}, status=200)
    poll(api, tok="token-1", status=401)
    poll(api, tok="fresh", status=200)


def test_update_unknown_target_is_404(api):
    response = api.http.put_json(TARGETS + "/nope", {"name": "x"}, status=404)
    assert_error(response, 404, NOT_FOUND)


def test_update_with_array_body_is_400_not_readable(api):
    api.target()
    response = api.http.put_json(TARGETS + "/dev-1", [{"name": "x"}], status=400)
    assert_error(response, 400, NOT_READABLE)


# --- delete target (§6.6, §5.6) ------------------------------------------------------------

def test_delete_is_204_and_the_target_is_gone(api):
    api.target()
    response = api.http.delete(TARGETS + "/dev-1", status=204)
    assert_empty(response, 204)
    api.http.get(TARGETS + "/dev-1", status=404)


def test_delete_unknown_target_is_404(api):
    response = api.http.delete(TARGETS + "/nope", status=404)
    assert_error(response, 404, NOT_FOUND)


def test_deleted_controller_id_is_reusable_immediately(api):
    api.target()
    api.http.delete(TARGETS + "/dev-1", status=204)
    body = create(api, {"controllerId": "dev-1"}).json[0]
    assert body["controllerId"] == "dev-1"
    assert body["updateStatus"] == "unknown"


def test_delete_removes_the_actions(api):
    action = api.deployment()
    api.http.delete(TARGETS + "/dev-1", status=204)
    api.http.get("%s/actions/%d" % (API, action.id), status=404)
    create(api, {"controllerId": "dev-1"})
    assert api.http.get(TARGETS + "/dev-1/actions").json["total"] == 0


# --- attributes (§6.7) ---------------------------------------------------------------------

def test_attributes_are_204_before_any_report(api):
    api.target()
    assert_empty(api.http.get(TARGETS + "/dev-1/attributes", status=204), 204)


def test_attributes_are_exactly_what_the_device_reported(api):
    api.target()
    reported = {"product": "Terminator", "model": "T-1000", "serialnumber": "8922673153",
                "hw_revision": "2", "mac_address": "ff:ff:ff:ff:ff:ff"}
    put_attributes(api, reported)
    response = api.http.get(TARGETS + "/dev-1/attributes", status=200)
    assert response.json == reported


def test_attributes_of_unknown_target_are_404(api):
    assert_error(api.http.get(TARGETS + "/nope/attributes", status=404), 404, NOT_FOUND)


# --- assigned / installed DS (§6.8) --------------------------------------------------------

@pytest.mark.parametrize("path", ["assignedDS", "installedDS", "assignedDs", "installedDs"])
def test_assigned_or_installed_ds_is_204_when_none(api, path):
    api.target()
    assert_empty(api.http.get(TARGETS + "/dev-1/" + path, status=204), 204)


@pytest.mark.parametrize("path", ["assignedDS", "assignedDs"])
def test_assigned_ds_after_assignment_is_the_set(api, path):
    api.target()
    distribution_set = new_set(api, "bundle", "2.0")
    api.assign(distribution_set)
    body = api.http.get(TARGETS + "/dev-1/" + path, status=200).json
    assert body["id"] == distribution_set.id
    assert body["name"] == "bundle"
    assert body["version"] == "2.0"
    assert body["_links"]["self"] == {
        "href": BASE + "/rest/v1/distributionsets/%d" % distribution_set.id}


def test_installed_ds_is_204_while_only_assigned(api):
    api.deployment()
    assert_empty(api.http.get(TARGETS + "/dev-1/installedDS", status=204), 204)


@pytest.mark.parametrize("path", ["installedDS", "installedDs"])
def test_installed_ds_after_installation_is_the_set(api, path):
    action = finished_deployment(api)
    body = api.http.get(TARGETS + "/dev-1/" + path, status=200).json
    assert body["id"] == action.distribution_set_id
    assert "modules" in body


def test_assigned_ds_of_unknown_target_is_404(api):
    assert_error(api.http.get(TARGETS + "/nope/assignedDS", status=404), 404, NOT_FOUND)


# --- assign from the target side (§6.9) ----------------------------------------------------

def test_assign_from_target_with_an_array(api):
    api.target()
    distribution_set = new_set(api)
    response = api.http.post_json(TARGETS + "/dev-1/assignedDS", [{"id": distribution_set.id}],
                                  status=200)
    body = response.json
    [assigned] = body["assignedActions"]
    assert body == {"assigned": 1, "alreadyAssigned": 0, "total": 1, "assignedActions": [{
        "id": assigned["id"],
        "_links": {"self": {"href": BASE + "/rest/v1/targets/dev-1/actions/%d"
                            % assigned["id"]}}}]}
    assert action_of(api, assigned["id"])["status"] == "running"
    assert target_of(api)["updateStatus"] == "pending"


def test_assign_from_target_with_a_single_object(api):
    api.target()
    distribution_set = new_set(api)
    body = api.http.post_json(TARGETS + "/dev-1/assignedDS", {"id": distribution_set.id},
                              status=200).json
    assert body["assigned"] == 1
    assert api.http.get(TARGETS + "/dev-1/assignedDS").json["id"] == distribution_set.id


def test_assign_from_target_again_counts_already_assigned(api):
    api.target()
    distribution_set = new_set(api)
    api.http.post_json(TARGETS + "/dev-1/assignedDS", [{"id": distribution_set.id}])
    body = api.http.post_json(TARGETS + "/dev-1/assignedDS", [{"id": distribution_set.id}]).json
    assert body == {"assigned": 0, "alreadyAssigned": 1, "total": 1, "assignedActions": []}


def test_assign_from_target_takes_the_force_type(api):
    api.target()
    distribution_set = new_set(api)
    body = api.http.post_json(TARGETS + "/dev-1/assignedDS",
                              [{"id": distribution_set.id, "type": "soft"}]).json
    assert action_of(api, body["assignedActions"][0]["id"])["forceType"] == "soft"


def test_assign_from_target_for_unknown_target_is_404(api):
    distribution_set = new_set(api)
    response = api.http.post_json(TARGETS + "/nope/assignedDS", [{"id": distribution_set.id}],
                                  status=404)
    assert_error(response, 404, NOT_FOUND)


def test_assign_from_target_two_sets_is_400_multi_assignment(api):
    api.target()
    first, second = new_set(api, "one"), new_set(api, "two")
    response = api.http.post_json(TARGETS + "/dev-1/assignedDS",
                                  [{"id": first.id}, {"id": second.id}], status=400)
    assert_error(response, 400, MULTI_ASSIGNMENT)
    assert api.http.get(TARGETS + "/dev-1/actions").json["total"] == 0


def test_assign_from_target_offline_records_an_installation(api):
    api.target()
    distribution_set = new_set(api)
    body = api.http.post_json(TARGETS + "/dev-1/assignedDS?offline=true",
                              [{"id": distribution_set.id}], status=200).json
    action = action_of(api, body["assignedActions"][0]["id"])
    assert action["status"] == "finished"
    assert action["active"] is False
    assert target_of(api)["updateStatus"] == "in_sync"
    assert api.http.get(TARGETS + "/dev-1/installedDS").json["id"] == distribution_set.id


# --- auto-confirmation (§6.10) -------------------------------------------------------------

def test_auto_confirm_is_inactive_at_first(api):
    api.target()
    body = api.http.get(TARGETS + "/dev-1/autoConfirm", status=200).json
    assert body == {"active": False, "_links": {"activate": {
        "href": BASE + "/rest/v1/targets/dev-1/autoConfirm/activate"}}}


def test_auto_confirm_activation_is_204_and_shows_active(api):
    api.target()
    response = api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate",
                                  {"initiator": "ci", "remark": "lab"}, status=204)
    assert_empty(response, 204)
    body = api.http.get(TARGETS + "/dev-1/autoConfirm").json
    assert body["active"] is True
    assert body["initiator"] == "ci"
    assert body["remark"] == "lab"
    assert isinstance(body["activatedAt"], int)
    assert body["_links"] == {"deactivate": {
        "href": BASE + "/rest/v1/targets/dev-1/autoConfirm/deactivate"}}


def test_auto_confirm_activation_without_body_is_204(api):
    api.target()
    api.http.post(TARGETS + "/dev-1/autoConfirm/activate", status=204)
    body = api.http.get(TARGETS + "/dev-1/autoConfirm").json
    assert body["active"] is True
    assert "initiator" not in body and "remark" not in body


def test_auto_confirm_empty_strings_count_as_absent(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate",
                       {"initiator": "", "remark": ""}, status=204)
    body = api.http.get(TARGETS + "/dev-1/autoConfirm").json
    assert "initiator" not in body and "remark" not in body


def test_second_auto_confirm_activation_is_409(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate", {}, status=204)
    response = api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate", {}, status=409)
    assert_error(response, 409, AUTO_CONFIRM_ACTIVE)


def test_auto_confirm_deactivation_is_204(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate", {}, status=204)
    assert_empty(api.http.post(TARGETS + "/dev-1/autoConfirm/deactivate", status=204), 204)
    assert api.http.get(TARGETS + "/dev-1/autoConfirm").json["active"] is False


def test_auto_confirm_deactivation_is_idempotent(api):
    api.target()
    api.http.post(TARGETS + "/dev-1/autoConfirm/deactivate", status=204)
    api.http.post(TARGETS + "/dev-1/autoConfirm/deactivate", status=204)


def test_auto_confirm_activation_confirms_waiting_actions(api):
    enable_confirmation_flow(api)
    action = api.deployment()
    assert action_of(api, action.id)["status"] == "wait_for_confirmation"
    api.http.post_json(TARGETS + "/dev-1/autoConfirm/activate", {"initiator": "ci"}, status=204)
    assert action_of(api, action.id)["status"] == "running"
    newest = statuses(api, action.id)["content"][0]
    assert newest["type"] == "running"
    assert any("ci" in message for message in newest["messages"]), newest


def test_auto_confirm_of_unknown_target_is_404(api):
    assert_error(api.http.get(TARGETS + "/nope/autoConfirm", status=404), 404, NOT_FOUND)


# --- target metadata (§6.11) ---------------------------------------------------------------

def test_metadata_create_is_201_with_empty_body(api):
    api.target()
    response = api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "v"}],
                                  status=201)
    assert response.body == b""


def test_metadata_list_shows_the_entries(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/metadata",
                       [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}])
    body = api.http.get(TARGETS + "/dev-1/metadata", status=200).json
    assert body["total"] == 2 and body["size"] == 2
    assert sorted(body["content"], key=lambda entry: entry["key"]) == [
        {"key": "a", "value": "1"}, {"key": "b", "value": "2"}]


def test_metadata_duplicate_key_is_409(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "v"}])
    response = api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "w"}],
                                  status=409)
    assert_error(response, 409, ALREADY_EXISTS)
    assert api.http.get(TARGETS + "/dev-1/metadata/k").json["value"] == "v"


def test_metadata_get_one(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "v"}])
    assert api.http.get(TARGETS + "/dev-1/metadata/k", status=200).json == {
        "key": "k", "value": "v"}


def test_metadata_get_missing_key_is_404(api):
    api.target()
    assert_error(api.http.get(TARGETS + "/dev-1/metadata/k", status=404), 404, NOT_FOUND)


def test_metadata_put_is_204_and_changes_the_value(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "v"}])
    response = api.http.put_json(TARGETS + "/dev-1/metadata/k", {"value": "v2"}, status=204)
    assert_empty(response, 204)
    assert api.http.get(TARGETS + "/dev-1/metadata/k").json["value"] == "v2"


def test_metadata_put_of_a_new_key_creates_it(api):
    api.target()
    api.http.put_json(TARGETS + "/dev-1/metadata/fresh", {"value": "x"}, status=204)
    assert api.http.get(TARGETS + "/dev-1/metadata/fresh").json == {"key": "fresh", "value": "x"}


def test_metadata_delete_is_204_and_the_key_is_gone(api):
    api.target()
    api.http.post_json(TARGETS + "/dev-1/metadata", [{"key": "k", "value": "v"}])
    assert_empty(api.http.delete(TARGETS + "/dev-1/metadata/k", status=204), 204)
    api.http.get(TARGETS + "/dev-1/metadata/k", status=404)


def test_metadata_delete_of_missing_key_is_404(api):
    api.target()
    assert_error(api.http.delete(TARGETS + "/dev-1/metadata/k", status=404), 404, NOT_FOUND)


def test_metadata_filters_targets(api):
    api.target("dev-1", "token-1")
    api.target("dev-2", "token-2")
    api.http.post_json(TARGETS + "/dev-2/metadata", [{"key": "site", "value": "lab"}])
    page = api.http.get(TARGETS, params={"q": "metadata.site==lab"}).json
    assert ids(page) == ["dev-2"]


# --- target action history (§7.2) ----------------------------------------------------------

def test_action_list_is_newest_first(api):
    first = finished_deployment(api)
    second = api.deployment()
    page = api.http.get(TARGETS + "/dev-1/actions", status=200).json
    assert ids(page, "id") == [second.id, first.id]
    assert page["total"] == 2 and page["size"] == 2


def test_action_list_pages(api):
    first = finished_deployment(api)
    finished_deployment(api)
    page = api.http.get(TARGETS + "/dev-1/actions?offset=1&limit=1").json
    assert ids(page, "id") == [first.id]
    assert page["total"] == 2 and page["size"] == 1


def test_action_list_filters_running(api):
    finished_deployment(api)
    running = api.deployment()
    page = api.http.get(TARGETS + "/dev-1/actions", params={"q": "status==running"}).json
    assert ids(page, "id") == [running.id]


def test_action_list_entries_carry_the_self_link_only(api):
    action = api.deployment()
    [entry] = api.http.get(TARGETS + "/dev-1/actions").json["content"]
    assert entry["_links"] == {"self": {"href": BASE + "/rest/v1/targets/dev-1/actions/%d"
                                        % action.id}}


def test_action_list_with_unknown_q_field_is_400_rsql_invalid_field(api):
    api.deployment()
    response = api.http.get(TARGETS + "/dev-1/actions", params={"q": "colour==red"},
                            status=400)
    assert_error(response, 400, RSQL_FIELD)


def test_action_list_reads_status_pending_as_active(api):
    finished_deployment(api)
    running = api.deployment()
    page = api.http.get(TARGETS + "/dev-1/actions", params={"q": "status==pending"}).json
    assert ids(page, "id") == [running.id]


def test_action_list_of_unknown_target_is_404(api):
    assert_error(api.http.get(TARGETS + "/nope/actions", status=404), 404, NOT_FOUND)


# --- one action (§7.1, §7.3) ---------------------------------------------------------------

def test_action_document_of_a_running_update(api):
    api.target("dev-1", "token-1", name="Board 1")
    distribution_set = new_set(api, "bundle", "2.0")
    action = api.assign(distribution_set)
    response = api.http.get(action_url(action.id), status=200)
    body = response.json
    assert response.content_type == "application/hal+json"
    assert AUDIT <= set(body)
    assert body["id"] == action.id
    assert body["type"] == "update"
    assert body["active"] is True
    assert body["status"] == "running"
    assert body["detailStatus"] == "running"
    assert body["forceType"] == "forced"
    assert body["weight"] == 1000
    for absent in ("forceTime", "lastStatusCode", "maintenanceWindow"):
        assert absent not in body
    own = BASE + "/rest/v1/targets/dev-1/actions/%d" % action.id
    assert body["_links"] == {
        "self": {"href": own},
        "target": {"href": BASE + "/rest/v1/targets/dev-1", "name": "Board 1"},
        "distributionset": {"href": BASE + "/rest/v1/distributionsets/%d" % distribution_set.id,
                            "name": "bundle:2.0"},
        "status": {"href": own + "/status?offset=0&limit=50&sort=id%3ADESC"},
    }


def test_canceling_action_is_of_type_cancel_with_canceledaction_link(api):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    body = action_of(api, action.id)
    own = BASE + "/rest/v1/targets/dev-1/actions/%d" % action.id
    assert body["type"] == "cancel"
    assert body["status"] == "canceling"
    assert body["detailStatus"] == "canceling"
    assert body["_links"]["canceledaction"] == {"href": own}


def test_action_shows_the_last_reported_code(api):
    action = api.deployment()
    device_feedback(api, action.id, "proceeding", "none", code=42)
    assert action_of(api, action.id)["lastStatusCode"] == 42


def test_timeforced_action_shows_force_time(api):
    action = api.deployment(action_type=t.TIMEFORCED, forced_time=1900000000000)
    body = action_of(api, action.id)
    assert body["forceType"] == "timeforced"
    assert body["forceTime"] == 1900000000000


def test_action_of_another_target_is_404_with_empty_body(api):
    action = api.deployment(controller_id="dev-2")
    api.target("dev-1", "token-1")
    assert_empty(api.http.get(action_url(action.id, "dev-1"), status=404), 404)


def test_unknown_action_is_404_entity_not_found(api):
    api.target()
    assert_error(api.http.get(action_url(999999), status=404), 404, NOT_FOUND)


def test_action_of_unknown_target_is_404(api):
    action = api.deployment()
    assert_error(api.http.get(action_url(action.id, "nope"), status=404), 404, NOT_FOUND)


# --- action status list (§7.4) -------------------------------------------------------------

def test_status_list_is_newest_first(api):
    action = api.deployment()
    device_feedback(api, action.id, "proceeding", "none", details=["step 1"])
    device_feedback(api, action.id, "proceeding", "none", details=["step 2"])
    page = statuses(api, action.id)
    entry_ids = ids(page, "id")
    assert entry_ids == sorted(entry_ids, reverse=True)
    assert page["content"][0]["messages"][0] == "step 2"
    assert page["total"] == page["size"] == len(entry_ids)


def test_status_list_answers_the_rauc_query(api):
    action = api.deployment()
    device_feedback(api, action.id, "closed", "failure", details=["Failed to install"])
    page = statuses(api, action.id, query="?offset=0&limit=50&sort=id:DESC")
    assert page["content"][0]["type"] == "error"
    assert page["content"][0]["messages"][0] == "Failed to install"


def test_status_list_sorted_ascending_on_request(api):
    action = api.deployment()
    device_feedback(api, action.id, "proceeding", "none", details=["later"])
    page = statuses(api, action.id, query="?sort=id:ASC")
    assert page["content"][0]["messages"] == ["Assignment initiated by user 'admin'"]


def test_status_list_pages(api):
    action = api.deployment()
    device_feedback(api, action.id, "proceeding", "none", details=["a"])
    device_feedback(api, action.id, "proceeding", "none", details=["b"])
    page = statuses(api, action.id, query="?offset=1&limit=1")
    assert page["total"] == 3 and page["size"] == 1
    assert page["content"][0]["messages"][0] == "a"


def test_status_entry_fields(api):
    action = api.deployment()
    [entry] = statuses(api, action.id)["content"]
    assert set(entry) == {"id", "type", "messages", "reportedAt", "timestamp"}
    assert isinstance(entry["id"], int)
    assert isinstance(entry["reportedAt"], int) and isinstance(entry["timestamp"], int)


def test_assignment_entry_names_the_initiating_user(api):
    api.target()
    distribution_set = new_set(api)
    body = api.http.post_json(TARGETS + "/dev-1/assignedDS", [{"id": distribution_set.id}]).json
    [entry] = statuses(api, body["assignedActions"][0]["id"])["content"]
    assert entry["type"] == "running"
    assert entry["messages"] == ["Assignment initiated by user 'admin'"]


def test_status_entry_carries_the_reported_code(api):
    action = api.deployment()
    device_feedback(api, action.id, "proceeding", "none", details=["x"], code=42)
    newest = statuses(api, action.id)["content"][0]
    assert newest["code"] == 42
    assert newest["messages"][0] == "x"


def test_status_list_sort_by_unknown_field_is_400_invalid_field(api):
    action = api.deployment()
    response = api.http.get(action_url(action.id) + "/status?sort=colour:ASC", status=400)
    assert_error(response, 400, SORT_FIELD)


def test_status_entry_has_no_links(api):
    action = api.deployment()
    assert "_links" not in statuses(api, action.id)["content"][0]


def test_status_list_of_another_targets_action_is_404_empty(api):
    action = api.deployment(controller_id="dev-2")
    api.target("dev-1", "token-1")
    assert_empty(api.http.get(action_url(action.id, "dev-1") + "/status", status=404), 404)


def test_status_list_of_unknown_action_is_404(api):
    api.target()
    response = api.http.get(action_url(999999) + "/status", status=404)
    assert_error(response, 404, NOT_FOUND)


# --- cancel and force-quit (§7.5) ----------------------------------------------------------

def test_cancel_is_204_and_the_action_becomes_canceling(api):
    action = api.deployment()
    assert_empty(api.http.delete(action_url(action.id), status=204), 204)
    body = action_of(api, action.id)
    assert body["status"] == "canceling"
    assert body["active"] is True
    assert statuses(api, action.id)["content"][0]["type"] == "canceling"


def test_cancel_makes_the_ddi_poll_offer_the_cancel_action(api):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    links = poll(api).json["_links"]
    assert links["cancelAction"]["href"].endswith(
        "/DEFAULT/controller/v1/dev-1/cancelAction/%d" % action.id)
    assert "deploymentBase" not in links


def test_cancel_with_force_false_is_a_soft_cancel(api):
    action = api.deployment()
    api.http.delete(action_url(action.id) + "?force=false", status=204)
    assert action_of(api, action.id)["status"] == "canceling"


def test_cancel_of_a_finished_action_is_405_not_cancelable(api):
    action = finished_deployment(api)
    response = api.http.delete(action_url(action.id), status=405)
    assert_error(response, 405, NOT_CANCELABLE)


def test_cancel_of_a_canceling_action_is_405_not_cancelable(api):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    response = api.http.delete(action_url(action.id), status=405)
    assert_error(response, 405, NOT_CANCELABLE)


def test_force_quit_of_a_canceling_action_is_204_and_canceled(api):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    assert_empty(api.http.delete(action_url(action.id) + "?force=true", status=204), 204)
    body = action_of(api, action.id)
    assert body["status"] == "canceled"
    assert body["active"] is False
    assert statuses(api, action.id)["content"][0]["type"] == "canceled"


def test_force_quit_puts_the_target_back_in_sync(api):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    api.http.delete(action_url(action.id) + "?force=true", status=204)
    assert target_of(api)["updateStatus"] == "in_sync"
    assert_empty(api.http.get(TARGETS + "/dev-1/assignedDS", status=204), 204)


def test_force_quit_of_a_running_action_is_405_not_force_quitable(api):
    action = api.deployment()
    response = api.http.delete(action_url(action.id) + "?force=true", status=405)
    assert_error(response, 405, NOT_FORCE_QUITABLE)
    assert action_of(api, action.id)["status"] == "running"


def test_force_quit_of_a_finished_action_is_405_not_force_quitable(api):
    action = finished_deployment(api)
    response = api.http.delete(action_url(action.id) + "?force=true", status=405)
    assert_error(response, 405, NOT_FORCE_QUITABLE)


@pytest.mark.parametrize("flag", ["TRUE", "1", "yes", "on"])
def test_force_parameter_accepts_boolean_spellings(api, flag):
    action = api.deployment()
    api.http.delete(action_url(action.id), status=204)
    api.http.delete(action_url(action.id) + "?force=" + flag, status=204)
    assert action_of(api, action.id)["status"] == "canceled"


def test_cancel_of_unknown_action_is_404(api):
    api.target()
    assert_error(api.http.delete(action_url(999999), status=404), 404, NOT_FOUND)


def test_cancel_of_another_targets_action_is_404_empty(api):
    action = api.deployment(controller_id="dev-2")
    api.target("dev-1", "token-1")
    assert_empty(api.http.delete(action_url(action.id, "dev-1"), status=404), 404)
    assert action_of(api, action.id, "dev-2")["status"] == "running"


# --- switch to forced (§7.6) ---------------------------------------------------------------

def test_switch_to_forced_answers_the_forced_action(api):
    action = api.deployment(action_type=t.SOFT)
    assert action_of(api, action.id)["forceType"] == "soft"
    body = api.http.put_json(action_url(action.id), {"forceType": "forced"}, status=200).json
    assert body["forceType"] == "forced"
    assert body["id"] == action.id
    assert set(body["_links"]) == {"self", "target", "distributionset", "status"}
    assert action_of(api, action.id)["forceType"] == "forced"


def test_switch_to_forced_changes_what_the_device_sees(api):
    action = api.deployment(action_type=t.SOFT)
    before = poll(api).json["_links"]["deploymentBase"]["href"]
    path = before.split("http://localhost", 1)[1]
    handling = api.http.get(path, headers=token()).json["deployment"]
    assert (handling["download"], handling["update"]) == ("attempt", "attempt")
    api.http.put_json(action_url(action.id), {"forceType": "forced"}, status=200)
    after = poll(api).json["_links"]["deploymentBase"]["href"]
    assert after != before
    handling = api.http.get(after.split("http://localhost", 1)[1], headers=token()).json[
        "deployment"]
    assert (handling["download"], handling["update"]) == ("forced", "forced")


def test_switch_of_an_already_forced_action_is_200_and_unchanged(api):
    action = api.deployment()
    body = api.http.put_json(action_url(action.id), {"forceType": "forced"}, status=200).json
    assert body["forceType"] == "forced"


@pytest.mark.parametrize("document", [{"forceType": "soft"}, {"forceType": "downloadonly"},
                                      {}, {"forceType": None}])
def test_switch_to_anything_but_forced_is_400_constraint_violation(api, document):
    action = api.deployment(action_type=t.SOFT)
    response = api.http.put_json(action_url(action.id), document, status=400)
    assert_error(response, 400, CONSTRAINT)
    assert action_of(api, action.id)["forceType"] == "soft"


def test_switch_of_another_targets_action_is_404_empty(api):
    action = api.deployment(controller_id="dev-2", action_type=t.SOFT)
    api.target("dev-1", "token-1")
    response = api.http.put_json(action_url(action.id, "dev-1"), {"forceType": "forced"},
                                 status=404)
    assert_empty(response, 404)


def test_switch_of_unknown_action_is_404(api):
    api.target()
    response = api.http.put_json(action_url(999999), {"forceType": "forced"}, status=404)
    assert_error(response, 404, NOT_FOUND)


# --- confirm / deny (§7.7) -----------------------------------------------------------------

def test_confirm_is_204_and_the_action_runs(api):
    enable_confirmation_flow(api)
    action = api.deployment()
    response = api.http.put_json(action_url(action.id) + "/confirmation",
                                 {"confirmation": "confirmed", "details": ["ok by ops"]},
                                 status=204)
    assert_empty(response, 204)
    assert action_of(api, action.id)["status"] == "running"
    newest = statuses(api, action.id)["content"][0]
    assert newest["type"] == "running"
    assert "ok by ops" in newest["messages"]


def test_deny_is_204_and_the_action_keeps_waiting(api):
    enable_confirmation_flow(api)
    action = api.deployment()
    api.http.put_json(action_url(action.id) + "/confirmation",
                      {"confirmation": "denied", "code": 7, "details": ["not now"]}, status=204)
    body = action_of(api, action.id)
    assert body["status"] == "wait_for_confirmation"
    assert body["active"] is True
    newest = statuses(api, action.id)["content"][0]
    assert newest["type"] == "wait_for_confirmation"
    assert "not now" in newest["messages"]


def test_confirm_of_an_inactive_action_is_410_empty(api):
    action = finished_deployment(api)
    response = api.http.put_json(action_url(action.id) + "/confirmation",
                                 {"confirmation": "confirmed"}, status=410)
    assert_empty(response, 410)


def test_confirm_of_an_action_not_waiting_is_404_empty(api):
    action = api.deployment()
    response = api.http.put_json(action_url(action.id) + "/confirmation",
                                 {"confirmation": "confirmed"}, status=404)
    assert_empty(response, 404)
    assert action_of(api, action.id)["status"] == "running"


def test_confirm_of_another_targets_action_is_404(api):
    enable_confirmation_flow(api)
    action = api.deployment(controller_id="dev-2")
    api.target("dev-1", "token-1")
    api.http.put_json(action_url(action.id, "dev-1") + "/confirmation",
                      {"confirmation": "confirmed"}, status=404)
    assert action_of(api, action.id, "dev-2")["status"] == "wait_for_confirmation"


# --- global actions (§7.8) -----------------------------------------------------------------

def test_global_action_list_spans_targets_newest_first(api):
    first = api.deployment(controller_id="dev-1")
    second = api.deployment(controller_id="dev-2")
    page = api.http.get(API + "/actions", status=200).json
    assert ids(page, "id") == [second.id, first.id]
    assert page["total"] == 2
    assert page["content"][0]["_links"] == {
        "self": {"href": BASE + "/rest/v1/targets/dev-2/actions/%d" % second.id}}


def test_global_action_list_full_representation_has_all_links(api):
    api.deployment()
    [entry] = api.http.get(API + "/actions?representation=full").json["content"]
    assert {"self", "target", "distributionset", "status"} <= set(entry["_links"])


def test_global_action_list_filters(api):
    finished_deployment(api, "dev-1")
    running = api.deployment(controller_id="dev-2")
    page = api.http.get(API + "/actions", params={"q": "target.controllerId==dev-2"}).json
    assert ids(page, "id") == [running.id]


def test_global_get_action_has_full_links(api):
    action = api.deployment()
    body = api.http.get("%s/actions/%d" % (API, action.id), status=200).json
    assert body["id"] == action.id
    assert body["_links"]["target"]["href"] == BASE + "/rest/v1/targets/dev-1"
    assert "distributionset" in body["_links"]


def test_global_get_of_unknown_action_is_404(api):
    assert_error(api.http.get(API + "/actions/999999", status=404), 404, NOT_FOUND)


def test_delete_of_a_finished_action_is_204_and_it_is_gone(api):
    action = finished_deployment(api)
    assert_empty(api.http.delete("%s/actions/%d" % (API, action.id), status=204), 204)
    api.http.get("%s/actions/%d" % (API, action.id), status=404)


def test_delete_of_a_running_action_is_405_not_deletable(api):
    action = api.deployment()
    response = api.http.delete("%s/actions/%d" % (API, action.id), status=405)
    assert_error(response, 405, NOT_DELETABLE)
    api.http.get("%s/actions/%d" % (API, action.id), status=200)


def test_purge_with_keep_last_keeps_the_newest_deletable_ones(api):
    oldest = finished_deployment(api)
    middle = finished_deployment(api)
    newest = finished_deployment(api)
    running = api.deployment()
    api.http.delete(TARGETS + "/dev-1/actions?keepLast=1", status=204)
    remaining = ids(api.http.get(TARGETS + "/dev-1/actions").json, "id")
    assert remaining == [running.id, newest.id]
    for gone in (oldest, middle):
        api.http.get("%s/actions/%d" % (API, gone.id), status=404)


def test_purge_of_given_ids_deletes_exactly_those(api):
    first = finished_deployment(api)
    second = finished_deployment(api)
    api.http.delete_json(TARGETS + "/dev-1/actions", [first.id], status=204)
    assert ids(api.http.get(TARGETS + "/dev-1/actions").json, "id") == [second.id]


def test_purge_of_given_ids_with_a_running_one_is_405_and_deletes_nothing(api):
    finished = finished_deployment(api)
    running = api.deployment()
    response = api.http.delete_json(TARGETS + "/dev-1/actions", [finished.id, running.id],
                                    status=405)
    assert_error(response, 405, NOT_DELETABLE)
    assert ids(api.http.get(TARGETS + "/dev-1/actions").json, "id") == [running.id,
                                                                         finished.id]


def test_bulk_delete_by_q_removes_the_deletable_matches(api):
    finished = finished_deployment(api, "dev-1")
    running = api.deployment(controller_id="dev-1")
    other = finished_deployment(api, "dev-2")
    api.http.delete(API + "/actions?q=target.controllerId%3D%3Ddev-1", status=204)
    remaining = ids(api.http.get(API + "/actions").json, "id")
    assert finished.id not in remaining
    assert running.id in remaining and other.id in remaining


def test_bulk_delete_without_q_or_ids_is_400(api):
    finished_deployment(api)
    api.http.delete(API + "/actions", status=400)
    assert api.http.get(API + "/actions").json["total"] == 1


def test_global_action_list_unknown_representation_is_compact(api):
    action = api.deployment()
    [entry] = api.http.get(API + "/actions?representation=fancy").json["content"]
    assert entry["_links"] == {
        "self": {"href": BASE + "/rest/v1/targets/dev-1/actions/%d" % action.id}}


# --- system configuration (§11) ------------------------------------------------------------

def test_all_configs_list_every_key(api):
    body = api.http.get(CONFIGS, status=200).json
    assert CONFIG_KEYS <= set(body)


def test_all_configs_show_defaults_as_global(api):
    body = api.http.get(CONFIGS).json
    polling = body["pollingTime"]
    assert polling["value"] == "00:05:00"
    assert polling["global"] is True
    assert not AUDIT & set(polling)
    assert polling["_links"] == {"self": {"href": BASE + "/rest/v1/system/configs/pollingTime"}}


def test_default_ds_type_is_the_os_app_type_and_not_global(api):
    body = config(api, "default.ds.type")
    types = api.http.get(API + "/distributionsettypes", params={"q": "key==os_app"}).json
    assert body["value"] == types["content"][0]["id"]
    assert body["global"] is False


def test_boolean_config_is_a_json_boolean(api):
    body = config(api, "implicit.lock.enabled")
    assert body["value"] is True
    assert body["global"] is True


def test_integer_config_is_a_json_number(api):
    value = config(api, "maintenanceWindowPollCount")["value"]
    assert value == 3 and not isinstance(value, bool)


def test_string_config_is_a_json_string(api):
    assert config(api, "action.cleanup.auto.status")["value"] == "CANCELED,ERROR"
    assert config(api, "authentication.gatewaytoken.key")["value"] == ""


def test_get_unknown_config_key_is_400_config_key_invalid(api):
    response = api.http.get(CONFIGS + "/no.such.key", status=400)
    assert_error(response, 400, CONFIG_KEY)


def test_put_config_is_204_then_get_shows_it_stored(api):
    response = put_config(api, "authentication.gatewaytoken.key", "abc123")
    assert_empty(response, 204)
    body = config(api, "authentication.gatewaytoken.key")
    assert body["value"] == "abc123"
    assert body["global"] is False
    assert body["createdBy"] == body["lastModifiedBy"] == "admin"
    assert isinstance(body["createdAt"], int) and isinstance(body["lastModifiedAt"], int)


def test_put_config_equal_to_default_is_not_global(api):
    put_config(api, "pollingTime", "00:05:00")
    assert config(api, "pollingTime")["global"] is False


def test_put_boolean_config_as_json_true(api):
    put_config(api, "repository.actions.autoclose.enabled", True)
    assert config(api, "repository.actions.autoclose.enabled")["value"] is True


def test_put_boolean_config_as_string_true(api):
    put_config(api, "repository.actions.autoclose.enabled", "true")
    assert config(api, "repository.actions.autoclose.enabled")["value"] is True


def test_put_boolean_config_with_non_boolean_is_400_config_value_invalid(api):
    response = put_config(api, "repository.actions.autoclose.enabled", "maybe", status=400)
    assert_error(response, 400, CONFIG_VALUE)


def test_put_integer_config_as_numeric_string(api):
    put_config(api, "maintenanceWindowPollCount", "5")
    assert config(api, "maintenanceWindowPollCount")["value"] == 5


@pytest.mark.parametrize("value", ["00:00:30", "01:00:00", "00:03:00"])
def test_polling_time_round_trips_byte_exactly(api, value):
    put_config(api, "pollingTime", value)
    response = api.http.get(CONFIGS + "/pollingTime")
    assert ('"value":"%s"' % value) in response.body.decode("utf-8").replace(" ", "")
    assert response.json["value"] == value


def test_polling_time_set_via_api_reaches_the_device(api):
    api.target()
    put_config(api, "pollingTime", "00:00:30")
    assert poll(api).json["config"]["polling"]["sleep"] == "00:00:30"


@pytest.mark.parametrize("value", ["soon", "00:00:05", "25:00:00", True])
def test_bad_polling_time_is_400_config_value_invalid(api, value):
    response = put_config(api, "pollingTime", value, status=400)
    assert_error(response, 400, CONFIG_VALUE)
    assert config(api, "pollingTime")["global"] is True


def test_null_config_value_is_400(api):
    response = put_config(api, "pollingTime", None, status=400)
    assert_error(response, 400, CONFIG_VALUE)


def test_put_unknown_config_key_is_400_config_key_invalid(api):
    response = put_config(api, "no.such.key", "x", status=400)
    assert_error(response, 400, CONFIG_KEY)


def test_batch_put_sets_every_key(api):
    response = api.http.put_json(CONFIGS, {"pollingTime": "00:00:30",
                                           "authentication.gatewaytoken.enabled": True},
                                 status=204)
    assert_empty(response, 204)
    assert config(api, "pollingTime")["value"] == "00:00:30"
    assert config(api, "authentication.gatewaytoken.enabled")["value"] is True


def test_batch_put_with_an_unknown_key_changes_nothing(api):
    response = api.http.put_json(CONFIGS, {"pollingTime": "00:00:30", "no.such.key": 1},
                                 status=400)
    assert_error(response, 400, CONFIG_KEY)
    assert config(api, "pollingTime")["value"] == "00:05:00"


def test_batch_put_with_a_bad_value_changes_nothing(api):
    response = api.http.put_json(CONFIGS, {"authentication.gatewaytoken.key": "k",
                                           "pollingOverdueTime": "never"}, status=400)
    assert_error(response, 400, CONFIG_VALUE)
    assert config(api, "authentication.gatewaytoken.key")["global"] is True


def test_delete_config_restores_the_default(api):
    put_config(api, "pollingTime", "00:00:30")
    assert_empty(api.http.delete(CONFIGS + "/pollingTime", status=204), 204)
    body = config(api, "pollingTime")
    assert body["value"] == "00:05:00"
    assert body["global"] is True
    assert not AUDIT & set(body)


def test_legacy_min_polling_time_is_accepted(api):
    put_config(api, "minPollingTime", "00:01:00")
    assert config(api, "minPollingTime")["value"] == "00:01:00"


def test_legacy_multi_assignments_false_is_accepted(api):
    put_config(api, "multi.assignments.enabled", False)
    assert config(api, "multi.assignments.enabled")["value"] is False


def test_legacy_multi_assignments_true_is_400_config_value_invalid(api):
    response = put_config(api, "multi.assignments.enabled", True, status=400)
    assert_error(response, 400, CONFIG_VALUE)


def test_gateway_token_enabled_via_api_lets_the_gateway_poll(api):
    api.target()
    gateway = {"Authorization": "GatewayToken 0123456789abcdef0123456789abcdef"}
    api.http.get(DEVICE + "/dev-1", headers=gateway, status=401)
    put_config(api, "authentication.gatewaytoken.key", "0123456789abcdef0123456789abcdef")
    put_config(api, "authentication.gatewaytoken.enabled", True)
    api.http.get(DEVICE + "/dev-1", headers=gateway, status=200)
    assert config(api, "authentication.gatewaytoken.key")["value"] == \
        "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("word", ["yes", "on", "1", "TRUE"])
def test_put_boolean_config_accepts_true_words(api, word):
    put_config(api, "batch.assignments.enabled", word)
    assert config(api, "batch.assignments.enabled")["value"] is True


def test_put_string_config_converts_a_number_to_text(api):
    put_config(api, "authentication.header.authority", 12345)
    assert config(api, "authentication.header.authority")["value"] == "12345"


@pytest.mark.parametrize("value", ["PT45S", "00:01:00~20%"])
def test_other_polling_time_formats_round_trip(api, value):
    put_config(api, "pollingTime", value)
    assert config(api, "pollingTime")["value"] == value


def test_put_config_with_non_object_body_is_400_not_readable(api):
    response = api.http.put_json(CONFIGS + "/pollingTime", ["00:00:30"], status=400)
    assert_error(response, 400, NOT_READABLE)


def test_delete_of_unknown_config_key_is_204(api):
    api.http.delete(CONFIGS + "/no.such.key", status=204)


def test_delete_of_default_ds_type_is_404(api):
    api.http.delete(CONFIGS + "/default.ds.type", status=404)


def test_deleting_the_gateway_switch_locks_the_gateway_out_again(api):
    api.target()
    gateway = {"Authorization": "GatewayToken gw-key"}
    put_config(api, "authentication.gatewaytoken.key", "gw-key")
    put_config(api, "authentication.gatewaytoken.enabled", True)
    api.http.get(DEVICE + "/dev-1", headers=gateway, status=200)
    api.http.delete(CONFIGS + "/authentication.gatewaytoken.enabled", status=204)
    api.http.get(DEVICE + "/dev-1", headers=gateway, status=401)


def test_put_config_needs_credentials(server):
    server.http.put_json(CONFIGS + "/pollingTime", {"value": "00:00:30"}, status=401)
    assert server.http.get(CONFIGS + "/pollingTime", headers=basic("admin", "admin")).json[
        "global"] is True
