"""Answers without a body: an error is labelled application/json, a success carries no type.

hawkBit answers some errors with no body at all (ddi-contract.md §1.6: 401 on failed device
authentication, the empty 404s, 412, 416). Its API description declares application/json
for every error answer, as for those with hawkBit's error body, so an empty one says so too,
with Content-Length 0. An empty success (200 on feedback, 204, 304) carries no Content-Type
(mgmt-contract.md §1.3).
"""

import pytest

from conftest import DEVICE, now_ms, token
from storage import assignments

ROOT = DEVICE + "/dev-1"
ADMIN = {"Authorization": "Basic YWRtaW46YWRtaW4="}


def assert_empty_error(response, status):
    assert response.status_int == status
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Content-Type"] == "application/json"


def assert_empty_success(response, status):
    assert response.status_int == status
    assert response.body == b""
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("authorization", [None, "TargetToken wrong", "GatewayToken x"])
def test_failed_device_authentication_is_an_empty_json_401(server, authorization):
    server.target()
    headers = {"Authorization": authorization} if authorization else {}
    assert_empty_error(server.http.get(ROOT, headers=headers, status=401), 401)


def test_unknown_tenant_is_an_empty_json_401(server):
    server.target()
    response = server.http.get("/OTHER/controller/v1/dev-1", headers=token(), status=401)
    assert_empty_error(response, 401)


def test_download_of_an_unknown_file_is_an_empty_json_404(server):
    server.target()
    module = server.module(files={"fw.bin": b"firmware"})
    server.assign(server.distribution_set([module]))
    response = server.http.get(ROOT + "/softwaremodules/%d/artifacts/nothing.bin" % module.id,
                               headers=token(), status=404)
    assert_empty_error(response, 404)


def test_deployment_base_of_a_canceling_action_is_an_empty_json_404(server):
    action = server.deployment()
    assignments.cancel(action, now_ms(), "admin")
    response = server.http.get(ROOT + "/deploymentBase/%d" % action.id, headers=token(),
                               status=404)
    assert_empty_error(response, 404)


def test_download_with_a_mismatched_if_match_is_an_empty_json_412(server):
    server.target()
    module = server.module(files={"fw.bin": b"firmware"})
    server.assign(server.distribution_set([module]))
    response = server.http.get(ROOT + "/softwaremodules/%d/artifacts/fw.bin" % module.id,
                               headers=dict(token(), **{"If-Match": '"nope"'}), status=412)
    assert_empty_error(response, 412)


def test_management_action_of_another_target_is_an_empty_json_404(server):
    action = server.deployment()
    server.target("dev-2", "token-2")
    response = server.http.get("/rest/v1/targets/dev-2/actions/%d" % action.id, headers=ADMIN,
                               status=404)
    assert_empty_error(response, 404)


def test_accepted_feedback_is_an_empty_200_without_a_type(server):
    action = server.deployment()
    response = server.http.post_json(ROOT + "/deploymentBase/%d/feedback" % action.id, {
        "status": {"execution": "proceeding", "result": {"finished": "none"}}},
        headers=token(), status=200)
    assert_empty_success(response, 200)


def test_no_content_is_a_204_without_a_type(server):
    server.target()
    response = server.http.get("/rest/v1/targets/dev-1/attributes", headers=ADMIN, status=204)
    assert_empty_success(response, 204)
