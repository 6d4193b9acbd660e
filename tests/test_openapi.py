"""/v3/api-docs: the OpenAPI description of both APIs stays true to the server.

Every route of the route table is described, and the document is valid OpenAPI 3.
"""

import ast
import pathlib

import bottle
import openapi_spec_validator
import pytest

import ddi_lite
import openapi
import storage
from conftest import Server
from openapi import schemas
from storage import transitions


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
