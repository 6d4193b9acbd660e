"""The OpenAPI 3 description of ddi-lite's two APIs, built from the server's route table.

The device API (DDI, `/{tenant}/controller/v1/{controllerId}/...`) and the Management API
(`/rest/v1/...`) are described in one document, which the server answers at `/v3/api-docs`
(hawkBit's path) while `[server] api_docs` is on.

This package describes the web face and nothing else: it imports nothing of the server.
`ddi_lite.create_app` passes in the route table as `(method, rule, status)` rows (`rule` in
Bottle's syntax, `status` the success status the table gives, or None), and `document()`
turns every row into an operation. What an operation says beyond its method and path (summary,
query parameters, request body, answers) comes from OPERATIONS, keyed by method and rule; the
JSON schemas live in `openapi.schemas`. A route missing from OPERATIONS is still listed, as
undescribed, and tests/test_openapi.py fails on it. Sections:

    Parameters     path parameters (hawkBit's names) and query parameters
    Answers        success and error responses, media types, security
    Operations     what each route takes and answers
    Document       document(routes) -> dict
"""

import collections
import importlib.metadata
import re

from openapi import schemas
from openapi.schemas import ref

OPENAPI_VERSION = "3.0.3"
DEVICE_ROOT = "/<tenant>/controller/v1/<controller_id>"
MANAGEMENT_ROOT = "/rest/v1"
UNDESCRIBED = "Not described yet"

HAL_JSON = "application/hal+json"
JSON = "application/json"
CBOR = "application/cbor"


###############################################################################
# Parameters ##################################################################
###############################################################################

def _path_parameter(name, schema, description, example):
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema, "example": example}


def _id(name, description, example=1):
    return _path_parameter(name, schemas.integer(), description, example)


# Bottle's names in the route table -> hawkBit's names in the published paths. Some of our
# names stand for different things depending on the literal segment before them.
PATH_PARAMETERS = {
    ("tenant", None): _path_parameter(
        "tenant", schemas.string(), "The tenant. A single-tenant server: DEFAULT, any case.",
        "DEFAULT"),
    ("controller_id", None): _path_parameter(
        "controllerId", schemas.string(minLength=1), "The device's identity: 1 to 256 "
        "characters without whitespace.", "dev-1"),
    ("action_id", None): _id("actionId", "One of the device's actions.", 100),
    ("module_id", None): _id("softwareModuleId", "A module of the device's deployment."),
    ("filename", None): _path_parameter(
        "fileName", schemas.string(), "The artifact's file name. With `.MD5SUM` appended: "
        "its MD5 checksum as a text line.", "fw.swu"),
    ("cid", None): _path_parameter("targetId", schemas.string(),
                                   "A target's controller id.", "dev-1"),
    ("aid", "actions"): _id("actionId", "An action.", 100),
    ("aid", "artifacts"): _id("artifactId", "An artifact of the software module."),
    ("sid", None): _id("softwareModuleId", "A software module."),
    ("did", None): _id("distributionSetId", "A distribution set."),
    ("fid", None): _id("filterId", "A target filter."),
    ("tid", "softwaremoduletypes"): _id("softwareModuleTypeId", "A software module type."),
    ("tid", "distributionsettypes"): _id("distributionSetTypeId", "A distribution set type."),
    ("mid", None): _id("softwareModuleTypeId", "A module type of the set type."),
    ("key", "metadata"): _path_parameter("metadataKey", schemas.string(),
                                         "A metadata key.", "location"),
    ("key", "configs"): _path_parameter("keyName", schemas.string(),
                                        "A tenant configuration key.", "pollingTime"),
    # tags and target types
    ("tag", "targettags"): _id("targetTagId", "A target tag."),
    ("tag", "distributionsettags"): _id("distributionsetTagId", "A distribution set tag."),
    ("tid", "targettypes"): _id("targetTypeId", "A target type."),
    ("dtid", None): _id("distributionSetTypeId", "A distribution set type."),
    ("cid", "assigned"): _path_parameter("controllerId", schemas.string(),
                                         "A target's controller id.", "dev-1"),
    # rollouts
    ("rid", "rollouts"): _id("rolloutId", "A rollout."),
    ("gid", "deploygroups"): _id("deployGroupId", "A group of the rollout."),
}


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


QUERY_PARAMETERS = {
    "q": _query("q", schemas.string(), "An RSQL (FIQL) filter, e.g. `updateStatus==pending`."),
    "sort": _query("sort", schemas.string(),
                   "Sort order: `field:ASC` or `field:DESC`, comma separated."),
    "offset": _query("offset", schemas.integer(fmt="int32"),
                     "Zero-based index of the first entry (default 0)."),
    "limit": _query("limit", schemas.integer(fmt="int32"),
                    "Most entries in the page (default 50, at most 500)."),
    "representation": _query("representation", schemas.enum(("compact", "full")),
                             "`full` adds the links of a single entity to each entry."),
    "soft_deleted_mode": _query(
        "soft_deleted_mode",
        schemas.enum(("EXCLUDE_SOFT_DELETED", "INCLUDE_SOFT_DELETED", "ONLY_SOFT_DELETED")),
        "Which soft-deleted entities to list (default: none)."),
    "force": _query("force", schemas.boolean(),
                    "Close a cancelling action at once, without the device (force-quit)."),
    "offline": _query("offline", schemas.boolean(),
                      "Record the set as installed without a device action."),
    "keepLast": _query("keepLast", schemas.integer(fmt="int32", minimum=0),
                       "Keep the newest N deletable actions, delete the others."),
    "c": _query("c", schemas.integer(fmt="int32"),
                "Opaque value from the link; changes when the offer changes. Ignored."),
    "actionHistory": _query("actionHistory", schemas.integer(fmt="int32"),
                            "How many of the device's own messages to return (-1: all)."),
    "md5sum": _query("md5sum", schemas.string(), "Expected MD5 of the upload."),
    "sha1sum": _query("sha1sum", schemas.string(), "Expected SHA-1 of the upload."),
    "sha256sum": _query("sha256sum", schemas.string(), "Expected SHA-256 of the upload."),
    "filename": _query("filename", schemas.string(), "Name to store the upload under."),
    "remark": _query("remark", schemas.string(maxLength=255),
                     "Why the rollout is approved or denied."),
    "onNotFoundPolicy": _query(
        "onNotFoundPolicy",
        schemas.enum(("FAIL", "ON_WHAT_FOUND_AND_FAIL", "ON_WHAT_FOUND_AND_SUCCESS")),
        "Unknown controller ids: FAIL (default) changes nothing and answers 404; "
        "ON_WHAT_FOUND_AND_FAIL changes the known targets, then answers 404; "
        "ON_WHAT_FOUND_AND_SUCCESS changes the known targets and succeeds."),
}

LIST = ("q", "sort", "offset", "limit")
PAGE = ("sort", "offset", "limit")

_SEGMENT = re.compile(r"<([^>:]+)(?::[^>]*)?>")


def openapi_path(rule):
    """A Bottle rule as an OpenAPI path, and the parameters of its wildcards in order."""
    segments, parameters, previous = [], [], None
    for segment in rule.split("/"):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            segments.append(segment)
            previous = segment
            continue
        name = match.group(1)
        parameter = PATH_PARAMETERS.get((name, previous)) or PATH_PARAMETERS.get((name, None)) \
            or {"name": name, "in": "path", "required": True, "schema": schemas.string()}
        segments.append("{%s}" % parameter["name"])
        parameters.append(parameter)
    return "/".join(segments), parameters


###############################################################################
# Answers #####################################################################
###############################################################################

DEVICE, MANAGEMENT, SERVER = "device", "management", "server"

SECURITY = {
    DEVICE: [{"TargetToken": []}, {"GatewayToken": []}],
    MANAGEMENT: [{"Basic": []}],
    SERVER: [],
}

SECURITY_SCHEMES = {
    "TargetToken": {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "`Authorization: TargetToken <token>`: the target's security token "
                       "(tenant key authentication.targettoken.enabled)."},
    "GatewayToken": {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "`Authorization: GatewayToken <key>`: the tenant's gateway token, "
                       "for any device (authentication.gatewaytoken.enabled). A TLS proxy in "
                       "[server] trusted_proxies may vouch for a device with certificate "
                       "headers instead (authentication.header.enabled)."},
    "Basic": {"type": "http", "scheme": "basic",
              "description": "An operator account of config.ini's [accounts]."},
}

REQUEST_MEDIA = {DEVICE: (JSON, CBOR), MANAGEMENT: (JSON, HAL_JSON), SERVER: (JSON,)}
RESPONSE_MEDIA = {DEVICE: (HAL_JSON, JSON, CBOR), MANAGEMENT: (HAL_JSON, JSON),
                  SERVER: (JSON,)}

_HAWKBIT = "hawkbit"
_FRAMEWORK = "framework"
_HEALTH = "health"
_BODY_SCHEMAS = {_HAWKBIT: ref("ExceptionInfo"), _FRAMEWORK: ref("FrameworkError"),
                 _HEALTH: ref("Health")}

ErrorAnswer = collections.namedtuple("ErrorAnswer", "name description bodies may_be_empty")

# status -> its answer: the bodies it may carry, and whether it may come without one
ERRORS = {
    400: ErrorAnswer("BadRequest", "Bad request: a body that cannot be read or breaks a rule, "
                     "or a malformed parameter.", (_HAWKBIT, _FRAMEWORK), True),
    401: ErrorAnswer("Unauthorized", "Not authenticated.", (_FRAMEWORK,), False),
    403: ErrorAnswer("ReadOnly", "The entity cannot be changed any more (the module types of "
                     "a set type that sets use).", (_HAWKBIT,), False),
    404: ErrorAnswer("NotFound", "Not found: an unknown entity or path. No body where hawkBit "
                     "sends none (a resource that does not apply to the action's state, an "
                     "action of another target).", (_HAWKBIT, _FRAMEWORK), True),
    405: ErrorAnswer("NotAllowed", "Not allowed in the entity's state (e.g. cancelling a "
                     "closed action).", (_HAWKBIT, _FRAMEWORK), False),
    406: ErrorAnswer("NotAcceptable", "None of the media types in Accept can be produced.",
                     (_FRAMEWORK,), False),
    409: ErrorAnswer("Conflict", "Conflict: the entity exists already, or the state was set "
                     "already.", (_HAWKBIT,), False),
    410: ErrorAnswer("Gone", "Gone: the action is no longer active (no body), or the "
                     "artifact's bytes were deleted.", (_HAWKBIT,), True),
    412: ErrorAnswer("PreconditionFailed", "If-Match does not match the artifact (no body).",
                     (), True),
    413: ErrorAnswer("TooLarge", "The upload is larger than [limits] max_artifact_bytes.",
                     (_HAWKBIT,), False),
    415: ErrorAnswer("UnsupportedMediaType", "The request's Content-Type is not accepted.",
                     (_FRAMEWORK,), False),
    416: ErrorAnswer("RangeNotSatisfiable", "The Range cannot be satisfied (no body; "
                     "Content-Range: bytes */size).", (), True),
    423: ErrorAnswer("Locked", "The entity is locked (part of a locked distribution set).",
                     (_HAWKBIT,), False),
    429: ErrorAnswer("TooManyRequests", "A quota is exceeded (history entries, attributes, "
                     "metadata, targets per assignment); or, for operators, too many wrong "
                     "logins or password checks at once: Retry-After says when to try again.",
                     (_HAWKBIT, _FRAMEWORK), False),
    503: ErrorAnswer("Down", "Not ready: the database does not answer.", (_HEALTH,), False),
}
# Devices get an empty 401 without a challenge, as from hawkBit.
DEVICE_UNAUTHORIZED = ErrorAnswer("DeviceUnauthorized", "Not authenticated (no body).", (),
                                  False)


def _content(schema, media_types):
    return {media: {"schema": schema} for media in media_types}


def _error_response(error):
    """The response object of an error answer (components/responses)."""
    response = {"description": error.description}
    if error.name == "Unauthorized":
        response["headers"] = {"WWW-Authenticate": {"schema": schemas.string(),
                                                    "description": 'Basic realm="hawkBit"'}}
    if error.name == "TooManyRequests":
        response["headers"] = {"Retry-After": {"schema": schemas.string(),
                                               "description": "Seconds to wait (logins)."}}
    if error.bodies:
        schema = _BODY_SCHEMAS[error.bodies[0]] if len(error.bodies) == 1 else \
            {"anyOf": [_BODY_SCHEMAS[body] for body in error.bodies]}
        response["content"] = _content(schema, (JSON,))
        if error.may_be_empty:
            # OpenAPI cannot say "this JSON, or nothing"; clients of hawkBit must expect both.
            response["x-empty-allowed"] = True
    return response


ERROR_RESPONSES = {error.name: _error_response(error)
                   for error in list(ERRORS.values()) + [DEVICE_UNAUTHORIZED]}


def _error_ref(status, api):
    error = DEVICE_UNAUTHORIZED if (status, api) == (401, DEVICE) else ERRORS[status]
    return {"$ref": "#/components/responses/" + error.name}


_ETAG = {"ETag": {"schema": schemas.string(),
                  "description": 'Shallow ETag of the body ("0" and its MD5); send it back in '
                                 'If-None-Match to get 304.'}}

_FILE_HEADERS = {
    "ETag": {"schema": schemas.string(), "description": "The artifact's SHA-1, quoted."},
    "Accept-Ranges": {"schema": schemas.string(), "description": "bytes"},
    "Content-Disposition": {"schema": schemas.string(),
                            "description": "attachment, with the file name"},
    "Last-Modified": {"schema": schemas.string()},
}


def _file_answers(md5sum):
    binary = {"schema": schemas.string(format="binary")}
    whole = {"application/octet-stream": binary}
    if md5sum:
        whole["text/plain"] = {"schema": schemas.string(
            "`<md5>  <file name>`: for `fileName` ending in `.MD5SUM`.")}
    answers = {
        "200": {"description": "The whole file.", "headers": _FILE_HEADERS, "content": whole},
        "206": {"description": "The requested range(s); several ranges as "
                               "multipart/byteranges.",
                "headers": dict(_FILE_HEADERS, **{"Content-Range": {
                    "schema": schemas.string(), "description": "bytes first-last/size"}}),
                "content": {"application/octet-stream": binary,
                            "multipart/byteranges": binary}},
    }
    if md5sum:  # the device's download
        answers["302"] = {
            "description": "With `[artifacts] redirect = true` and an S3 store: fetch the "
                           "file from the short-lived presigned URL in Location, without "
                           "the Authorization header.",
            "headers": {"Location": {"schema": schemas.string()}}}
    return answers


###############################################################################
# Operations ##################################################################
###############################################################################

# The answer of a download: the file's bytes, whole or in ranges (or its MD5SUM line).
FILE, FILE_OR_MD5SUM = "file", "file or MD5SUM"
# The answer of /metrics: Prometheus's text exposition format.
PROMETHEUS_TEXT = "Prometheus text"

Body = collections.namedtuple("Body", "schema required media")
Operation = collections.namedtuple(
    "Operation", "summary answer body query errors status also json_get operator")


def op(summary, answer=None, body=None, query=(), errors=(), status=None, also=(),
       json_get=False, operator=False):
    """What a route takes and answers.

    `answer`: the success body's schema (None: no body; or FILE, FILE_OR_MD5SUM,
    PROMETHEUS_TEXT).
    `body`: the request body, a schema or a Body.
    `status`: the success status, for routes whose table gives none.
    `also`: other success statuses, without a body.
    `errors`: the error statuses this route can answer besides those every route of its API
    can (see `_errors`).
    `json_get`: a device GET with content negotiation, a shallow ETag and 304.
    `operator`: a server resource behind the operators' login (HTTP Basic), as /rest/v1 is.
    """
    if body is not None and not isinstance(body, Body):
        body = Body(body, True, None)
    return Operation(summary, answer, body, tuple(query), tuple(errors), status, tuple(also),
                     json_get, operator)


def _items(name):
    return schemas.array(ref(name))


def _one_or_many(name):
    return {"oneOf": [ref(name), _items(name)]}


_D = DEVICE_ROOT
_M = MANAGEMENT_ROOT
_UPLOAD = Body(ref("MgmtArtifactUpload"), True, ("multipart/form-data",))

OPERATIONS = {
    # --- device API (DDI) ---------------------------------------------------------------
    ("GET", _D): op(
        "Poll: what the device should do next. An unknown device registers (plug and play).",
        ref("DdiControllerBase"), errors=(400,), json_get=True),
    ("PUT", _D + "/configData"): op(
        "Report the device's attributes.", body=ref("DdiConfigData"),
        errors=(400, 404, 429), status=200),
    ("GET", _D + "/deploymentBase/<action_id>"): op(
        "The deployment the device should install.", ref("DdiDeploymentBase"),
        query=("c", "actionHistory"), errors=(400, 404), json_get=True),
    ("POST", _D + "/deploymentBase/<action_id>/feedback"): op(
        "Report progress or the result of a deployment. A report on a closed action is kept "
        "as a late report (200).", body=ref("DdiActionFeedback"), errors=(400, 404, 429),
        status=200),
    ("GET", _D + "/cancelAction/<action_id>"): op(
        "The cancellation the device should carry out.", ref("DdiCancel"),
        errors=(400, 404), json_get=True),
    ("POST", _D + "/cancelAction/<action_id>/feedback"): op(
        "Report on a cancellation.", body=ref("DdiActionFeedback"),
        errors=(400, 404, 405, 429), status=200),
    ("GET", _D + "/installedBase/<action_id>"): op(
        "The deployment the device has installed.", ref("DdiDeploymentBase"),
        query=("actionHistory",), errors=(400, 404), json_get=True),
    ("PUT", _D + "/installedBase"): op(
        "Tell the server which distribution set the device runs (201: recorded as a new "
        "offline assignment).", body=ref("DdiAssignedVersion"), errors=(400, 404),
        status=200, also=(201,)),
    ("GET", _D + "/confirmationBase"): op(
        "The confirmation state: auto-confirmation and an action waiting for consent. An "
        "unknown device registers.", ref("DdiConfirmationBase"), errors=(400,),
        json_get=True),
    ("POST", _D + "/confirmationBase/activateAutoConfirm"): op(
        "Switch auto-confirmation on for the device.",
        body=Body(ref("DdiActivateAutoConfirmation"), False, None),
        errors=(400, 404, 409), status=200),
    ("POST", _D + "/confirmationBase/deactivateAutoConfirm"): op(
        "Switch auto-confirmation off for the device.", errors=(404,), status=200),
    ("GET", _D + "/confirmationBase/<action_id>"): op(
        "An action waiting for the device's confirmation.", ref("DdiConfirmationBaseAction"),
        query=("c", "actionHistory"), errors=(400, 404), json_get=True),
    ("POST", _D + "/confirmationBase/<action_id>/feedback"): op(
        "Confirm or deny an action.", body=ref("DdiConfirmationFeedback"),
        errors=(400, 404, 429), status=200),
    ("GET", _D + "/softwaremodules/<module_id>/artifacts"): op(
        "The artifacts of a module of the device's deployment.", _items("DdiArtifact"),
        errors=(400, 404, 406), status=200),
    ("GET", _D + "/softwaremodules/<module_id>/artifacts/<filename>"): op(
        "Download an artifact (ranges supported), or its MD5SUM line.", FILE_OR_MD5SUM,
        errors=(400, 404, 406, 412, 416), status=200),

    # --- targets -----------------------------------------------------------------------
    ("GET", _M + "/targets"): op("List targets.", ref("PagedListMgmtTarget"), query=LIST),
    ("POST", _M + "/targets"): op(
        "Create targets (all or none).", _items("MgmtTarget"),
        body=_items("MgmtTargetRequestBody"), errors=(404, 409)),
    ("GET", _M + "/targets/<cid>"): op("One target.", ref("MgmtTarget")),
    ("PUT", _M + "/targets/<cid>"): op(
        "Change a target's fields (those given and not null).", ref("MgmtTarget"),
        body=ref("MgmtTargetRequestBody")),
    ("DELETE", _M + "/targets/<cid>"): op("Delete a target and its actions."),
    ("GET", _M + "/targets/<cid>/attributes"): op(
        "The attributes the device reported (204: none).", ref("MgmtTargetAttributes"),
        also=(204,)),
    ("GET", _M + "/targets/<cid>/assignedDS"): op(
        "The distribution set assigned to the target (204: none).",
        ref("MgmtDistributionSet"), also=(204,)),
    ("GET", _M + "/targets/<cid>/assignedDs"): op(
        "Same as assignedDS (the spelling hawkbitgui uses).", ref("MgmtDistributionSet"),
        also=(204,)),
    ("GET", _M + "/targets/<cid>/installedDS"): op(
        "The distribution set installed on the target (204: none).",
        ref("MgmtDistributionSet"), also=(204,)),
    ("GET", _M + "/targets/<cid>/installedDs"): op(
        "Same as installedDS (the spelling hawkbitgui uses).", ref("MgmtDistributionSet"),
        also=(204,)),
    ("POST", _M + "/targets/<cid>/assignedDS"): op(
        "Assign a distribution set to the target (one object, or an array of one).",
        ref("MgmtTargetAssignmentResponseBody"),
        body=_one_or_many("MgmtDistributionSetAssignment"), query=("offline",),
        errors=(423, 429)),
    ("GET", _M + "/targets/<cid>/autoConfirm"): op(
        "The target's auto-confirmation state.", ref("MgmtTargetAutoConfirm")),
    ("POST", _M + "/targets/<cid>/autoConfirm/activate"): op(
        "Switch auto-confirmation on.",
        body=Body(ref("MgmtTargetAutoConfirmUpdate"), False, None), errors=(409,)),
    ("POST", _M + "/targets/<cid>/autoConfirm/deactivate"): op(
        "Switch auto-confirmation off."),
    ("GET", _M + "/targets/<cid>/metadata"): op(
        "The target's metadata.", ref("PagedListMgmtMetadata")),
    ("POST", _M + "/targets/<cid>/metadata"): op(
        "Add metadata entries (an existing key is a conflict).",
        body=_items("MgmtMetadata"), errors=(409, 429)),
    ("GET", _M + "/targets/<cid>/metadata/<key>"): op("One metadata entry.",
                                                      ref("MgmtMetadata")),
    ("PUT", _M + "/targets/<cid>/metadata/<key>"): op(
        "Set a metadata value (the key is created if needed).",
        body=ref("MgmtMetadataBodyPut"), errors=(429,)),
    ("DELETE", _M + "/targets/<cid>/metadata/<key>"): op("Delete a metadata entry."),

    # --- actions -----------------------------------------------------------------------
    ("GET", _M + "/targets/<cid>/actions"): op(
        "The target's actions, newest first.", ref("PagedListMgmtAction"), query=LIST),
    ("DELETE", _M + "/targets/<cid>/actions"): op(
        "Purge the target's history: all deletable actions but the newest `keepLast`, or "
        "the actions listed in the body.", body=Body(ref("MgmtActionIds"), False, None),
        query=("keepLast",), errors=(405,)),
    ("GET", _M + "/targets/<cid>/actions/<aid>"): op("One action of the target.",
                                                     ref("MgmtAction")),
    ("DELETE", _M + "/targets/<cid>/actions/<aid>"): op(
        "Cancel an action (the device confirms), or with force=true close a cancelling "
        "action at once.", query=("force",), errors=(405,)),
    ("PUT", _M + "/targets/<cid>/actions/<aid>"): op(
        "Switch an action to forced.", ref("MgmtAction"),
        body=ref("MgmtActionRequestBodyPut")),
    ("PUT", _M + "/targets/<cid>/actions/<aid>/confirmation"): op(
        "Confirm or deny an action waiting for confirmation, as the operator.",
        body=ref("MgmtActionConfirmationRequestBodyPut"), errors=(410, 429)),
    ("GET", _M + "/targets/<cid>/actions/<aid>/status"): op(
        "The action's status history, newest first.", ref("PagedListMgmtActionStatus"),
        query=PAGE),
    ("GET", _M + "/actions"): op(
        "All actions, newest first.", ref("PagedListMgmtAction"),
        query=LIST + ("representation",)),
    ("DELETE", _M + "/actions"): op(
        "Delete the deletable actions matching `q`, or exactly the actions listed in the "
        "body.", body=Body(ref("MgmtActionIds"), False, None), query=("q",),
        errors=(404, 405)),
    ("GET", _M + "/actions/<aid>"): op("One action.", ref("MgmtAction")),
    ("DELETE", _M + "/actions/<aid>"): op(
        "Delete an action, if its status allows it.", errors=(405,)),

    # --- types -------------------------------------------------------------------------
    ("GET", _M + "/softwaremoduletypes"): op(
        "List software module types.", ref("PagedListMgmtSoftwareModuleType"), query=LIST),
    ("GET", _M + "/softwaremoduletypes/<tid>"): op(
        "One software module type.", ref("MgmtSoftwareModuleType")),
    ("GET", _M + "/distributionsettypes"): op(
        "List distribution set types.", ref("PagedListMgmtDistributionSetType"), query=LIST),
    ("GET", _M + "/distributionsettypes/<tid>"): op(
        "One distribution set type.", ref("MgmtDistributionSetType")),
    ("GET", _M + "/distributionsettypes/<tid>/mandatorymoduletypes"): op(
        "The module types a set of this type must have.", _items("MgmtSoftwareModuleType")),
    ("GET", _M + "/distributionsettypes/<tid>/optionalmoduletypes"): op(
        "The module types a set of this type may have.", _items("MgmtSoftwareModuleType")),
    ("GET", _M + "/distributionsettypes/<tid>/mandatorymoduletypes/<mid>"): op(
        "One mandatory module type of the set type.", ref("MgmtSoftwareModuleType")),
    ("GET", _M + "/distributionsettypes/<tid>/optionalmoduletypes/<mid>"): op(
        "One optional module type of the set type.", ref("MgmtSoftwareModuleType")),

    # --- software modules and artifacts --------------------------------------------------
    ("POST", _M + "/softwaremodules"): op(
        "Create software modules (all or none).", _items("MgmtSoftwareModule"),
        body=_items("MgmtSoftwareModuleRequestBodyPost"), errors=(404, 409)),
    ("GET", _M + "/softwaremodules"): op(
        "List software modules.", ref("PagedListMgmtSoftwareModule"),
        query=LIST + ("soft_deleted_mode",)),
    ("GET", _M + "/softwaremodules/<sid>"): op("One software module.",
                                               ref("MgmtSoftwareModule")),
    ("PUT", _M + "/softwaremodules/<sid>"): op(
        "Change a module's description, vendor or lock.", ref("MgmtSoftwareModule"),
        body=ref("MgmtSoftwareModuleRequestBodyPut")),
    ("DELETE", _M + "/softwaremodules/<sid>"): op(
        "Delete a software module (soft delete while a set refers to it).", errors=(423,)),
    ("GET", _M + "/softwaremodules/<sid>/metadata"): op(
        "The module's metadata.", ref("PagedListMgmtMetadata")),
    ("POST", _M + "/softwaremodules/<sid>/metadata"): op(
        "Add or overwrite metadata entries.", body=_items("MgmtMetadata"), errors=(429,)),
    ("GET", _M + "/softwaremodules/<sid>/metadata/<key>"): op(
        "One metadata entry.", ref("MgmtMetadata")),
    ("PUT", _M + "/softwaremodules/<sid>/metadata/<key>"): op(
        "Set a metadata entry.", body=ref("MgmtMetadataBodyPut"), errors=(429,)),
    ("DELETE", _M + "/softwaremodules/<sid>/metadata/<key>"): op("Delete a metadata entry."),
    ("POST", _M + "/softwaremodules/<sid>/artifacts"): op(
        "Upload an artifact (multipart, part `file`), streamed to disk.", ref("MgmtArtifact"),
        body=_UPLOAD, query=("md5sum", "sha1sum", "sha256sum", "filename"),
        errors=(409, 413, 423, 429)),
    ("GET", _M + "/softwaremodules/<sid>/artifacts"): op(
        "The module's artifacts.", _items("MgmtArtifact"), query=("representation",)),
    ("GET", _M + "/softwaremodules/<sid>/artifacts/<aid>"): op("One artifact.",
                                                               ref("MgmtArtifact")),
    ("DELETE", _M + "/softwaremodules/<sid>/artifacts/<aid>"): op(
        "Delete an artifact.", errors=(423,)),
    ("GET", _M + "/softwaremodules/<sid>/artifacts/<aid>/download"): op(
        "Download an artifact (ranges supported).", FILE, errors=(410, 412, 416)),

    # --- distribution sets and assignments ---------------------------------------------
    ("POST", _M + "/distributionsets"): op(
        "Create distribution sets (all or none).", _items("MgmtDistributionSet"),
        body=_items("MgmtDistributionSetRequestBodyPost"), errors=(404, 409, 429)),
    ("GET", _M + "/distributionsets"): op(
        "List distribution sets.", ref("PagedListMgmtDistributionSet"),
        query=LIST + ("soft_deleted_mode",)),
    ("GET", _M + "/distributionsets/<did>"): op("One distribution set.",
                                                ref("MgmtDistributionSet")),
    ("PUT", _M + "/distributionsets/<did>"): op(
        "Change a set's name, version, description, lock or requiredMigrationStep.",
        ref("MgmtDistributionSet"), body=ref("MgmtDistributionSetRequestBodyPut"),
        errors=(409, 423)),
    ("DELETE", _M + "/distributionsets/<did>"): op(
        "Delete a distribution set (soft delete while actions or targets refer to it)."),
    ("GET", _M + "/distributionsets/<did>/assignedSM"): op(
        "The set's software modules.", ref("PagedListMgmtSoftwareModule"), query=PAGE),
    ("POST", _M + "/distributionsets/<did>/assignedSM"): op(
        "Add software modules to the set.", body=_items("MgmtId"), errors=(423, 429)),
    ("DELETE", _M + "/distributionsets/<did>/assignedSM/<sid>"): op(
        "Remove a software module from the set.", errors=(423,)),
    ("GET", _M + "/distributionsets/<did>/assignedTargets"): op(
        "The targets the set is assigned to.", ref("PagedListMgmtTarget"), query=LIST),
    ("POST", _M + "/distributionsets/<did>/assignedTargets"): op(
        "Assign the set to targets.", ref("MgmtTargetAssignmentResponseBody"),
        body=_items("MgmtTargetAssignmentRequestBody"), query=("offline",), errors=(429,)),
    ("GET", _M + "/distributionsets/<did>/installedTargets"): op(
        "The targets the set is installed on.", ref("PagedListMgmtTarget"), query=LIST),
    ("GET", _M + "/distributionsets/<did>/metadata"): op(
        "The set's metadata.", ref("PagedListMgmtMetadata")),
    ("POST", _M + "/distributionsets/<did>/metadata"): op(
        "Add or overwrite metadata entries.", body=_items("MgmtMetadata"), errors=(429,)),
    ("GET", _M + "/distributionsets/<did>/metadata/<key>"): op(
        "One metadata entry.", ref("MgmtMetadata")),
    ("PUT", _M + "/distributionsets/<did>/metadata/<key>"): op(
        "Set a metadata entry.", body=ref("MgmtMetadataBodyPut"), errors=(429,)),
    ("DELETE", _M + "/distributionsets/<did>/metadata/<key>"): op(
        "Delete a metadata entry."),

    # --- target filters and auto-assignment ---------------------------------------------
    ("GET", _M + "/targetfilters"): op(
        "List target filters (`representation=full`: with a link to each one's "
        "auto-assigned set).", ref("PagedListMgmtTargetFilterQuery"),
        query=LIST + ("representation",)),
    ("POST", _M + "/targetfilters"): op(
        "Create a target filter: a name and a target query (one object, not an array).",
        ref("MgmtTargetFilterQuery"), body=ref("MgmtTargetFilterQueryRequestBodyPost"),
        errors=(409,)),
    ("GET", _M + "/targetfilters/<fid>"): op("One target filter.",
                                             ref("MgmtTargetFilterQuery")),
    ("PUT", _M + "/targetfilters/<fid>"): op(
        "Change a target filter's name or query (those given).", ref("MgmtTargetFilterQuery"),
        body=ref("MgmtTargetFilterQueryRequestBodyPut"), errors=(409,)),
    ("DELETE", _M + "/targetfilters/<fid>"): op("Delete a target filter."),
    ("GET", _M + "/targetfilters/<fid>/autoAssignDS"): op(
        "The distribution set the filter auto-assigns (204: none).",
        ref("MgmtDistributionSet"), also=(204,)),
    ("POST", _M + "/targetfilters/<fid>/autoAssignDS"): op(
        "Auto-assign a distribution set to every target the filter matches that never had "
        "an action for it; the server does it in the background, now and as targets "
        "register or change.", ref("MgmtTargetFilterQuery"),
        body=ref("MgmtDistributionSetAutoAssignment")),
    ("DELETE", _M + "/targetfilters/<fid>/autoAssignDS"): op(
        "Stop the filter's auto-assignment (actions it created stay)."),
    ("GET", _M + "/distributionsets/<did>/autoAssignTargetFilters"): op(
        "The target filters that auto-assign the set.", ref("PagedListMgmtTargetFilterQuery"),
        query=LIST),

    # --- rollouts --------------------------------------------------------------------------
    ("GET", _M + "/rollouts"): op(
        "List rollouts that are not deleted (`representation=full`: with the counts per "
        "status and the verbs' links).", ref("PagedListMgmtRolloutResponseBody"),
        query=LIST + ("representation",)),
    ("POST", _M + "/rollouts"): op(
        "Create a rollout (one object): its targets are those the query matches, split into "
        "groups; it is ready (or waits for approval) at once. 400 when the groups leave "
        "targets out or no target matches; 429 beyond 500 groups or 20,000 targets in one.",
        ref("MgmtRolloutResponseBody"), body=ref("MgmtRolloutRestRequestBodyPost"),
        errors=(404, 409)),
    ("GET", _M + "/rollouts/<rid>"): op("One rollout, also when deleted but kept.",
                                        ref("MgmtRolloutResponseBody")),
    ("PUT", _M + "/rollouts/<rid>"): op(
        "Rename or describe a rollout.", ref("MgmtRolloutResponseBody"),
        body=ref("MgmtRolloutRestRequestBodyPut"), errors=(409,)),
    ("DELETE", _M + "/rollouts/<rid>"): op(
        "Delete a rollout: actions not started go; it is kept as deleted while other actions "
        "of it remain, else removed."),
    ("POST", _M + "/rollouts/<rid>/start"): op(
        "Start a ready rollout; its first group starts soon after (400 in another status)."),
    ("POST", _M + "/rollouts/<rid>/pause"): op("Pause a running rollout: no group starts "
                                               "until it is resumed."),
    ("POST", _M + "/rollouts/<rid>/resume"): op("Resume a paused rollout."),
    ("POST", _M + "/rollouts/<rid>/stop"): op(
        "Stop a rollout: actions not started yet are cancelled, running ones go on."),
    ("POST", _M + "/rollouts/<rid>/triggerNextGroup"): op(
        "Start the next group of a running rollout now."),
    ("POST", _M + "/rollouts/<rid>/approve"): op(
        "Approve a rollout waiting for approval (rollout.approval.enabled).",
        query=("remark",)),
    ("POST", _M + "/rollouts/<rid>/deny"): op("Deny a rollout waiting for approval.",
                                              query=("remark",)),
    ("POST", _M + "/rollouts/<rid>/retry"): op(
        "A new rollout, `<name>_retry`, for the targets whose action of this finished or "
        "stopped rollout failed.", ref("MgmtRolloutResponseBody"), errors=(409,)),
    ("GET", _M + "/rollouts/<rid>/deploygroups"): op(
        "The rollout's groups.", ref("PagedListMgmtRolloutGroupResponseBody"), query=LIST),
    ("GET", _M + "/rollouts/<rid>/deploygroups/<gid>"): op(
        "One group of the rollout.", ref("MgmtRolloutGroupResponseBody")),
    ("GET", _M + "/rollouts/<rid>/deploygroups/<gid>/targets"): op(
        "The group's targets, in the order they joined it.", ref("PagedListMgmtTarget"),
        query=LIST),

    # --- system configuration and the user ----------------------------------------------
    ("GET", _M + "/system/configs"): op(
        "Every tenant configuration key with its value.",
        ref("MgmtSystemTenantConfigurationValues")),
    ("PUT", _M + "/system/configs"): op(
        "Set several keys (all or none): an object of key and value.",
        body=schemas.obj({}, additionalProperties={"nullable": True})),
    ("GET", _M + "/system/configs/<key>"): op(
        "One key's value (400 for an unknown key, as hawkBit).",
        ref("MgmtSystemTenantConfigurationValue"), errors=(400,)),
    ("PUT", _M + "/system/configs/<key>"): op(
        "Set one key (400 for an unknown key).",
        body=ref("MgmtSystemTenantConfigurationValueRequest")),
    ("DELETE", _M + "/system/configs/<key>"): op(
        "Forget a key's value: the server's default applies again."),
    ("GET", _M + "/userinfo"): op("The logged-in operator.", ref("MgmtUserInfo")),

    # --- tags, target types, and writes on module and set types ---------------------------
    ("GET", _M + "/targettags"): op("List target tags.", ref("PagedListMgmtTag"), query=LIST),
    ("POST", _M + "/targettags"): op(
        "Create target tags (all or none).", _items("MgmtTag"),
        body=_items("MgmtTagRequestBodyPut"), errors=(409,)),
    ("GET", _M + "/targettags/<tag>"): op("One target tag.", ref("MgmtTag")),
    ("PUT", _M + "/targettags/<tag>"): op(
        "Change a target tag's fields (those given and not null).", ref("MgmtTag"),
        body=ref("MgmtTagRequestBodyPut"), errors=(409,)),
    ("DELETE", _M + "/targettags/<tag>"): op("Delete a target tag; its targets lose it."),
    ("GET", _M + "/targettags/<tag>/assigned"): op(
        "The targets with the tag.", ref("PagedListMgmtTarget"), query=LIST),
    ("POST", _M + "/targettags/<tag>/assigned"): op(
        "Tag targets: controller ids, or objects with a controllerId (older hawkBit).",
        body=ref("MgmtTargetTagAssignment"), query=("onNotFoundPolicy",)),
    ("PUT", _M + "/targettags/<tag>/assigned"): op(
        "Same as POST (the method hawkBit 0.6 to 1.0 used).",
        body=ref("MgmtTargetTagAssignment"), query=("onNotFoundPolicy",)),
    ("DELETE", _M + "/targettags/<tag>/assigned"): op(
        "Untag targets.", body=ref("MgmtTargetTagAssignment"), query=("onNotFoundPolicy",)),
    ("POST", _M + "/targettags/<tag>/assigned/<cid>"): op("Tag one target."),
    ("DELETE", _M + "/targettags/<tag>/assigned/<cid>"): op("Untag one target."),
    ("GET", _M + "/targets/<cid>/tags"): op("The target's tags.", _items("MgmtTag")),
    ("GET", _M + "/distributionsettags"): op(
        "List distribution set tags.", ref("PagedListMgmtTag"), query=LIST),
    ("POST", _M + "/distributionsettags"): op(
        "Create distribution set tags (all or none).", _items("MgmtTag"),
        body=_items("MgmtTagRequestBodyPut"), errors=(409,)),
    ("GET", _M + "/distributionsettags/<tag>"): op("One distribution set tag.", ref("MgmtTag")),
    ("PUT", _M + "/distributionsettags/<tag>"): op(
        "Change a distribution set tag's fields (those given and not null).", ref("MgmtTag"),
        body=ref("MgmtTagRequestBodyPut"), errors=(409,)),
    ("DELETE", _M + "/distributionsettags/<tag>"): op(
        "Delete a distribution set tag; its sets lose it."),
    ("GET", _M + "/distributionsettags/<tag>/assigned"): op(
        "The distribution sets with the tag (those marked deleted too).",
        ref("PagedListMgmtDistributionSet"), query=LIST),
    ("POST", _M + "/distributionsettags/<tag>/assigned"): op(
        "Tag distribution sets: ids, or objects with a distributionSetId (older hawkBit); "
        "404 and no change when one is unknown.", body=ref("MgmtDistributionSetTagAssignment")),
    ("DELETE", _M + "/distributionsettags/<tag>/assigned"): op(
        "Untag distribution sets.", body=ref("MgmtDistributionSetTagAssignment")),
    ("POST", _M + "/distributionsettags/<tag>/assigned/<did>"): op("Tag one distribution set."),
    ("DELETE", _M + "/distributionsettags/<tag>/assigned/<did>"): op(
        "Untag one distribution set."),
    ("GET", _M + "/targettypes"): op("List target types.", ref("PagedListMgmtTargetType"),
                                     query=LIST),
    ("POST", _M + "/targettypes"): op(
        "Create target types (all or none); key or name is required, each defaults to the "
        "other.", _items("MgmtTargetType"), body=_items("MgmtTargetTypeRequestBodyPost"),
        errors=(404, 409, 429)),
    ("GET", _M + "/targettypes/<tid>"): op("One target type.", ref("MgmtTargetType")),
    ("PUT", _M + "/targettypes/<tid>"): op(
        "Change a target type's name, description or colour.", ref("MgmtTargetType"),
        body=ref("MgmtTargetTypeRequestBodyPut"), errors=(409,)),
    ("DELETE", _M + "/targettypes/<tid>"): op(
        "Delete a target type that no target has (409 otherwise).", errors=(409,)),
    ("GET", _M + "/targettypes/<tid>/compatibledistributionsettypes"): op(
        "The distribution set types the type's targets can install.",
        _items("MgmtDistributionSetType")),
    ("POST", _M + "/targettypes/<tid>/compatibledistributionsettypes"): op(
        "Add compatible distribution set types.", body=_items("MgmtId"), errors=(429,)),
    ("DELETE", _M + "/targettypes/<tid>/compatibledistributionsettypes/<dtid>"): op(
        "Remove a compatible distribution set type."),
    ("POST", _M + "/targets/<cid>/targettype"): op(
        "Give the target a type.", body=ref("MgmtId")),
    ("DELETE", _M + "/targets/<cid>/targettype"): op("Take the target's type away."),
    ("POST", _M + "/softwaremoduletypes"): op(
        "Create software module types (all or none).", _items("MgmtSoftwareModuleType"),
        body=_items("MgmtSoftwareModuleTypeRequestBodyPost"), errors=(409,)),
    ("PUT", _M + "/softwaremoduletypes/<tid>"): op(
        "Change a module type's description or colour.", ref("MgmtSoftwareModuleType"),
        body=ref("MgmtTypeRequestBodyPut")),
    ("DELETE", _M + "/softwaremoduletypes/<tid>"): op(
        "Delete a module type (only marked deleted while modules or set types use it)."),
    ("POST", _M + "/distributionsettypes"): op(
        "Create distribution set types with their module types (all or none).",
        _items("MgmtDistributionSetType"),
        body=_items("MgmtDistributionSetTypeRequestBodyPost"), errors=(404, 409, 429)),
    ("PUT", _M + "/distributionsettypes/<tid>"): op(
        "Change a set type's description or colour.", ref("MgmtDistributionSetType"),
        body=ref("MgmtTypeRequestBodyPut")),
    ("DELETE", _M + "/distributionsettypes/<tid>"): op(
        "Delete a set type (only marked deleted while sets have it); target types lose it."),
    ("POST", _M + "/distributionsettypes/<tid>/mandatorymoduletypes"): op(
        "Require module types (403 once sets of the type exist).",
        body=_one_or_many("MgmtId"), errors=(403, 429)),
    ("POST", _M + "/distributionsettypes/<tid>/optionalmoduletypes"): op(
        "Allow module types (403 once sets of the type exist).",
        body=_one_or_many("MgmtId"), errors=(403, 429)),
    ("DELETE", _M + "/distributionsettypes/<tid>/mandatorymoduletypes/<mid>"): op(
        "Take a module type off the set type (403 once sets of the type exist).",
        errors=(403,)),
    ("DELETE", _M + "/distributionsettypes/<tid>/optionalmoduletypes/<mid>"): op(
        "Take a module type off the set type (403 once sets of the type exist).",
        errors=(403,)),

    # --- the server ----------------------------------------------------------------------
    ("GET", "/"): op("Readiness, without credentials.", ref("Readiness"), status=200),
    ("HEAD", "/"): op("Readiness, without credentials (`curl --head --fail`).", status=200),
    ("GET", "/v3/api-docs"): op("This description (OpenAPI 3).", ref("OpenApiDocument"),
                                status=200),
    ("GET", "/actuator/health"): op(
        "Health, without credentials, at Spring Boot's path that hawkBit serves: UP, or DOWN "
        "(503) when the database does not answer.", ref("Health"), errors=(503,), status=200),
    ("GET", "/actuator/health/liveness"): op(
        "Liveness, without credentials: UP while the server answers at all.", ref("Health"),
        status=200),
    ("GET", "/actuator/health/readiness"): op(
        "Readiness, without credentials: UP, or DOWN (503) when the database does not answer.",
        ref("Health"), errors=(503,), status=200),
    ("GET", "/metrics"): op(
        "The server's figures in Prometheus's text format 0.0.4: requests by route and status "
        "class with their latency, queue depth, targets, actions and artifacts. Operators "
        "only, unless [server] metrics_open.", PROMETHEUS_TEXT, status=200, operator=True),
}


###############################################################################
# Document ####################################################################
###############################################################################

TAGS = (
    ("Device API", "DDI: what devices call, under /{tenant}/controller/v1/{controllerId}."),
    ("Targets", "Devices as the operator sees them."),
    ("Actions", "Deployments and cancellations of distribution sets on targets."),
    ("Types", "Software module types and distribution set types."),
    ("Software modules", "Software modules, their metadata and artifacts."),
    ("Distribution sets", "Distribution sets, their modules, metadata and assignments."),
    ("Target filters", "Saved target queries, and the sets they auto-assign."),
    ("Rollouts", "Staged rollouts of a distribution set, group by group."),
    ("System configuration", "Tenant configuration keys."),
    ("Tags", "Target tags and distribution set tags."),
    ("Target types", "Kinds of targets and the distribution set types they can install."),
    ("Server", "Readiness and health, metrics, the operator's user info and this "
               "description."),
)

_TAG_OF_SEGMENT = {
    "targets": "Targets", "actions": "Actions", "softwaremoduletypes": "Types",
    "distributionsettypes": "Types", "softwaremodules": "Software modules",
    "distributionsets": "Distribution sets", "system": "System configuration",
    "targettags": "Tags", "distributionsettags": "Tags", "targettypes": "Target types",
    "targetfilters": "Target filters", "rollouts": "Rollouts",
}

DESCRIPTION = """\
ddi-lite speaks two of Eclipse hawkBit's APIs: the **Direct Device Integration API** (DDI v1),
which devices poll, and the **Management API** (`/rest/v1`), which operators and their tools
call. Devices authenticate with a target token or a gateway token in `Authorization` (or a
TLS proxy vouches for them); operators with HTTP Basic.

Errors carry hawkBit's error body (`ExceptionInfo`) when the rules refuse a request, and
Spring's framework body (`FrameworkError`) when the request fails before them (unknown path,
wrong method, media type or parameter type, missing credentials). Where hawkBit answers an
error with no body at all, so does ddi-lite: such responses are marked `x-empty-allowed`.

Request bodies may carry fields this description does not list; they are ignored."""


def _api_of(rule):
    if rule.startswith(DEVICE_ROOT):
        return DEVICE
    if rule.startswith(MANAGEMENT_ROOT + "/"):
        return MANAGEMENT
    return SERVER


def _tag_of(rule, api):
    if api == DEVICE:
        return "Device API"
    if api == MANAGEMENT and rule.startswith(MANAGEMENT_ROOT + "/targets/") \
            and "/actions" in rule:
        return "Actions"
    if api == MANAGEMENT:
        return _TAG_OF_SEGMENT.get(rule.split("/")[3], "Server")
    return "Server"


def _operation_id(method, path, api):
    words = [word for word in re.split(r"[/{}\-.]", path) if word]
    if api == DEVICE:
        words = ["ddi"] + words[4:]
    elif api == MANAGEMENT:
        words = words[2:]
    name = "".join(word[:1].upper() + word[1:] for word in words) or "Root"
    return method.lower() + name


def _errors(api, operation, parameters):
    """The error statuses of an operation: its own, and those every route of its API can
    answer (401; 400 and 415 with a body; 400 with a query or an integer in the path; for
    operators 406, 429 and, on an entity's path, 404)."""
    statuses = set(operation.errors)
    if operation.operator:
        statuses.update((401, 429))  # 429: wrong logins are rationed
    if api == SERVER:
        return statuses
    statuses.add(401)
    if operation.body is not None:
        statuses.update((400, 415))
    if operation.query or any(p["schema"]["type"] == "integer" for p in parameters):
        statuses.add(400)
    if api == MANAGEMENT:
        statuses.update((406, 429))  # 429: wrong logins are rationed
        if len(parameters) > 0:
            statuses.add(404)
    elif operation.json_get:
        statuses.add(406)
    return statuses


def _success(operation, status, api):
    """The success responses of an operation: the table's status (or the operation's own),
    with the body's schema in every media type the API answers in."""
    status = status or operation.status or 200
    if operation.answer in (FILE, FILE_OR_MD5SUM):
        return _file_answers(md5sum=operation.answer == FILE_OR_MD5SUM)
    if operation.answer == PROMETHEUS_TEXT:
        return {str(status): {"description": "OK.", "content": {
            "text/plain": {"schema": schemas.string("# HELP, # TYPE and sample lines.")}}}}
    answers = {}
    if operation.answer is None or status == 204:
        answers[str(status)] = {"description": "Done (no body)."}
    else:
        answer = {"description": "OK.",
                  "content": _content(operation.answer, RESPONSE_MEDIA[api])}
        if operation.json_get:
            answer["headers"] = _ETAG
        answers[str(status)] = answer
    for other in operation.also:
        answers[str(other)] = {"description": "Done (no body)." if other != 204
                               else "Nothing to show (no body)."}
    if operation.json_get:
        answers["304"] = {"description": "Not modified: If-None-Match matched the ETag.",
                          "headers": _ETAG}
    return answers


def _request_body(body, api):
    media = body.media or REQUEST_MEDIA[api]
    return {"required": body.required, "content": _content(body.schema, media)}


def _operation(method, rule, status):
    """The OpenAPI path and operation object of one route."""
    api = _api_of(rule)
    path, parameters = openapi_path(rule)
    described = OPERATIONS.get((method, rule))
    result = {"tags": [_tag_of(rule, api)], "operationId": _operation_id(method, path, api),
              "security": SECURITY[MANAGEMENT if described and described.operator else api]}
    if described is None:
        result.update(summary=UNDESCRIBED, parameters=parameters,
                      responses={"default": {"description": "Not described yet."}})
        return path, result
    query = [{"$ref": "#/components/parameters/" + name} for name in described.query]
    result["summary"] = described.summary
    if parameters or query:
        result["parameters"] = parameters + query
    if described.body is not None:
        result["requestBody"] = _request_body(described.body, api)
    responses = _success(described, status, api)
    for error in sorted(_errors(api, described, parameters)):
        responses[str(error)] = _error_ref(error, api)
    result["responses"] = responses
    return path, result


def version():
    """The installed distribution's version (ddi-lite --version prints it too)."""
    try:
        return importlib.metadata.version("ddi-lite")
    except importlib.metadata.PackageNotFoundError:
        return "unreleased"  # run from a source tree that was never installed


def document(routes):
    """The OpenAPI document of `routes`: `(method, rule, status)` rows of the route table."""
    paths = {}
    for method, rule, status in routes:
        path, operation = _operation(method.upper(), rule, status)
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ddi-lite: hawkBit DDI and Management API", "version": version(),
                 "description": DESCRIPTION,
                 "license": {"name": "EPL-2.0",
                             "url": "https://www.eclipse.org/legal/epl-2.0/"}},
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {"schemas": schemas.SCHEMAS, "responses": ERROR_RESPONSES,
                       "parameters": QUERY_PARAMETERS, "securitySchemes": SECURITY_SCHEMES},
    }
