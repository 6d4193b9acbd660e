"""/v3/api-docs: the OpenAPI description of both APIs stays true to the server.

Every route of the route table is described; the document is valid OpenAPI 3; and a bounded
schemathesis run (fixed seed, a few examples per operation, in-process against seeded data,
with credentials so that requests reach the handlers) finds no 5xx and no answer that breaks
the description.
"""

import ast
import base64
import pathlib
import shutil
import sys

import bottle
import cbor2
import openapi_spec_validator
import pytest

import console
import database
import ddi_lite
import openapi
import storage
from conftest import Server
from openapi import schemas
from storage import filters, rollouts, transitions

# schemathesis 4 (and Hypothesis with it) runs on Python 3.11 and later; setup.cfg installs
# it there only.
FUZZING = sys.version_info >= (3, 11)
if FUZZING:
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                   response_headers_conformance,
                                                   response_schema_conformance,
                                                   status_code_conformance)

GATEWAY_TOKEN = "gateway-secret"
OPERATOR = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode("ascii")}
DEVICE = {"Authorization": "GatewayToken " + GATEWAY_TOKEN}


@pytest.fixture
def routes(monkeypatch, config):
    """The route table of a server: every Bottle route create_app installs."""
    installed = []
    original = bottle.Bottle.add_route

    def add_route(app, route):
        installed.append(route)
        return original(app, route)
    monkeypatch.setattr(bottle.Bottle, "add_route", add_route)
    server = Server(config)
    yield server, installed
    storage.close_store()


def test_every_route_is_described_with_its_method(routes):
    server, installed = routes
    document = server.http.get("/v3/api-docs").json
    # The web console's pages (console/) are no API: they are left out of the document.
    pages = [route for route in installed if route.rule.startswith(console.PREFIX)]
    assert pages and not any(path.startswith(console.PREFIX) for path in document["paths"])
    installed = [route for route in installed if route not in pages]
    assert installed
    for route in installed:
        path, _ = openapi.openapi_path(route.rule)
        operation = document["paths"].get(path, {}).get(route.method.lower())
        assert operation is not None, "%s %s is not in the document" % (route.method, route.rule)
        assert operation["summary"] != openapi.UNDESCRIBED, \
            "%s %s has no entry in openapi.OPERATIONS" % (route.method, route.rule)
    assert set(openapi.OPERATIONS) == {(route.method, route.rule) for route in installed}, \
        "openapi.OPERATIONS describes routes the server does not have"


def test_a_route_without_a_description_is_listed_as_undescribed():
    document = openapi.document([("GET", "/rest/v1/gadgets/<gid>", 200)])
    operation = document["paths"]["/rest/v1/gadgets/{gid}"]["get"]
    assert operation["summary"] == openapi.UNDESCRIBED
    assert operation["parameters"][0]["name"] == "gid"


def test_management_operations_answer_the_status_of_the_route_table(server):
    document = server.http.get("/v3/api-docs").json
    paths = document["paths"]
    assert "201" in paths["/rest/v1/targets"]["post"]["responses"]
    assert "204" in paths["/rest/v1/targets/{targetId}"]["delete"]["responses"]
    assert "200" in paths["/rest/v1/distributionsets/{distributionSetId}/assignedTargets"][
        "post"]["responses"]


def test_the_document_is_valid_openapi_3(server):
    response = server.http.get("/v3/api-docs")
    assert response.content_type == "application/json"
    openapi_spec_validator.validate(response.json)


def test_the_document_answers_without_credentials_and_names_the_security_schemes(server):
    document = server.http.get("/v3/api-docs").json
    schemes = document["components"]["securitySchemes"]
    for name in ("TargetToken", "GatewayToken"):
        assert (schemes[name]["type"], schemes[name]["in"], schemes[name]["name"]) == \
            ("apiKey", "header", "Authorization")
    assert (schemes["Basic"]["type"], schemes["Basic"]["scheme"]) == ("http", "basic")
    poll = document["paths"]["/{tenant}/controller/v1/{controllerId}"]["get"]
    assert poll["security"] == [{"TargetToken": []}, {"GatewayToken": []}]
    assert document["paths"]["/rest/v1/targets"]["get"]["security"] == [{"Basic": []}]


def test_api_docs_can_be_turned_off(tmp_path):
    config = ddi_lite.load_config(path=None, environ={"DDI_LITE_SERVER_API_DOCS": "false"},
                                  overrides={"server.data_dir": str(tmp_path / "data")})
    server = Server(config)
    try:
        assert server.http.get("/v3/api-docs", status=404).status_int == 404
    finally:
        storage.close_store()


def test_the_description_imports_nothing_of_the_server():
    server = {"ddi_lite", "storage", "artifacts", "client", "bottle", "peewee", "waitress"}
    for path in (pathlib.Path(openapi.__file__).parent).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert {name.split(".")[0] for name in names} & server == set(), path


def test_the_feedback_vocabulary_is_the_one_the_rules_accept():
    assert schemas.EXECUTIONS == transitions.EXECUTIONS
    assert schemas.FINISHED_VALUES == transitions.FINISHED_VALUES
    assert schemas.CONFIRMATIONS == transitions.CONFIRMATIONS



def test_the_rollout_limits_are_the_ones_the_rules_apply():
    post = schemas.ROLLOUTS["MgmtRolloutRestRequestBodyPost"]["properties"]
    group = schemas.ROLLOUTS["MgmtRolloutGroup"]["properties"]
    assert post["targetFilterQuery"]["maxLength"] == filters.MAX_QUERY
    assert group["targetFilterQuery"]["maxLength"] == filters.MAX_QUERY
    assert openapi.QUERY_PARAMETERS["remark"]["schema"]["maxLength"] == rollouts.MAX_REMARK

###############################################################################
# schemathesis ################################################################
###############################################################################

def data_config(directory):
    return ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(directory), "server.trusted_proxies": ""})


@pytest.fixture(scope="module")
def seeded_data(tmp_path_factory):
    """A data directory holding what the document's path examples name: target dev-1 with
    action 100 of distribution set 1, software module 1 with artifact 1 (fw.swu), metadata
    key `location` on each, target tag 1 on dev-1, distribution set tag 1 on set 1, target
    type 1 (no target has it), target filter 1 auto-assigning set 1, rollout 1 of set 1 for
    dev-1 (ready, group 1). Devices may log in with
    the gateway token. Made once, copied for each test: a fresh copy costs a third of seeding
    a new one."""
    directory = tmp_path_factory.mktemp("seeded") / "data"
    server = Server(data_config(directory))
    try:
        server.configure(**{"authentication.gatewaytoken.enabled": True,
                            "authentication.gatewaytoken.key": GATEWAY_TOKEN})
        server.target("dev-1", "token-1")
        module = server.module(files={"fw.swu": b"firmware" * 100})
        action = server.assign(server.distribution_set([module]), "dev-1")
        assert (module.id, action.id, action.distribution_set_id) == (1, 100, 1)
        for path in ("targets/dev-1", "softwaremodules/1", "distributionsets/1"):
            server.http.post_json("/rest/v1/%s/metadata" % path,
                                  [{"key": "location", "value": "lab"}], headers=OPERATOR)
        for path, tagged in (("targettags", "dev-1"), ("distributionsettags", 1)):
            server.http.post_json("/rest/v1/" + path, [{"name": "lab"}], headers=OPERATOR)
            server.http.post_json("/rest/v1/%s/1/assigned" % path, [tagged], headers=OPERATOR)
        server.http.post_json("/rest/v1/targettypes", [
            {"name": "gateway", "compatibledistributionsettypes": [{"id": 3}]}],
            headers=OPERATOR)
        target_filter = server.http.post_json("/rest/v1/targetfilters", {
            "name": "lab", "query": "controllerId==dev-*"}, headers=OPERATOR).json
        server.http.post_json("/rest/v1/targetfilters/%d/autoAssignDS" % target_filter["id"],
                              {"id": 1}, headers=OPERATOR)
        rollout = server.http.post_json("/rest/v1/rollouts", {
            "name": "lab", "distributionSetId": 1, "targetFilterQuery": "controllerId==dev-*"},
            headers=OPERATOR).json
        assert rollout["id"] == 1
    finally:
        storage.close_store()
    return directory


class CurrentServer:
    """A WSGI app that passes each request on to the server of the running test, so that
    every fuzzing test can share one loaded description: schemathesis analyses a freshly
    loaded one for a quarter of a second per operation, ten times what a shared one costs."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


CURRENT = CurrentServer()


@pytest.fixture
def seeded(seeded_data, tmp_path):
    """A server of its own on a copy of the seeded data, which CURRENT passes requests to."""
    shutil.copytree(seeded_data, tmp_path / "data")
    if database.ON_POSTGRES:  # the rows are not in the directory: copy them too
        storage.open_store(str(tmp_path / "data"), 0)
        storage.close_store()
        database.copy_rows(seeded_data, tmp_path / "data")
    server = Server(data_config(tmp_path / "data"))
    CURRENT.app = server.wsgi
    yield server
    CURRENT.app = None
    storage.close_store()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """The description, loaded once for every fuzzing test (from a server of its own)."""
    CURRENT.app = Server(data_config(tmp_path_factory.mktemp("loader"))).wsgi
    try:
        return schemathesis.openapi.from_wsgi("/v3/api-docs", CURRENT)
    finally:
        storage.close_store()
        CURRENT.app = None


def credentials(case):
    if case.operation.path.startswith("/rest/v1/") or case.operation.path == "/metrics":
        return OPERATOR
    if case.operation.path.startswith("/{tenant}/"):
        return DEVICE
    return {}


def may_be_empty(document, case, status):
    """Whether the document allows this error answer without a body (x-empty-allowed)."""
    answer = document["paths"][case.operation.path][case.method.lower()]["responses"].get(
        str(status), {})
    if "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return bool(answer.get("x-empty-allowed"))


def check_against_the_description(case, response, document):
    checks = [not_a_server_error, status_code_conformance, response_headers_conformance]
    if response.content or not may_be_empty(document, case, response.status_code):
        checks += [content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks)


# Every described operation, as schemathesis names it: one fuzzing test each.
OPERATIONS = sorted((method, openapi.openapi_path(rule)[0]) for method, rule in openapi.OPERATIONS)
EXAMPLES_PER_OPERATION = 6
SEED = 10

if FUZZING:
    @schemathesis.serializer("application/cbor")
    def cbor_body(context, value):
        return {"data": cbor2.dumps(value)}


@pytest.mark.skipif(not FUZZING, reason="schemathesis 4 needs Python 3.11")
@pytest.mark.parametrize("method, path", OPERATIONS, ids=["%s %s" % o for o in OPERATIONS])
def test_no_answer_is_a_server_error_or_breaks_the_description(api, seeded, method, path):
    """Requests made from the description, valid and invalid, to existing entities (the path
    examples) and to random ones, with an operator's or a device's credentials."""
    operation = api[path][method]
    document = api.raw_schema
    described = document["paths"][path][method.lower()]
    existing = {parameter["name"]: parameter["example"]
                for parameter in described.get("parameters", ()) if parameter.get("in") == "path"}
    positive, negative = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
    strategies = [operation.as_strategy(positive, path_parameters=existing),
                  operation.as_strategy(positive)]
    if "requestBody" in described or len(described.get("parameters", ())) > len(existing):
        # Something to get wrong besides the path: a body or a query parameter.
        strategies.append(operation.as_strategy(negative, path_parameters=existing))

    @hypothesis.given(hypothesis.strategies.one_of(strategies))
    @hypothesis.seed(SEED)
    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, database=None, deadline=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    def exchange(case):
        check_against_the_description(case, case.call(headers=credentials(case)), document)
    exchange()


@pytest.mark.skipif(not FUZZING, reason="schemathesis 4 needs Python 3.11")
def test_the_pause_after_wrong_logins_is_described(api, seeded):
    case = api["/rest/v1/targets"]["GET"].Case()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode("ascii")}
    statuses = [case.call(headers=wrong).status_code
                for _ in range(seeded.config["limits", "login_failures"] + 1)]
    assert statuses[-2:] == [401, 429]
    response = case.call(headers=wrong)
    assert response.headers["retry-after"]
    check_against_the_description(case, response, api.raw_schema)


@pytest.mark.skipif(not FUZZING, reason="schemathesis 4 needs Python 3.11")
def test_the_device_resources_of_each_action_state_are_described(api, seeded):
    """The answers fuzzing rarely reaches, because they need an action in a given state:
    installedBase of a finished action, confirmationBase of one waiting for consent, and
    cancelAction of one being cancelled."""
    def exchange(method, path, credentials, status, body=None, **path_parameters):
        content = {} if body is None else {"body": body, "media_type": "application/json"}
        case = api[path][method].Case(path_parameters=path_parameters, **content)
        response = case.call(headers=credentials)
        check_against_the_description(case, response, api.raw_schema)
        assert response.status_code == status, response.text
        return response

    device = "/{tenant}/controller/v1/{controllerId}"
    dev_1 = {"tenant": "DEFAULT", "controllerId": "dev-1"}
    closed = {"status": {"execution": "closed", "result": {"finished": "success"}}}
    exchange("POST", device + "/deploymentBase/{actionId}/feedback", DEVICE, 200, closed,
             actionId=100, **dev_1)
    exchange("GET", device + "/installedBase/{actionId}", DEVICE, 200, actionId=100, **dev_1)
    assert "installedBase" in exchange("GET", device, DEVICE, 200, **dev_1).json()["_links"]

    exchange("PUT", "/rest/v1/system/configs/{keyName}", OPERATOR, 204, {"value": True},
             keyName="user.confirmation.flow.enabled")
    module = seeded.module(name="fw-2", files={"fw-2.swu": b"2" * 100})
    set_2 = seeded.distribution_set([module], name="set-2")
    assigned = exchange("POST", "/rest/v1/distributionsets/{distributionSetId}/assignedTargets",
                        OPERATOR, 200, [{"id": "dev-1", "confirmationRequired": True}],
                        distributionSetId=set_2.id).json()
    action_id = assigned["assignedActions"][0]["id"]
    exchange("GET", device + "/confirmationBase", DEVICE, 200, **dev_1)
    exchange("GET", device + "/confirmationBase/{actionId}", DEVICE, 200, actionId=action_id,
             **dev_1)

    exchange("DELETE", "/rest/v1/targets/{targetId}/actions/{actionId}", OPERATOR, 204,
             targetId="dev-1", actionId=action_id)
    exchange("GET", device + "/cancelAction/{actionId}", DEVICE, 200, actionId=action_id,
             **dev_1)
    exchange("POST", device + "/cancelAction/{actionId}/feedback", DEVICE, 200, closed,
             actionId=action_id, **dev_1)
