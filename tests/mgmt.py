"""What the Management API tests share: the base path, the audit fields, hawkBit's error codes
(contract §3.2) and the check of an error body (§3.1)."""

API = "/rest/v1"
BASE = "http://localhost"  # WebTest's default Host is localhost:80
ADMIN = ("Basic", ("admin", "admin"))
AUDIT = {"createdBy", "createdAt", "lastModifiedBy", "lastModifiedAt"}

NOT_FOUND = "hawkbit.server.error.repo.entityNotFound"
ALREADY_EXISTS = "hawkbit.server.error.repo.entityAlreadyExists"
CONSTRAINT = "hawkbit.server.error.repo.constraintViolation"
NOT_READABLE = "hawkbit.server.error.rest.body.notReadable"
RSQL_SYNTAX = "hawkbit.server.error.rest.param.rsqlParamSyntax"
RSQL_FIELD = "hawkbit.server.error.rest.param.rsqlInvalidField"
SORT_SYNTAX = "hawkbit.server.error.rest.param.sortParamSyntax"
SORT_FIELD = "hawkbit.server.error.rest.param.invalidField"
DELETED = "hawkbit.server.error.deleted"
INCOMPLETE = "hawkbit.server.error.distributionset.incomplete"
MULTI_ASSIGNMENT = "hawkbit.server.error.multiAssignmentNotEnabled"
QUOTA = "hawkbit.server.error.quota.tooManyEntries"


def error(response, status, code):
    """A hawkBit error body with this status and errorCode, and a message; the body."""
    assert response.status_int == status, response.body
    assert response.content_type == "application/json"
    assert response.json["errorCode"] == code, response.json
    assert response.json["message"]
    return response.json
