"""The JSON schemas of the documents both APIs exchange, as OpenAPI 3.0 schema objects.

Component names are hawkBit's (`DdiDeploymentBase`, `MgmtTarget`, `ExceptionInfo`, ...), so
that this description can be read side by side with hawkBit's published one. The schemas say
what ddi-lite sends and what it reads: response fields that are always present are `required`;
fields hawkBit leaves out when empty are optional. Requests are described by their canonical
types; the server is more lenient than that (unknown fields are ignored, and the Management
API coerces `"12"` to 12 as hawkBit's JSON mapper does), which a description cannot express.

The enum values of the device's reports (`execution`, `finished`, `confirmation`) are the
wire vocabulary of `storage.transitions`; tests/test_openapi.py keeps the two equal, since
this package does not import the server.
"""

EXECUTIONS = ("closed", "proceeding", "canceled", "scheduled", "rejected", "resumed",
              "downloaded", "download")
FINISHED_VALUES = ("success", "failure", "none")
CONFIRMATIONS = ("confirmed", "denied")
FORCE_TYPES = ("forced", "soft", "timeforced", "downloadonly")
UPDATE_STATUSES = ("unknown", "in_sync", "pending", "error", "registered")


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def obj(properties, required=(), description=None, **extra):
    """An object schema; unknown properties are allowed (clients may send, and later
    server versions may add, more)."""
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def array(items, description=None):
    schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    return schema


def string(description=None, **extra):
    schema = {"type": "string"}
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def integer(description=None, fmt="int64", **extra):
    schema = {"type": "integer", "format": fmt}
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def boolean(description=None):
    schema = {"type": "boolean"}
    if description:
        schema["description"] = description
    return schema


def enum(values, description=None):
    return string(description, enum=list(values))


def timestamp(description):
    return integer(description + " (epoch milliseconds, UTC)")


def links(*rels, description=None):
    """A HAL `_links` object; `rels` are the relations that can appear (none is required
    unless the caller says so)."""
    return obj({rel: ref("Link") for rel in rels},
               description=description or "Hypermedia links (HAL).",
               additionalProperties=ref("Link"))


AUDIT_FIELDS = {
    "createdBy": string("Who created the entity: an operator, or a device's controller id."),
    "createdAt": timestamp("When the entity was created"),
    "lastModifiedBy": string("Who changed the entity last."),
    "lastModifiedAt": timestamp("When the entity was changed last"),
}


def audited(properties, required=(), description=None):
    """An entity with hawkBit's audit fields."""
    return obj(dict(AUDIT_FIELDS, **properties), required, description)


def paged(item):
    return obj({"content": array(ref(item), "This page of the collection."),
                "total": integer("How many entries match, over all pages."),
                "size": integer("How many entries this page holds.", fmt="int32")},
               required=("content", "total", "size"),
               description="One page of a collection (`offset`, `limit`).")


###############################################################################
# Shared #######################################################################
###############################################################################

SHARED = {
    "Link": obj({"href": string("Absolute URL, built from the request (or [server] "
                                "public_url).", format="uri"),
                 "name": string("A label for the linked entity.")},
                required=("href",)),
    "ExceptionInfo": obj(
        {"exceptionClass": string("The hawkBit exception this error stands for.",
                                  example="org.eclipse.hawkbit.repository.exception."
                                          "EntityNotFoundException"),
         "errorCode": string("Stable error key; the field a client should branch on.",
                             example="hawkbit.server.error.repo.entityNotFound"),
         "message": string("Human-readable text."),
         "info": obj({}, description="Structured details, e.g. the type and id of a missing "
                                     "entity.")},
        required=("exceptionClass", "errorCode", "message"),
        description="hawkBit's error body, for errors found by the rules."),
    "FrameworkError": obj(
        {"timestamp": string("When the error happened.", format="date-time"),
         "status": integer("The HTTP status.", fmt="int32"),
         "error": string("The HTTP reason phrase.")},
        required=("timestamp", "status", "error"),
        description="Spring's error body, for errors found before the rules: an unknown path, "
                    "a wrong method, media type or parameter type, missing credentials."),
}


###############################################################################
# Device API (DDI) #############################################################
###############################################################################

_HANDLING = ("skip", "attempt", "forced")

DDI = {
    "DdiControllerBase": obj(
        {"config": obj({"polling": obj(
            {"sleep": string("How long the device should wait before its next poll.",
                             pattern=r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9]$", example="00:05:00")},
            required=("sleep",))}, required=("polling",)),
         "_links": links("deploymentBase", "confirmationBase", "cancelAction", "installedBase",
                         "configData",
                         description="What the device should do next; absent when nothing.")},
        required=("config",),
        description="The answer to a poll."),
    "DdiConfigData": obj(
        {"data": obj({}, description="Attributes of the device, e.g. hardware revision.",
                     additionalProperties=string(nullable=True, maxLength=128), minProperties=1),
         "mode": enum(("merge", "replace", "remove"),
                      "How `data` changes the stored attributes (default merge).")},
        required=("data",),
        description="Attributes the device reports (configData)."),
    "DdiArtifact": obj(
        {"filename": string(),
         "hashes": obj({"sha1": string(), "md5": string(), "sha256": string()},
                       required=("sha1", "md5", "sha256")),
         "size": integer("Bytes."),
         "_links": links("download", "download-http", "md5sum", "md5sum-http")},
        required=("filename", "hashes", "size", "_links")),
    "DdiMetadata": obj({"key": string(), "value": string(nullable=True)}, required=("key",)),
    "DdiChunk": obj(
        {"part": string("The module's type: os, bApp (application), jvm (runtime), or a "
                        "custom type key."),
         "version": string(),
         "name": string(),
         "encrypted": boolean(),
         "artifacts": array(ref("DdiArtifact")),
         "metadata": array(ref("DdiMetadata"), "The module's metadata marked target-visible.")},
        required=("part", "version", "name", "artifacts"),
        description="One software module of the deployment."),
    "DdiDeployment": obj(
        {"download": enum(_HANDLING), "update": enum(_HANDLING),
         "maintenanceWindow": enum(("available", "unavailable")),
         "chunks": array(ref("DdiChunk"))},
        required=("download", "update", "chunks")),
    "DdiActionHistory": obj(
        {"status": string("The action's status."),
         "messages": array(string(), "The newest messages the device reported.")},
        required=("status", "messages")),
    "DdiDeploymentBase": obj(
        {"id": string("The action id."),
         "deployment": ref("DdiDeployment"),
         "actionHistory": ref("DdiActionHistory")},
        required=("id", "deployment"),
        description="An action to install (deploymentBase), or the installed one "
                    "(installedBase)."),
    "DdiConfirmationBaseAction": obj(
        {"id": string("The action id."),
         "confirmation": ref("DdiDeployment"),
         "actionHistory": ref("DdiActionHistory")},
        required=("id", "confirmation"),
        description="An action that waits for the device's (user's) confirmation."),
    "DdiCancel": obj(
        {"id": string("The action id."),
         "cancelAction": obj({"stopId": string("The action to stop.")},
                             required=("stopId",))},
        required=("id", "cancelAction")),
    "DdiActionFeedback": obj(
        {"timestamp": timestamp("When the device made the report"),
         "status": obj(
             {"execution": enum(EXECUTIONS),
              "result": obj(
                  {"finished": enum(FINISHED_VALUES),
                   "progress": obj({"cnt": integer(fmt="int32"), "of": integer(fmt="int32")})},
                  required=("finished",)),
              "code": integer("A device-specific result code.", fmt="int32"),
              "details": array(string(), "Messages for the action's history.")},
             required=("execution", "result"))},
        required=("status",),
        description="A report on an action (deployment or cancellation)."),
    "DdiConfirmationFeedback": obj(
        {"confirmation": enum(CONFIRMATIONS),
         "code": integer(fmt="int32"),
         "details": array(string())},
        required=("confirmation",)),
    "DdiActivateAutoConfirmation": obj(
        {"initiator": string("Who switched auto-confirmation on.", maxLength=64),
         "remark": string(maxLength=512)}),
    "DdiAutoConfirmationState": obj(
        {"active": boolean(), "initiator": string(), "remark": string(),
         "activatedAt": timestamp("When it was switched on (0 when off)")},
        required=("active", "activatedAt")),
    "DdiConfirmationBase": obj(
        {"autoConfirm": ref("DdiAutoConfirmationState"),
         "_links": links("activateAutoConfirm", "deactivateAutoConfirm", "confirmationBase")},
        required=("autoConfirm", "_links")),
    "DdiAssignedVersion": obj(
        {"name": string("The distribution set's name."),
         "version": string("The distribution set's version.")},
        required=("name", "version"),
        description="The distribution set the device runs."),
}


###############################################################################
# Management API ##############################################################
###############################################################################

_MAINTENANCE_WINDOW = {
    "schedule": string("Cron expression (Quartz syntax) of the window's starts.",
                       example="0 0 2 ? * *"),
    "duration": string("HH:MM:SS", example="01:00:00"),
    "timezone": string("Offset from UTC", example="+00:00"),
}



def assignment(id_schema):
    """One assignment: of a set to the target `id` names, or of the set `id` to a target."""
    return obj({"id": id_schema,
                "type": enum(FORCE_TYPES, "Default forced."),
                "forcetime": timestamp("When a timeforced action becomes forced"),
                "weight": integer(fmt="int32", minimum=0, maximum=1000),
                "confirmationRequired": boolean(),
                "maintenanceWindow": obj(_MAINTENANCE_WINDOW)},
               required=("id",))


MGMT = {
    "MgmtPollStatus": obj(
        {"lastRequestAt": timestamp("The last poll"),
         "nextExpectedRequestAt": timestamp("When the next poll is due"),
         "overdue": boolean()},
        required=("lastRequestAt", "nextExpectedRequestAt", "overdue")),
    "MgmtTarget": audited(
        {"controllerId": string(), "name": string(), "description": string(),
         "updateStatus": enum(UPDATE_STATUSES),
         "lastControllerRequestAt": timestamp("The last poll"),
         "installedAt": timestamp("When the installed set was installed"),
         "ipAddress": string(), "address": string(),
         "pollStatus": ref("MgmtPollStatus"),
         "securityToken": string("The target token (Authorization: TargetToken ...)."),
         "requestAttributes": boolean("Whether the device is asked for its attributes."),
         "group": string(),
         "targetType": integer("The target type's id (absent: no type)."),
         "targetTypeName": string("The target type's name."),
         "autoConfirmActive": boolean("Present when the confirmation flow is on."),
         "_links": links("self", "assignedDS", "installedDS", "attributes", "actions",
                         "metadata", "targetType", "autoConfirm")},
        required=("controllerId", "updateStatus", "securityToken", "requestAttributes",
                  "_links")),
    "MgmtTargetRequestBody": obj(
        {"controllerId": string(minLength=1, maxLength=256),
         "name": string(maxLength=128), "description": string(maxLength=512),
         "securityToken": string(maxLength=128), "address": string(maxLength=512),
         "group": string(maxLength=256),
         "requestAttributes": boolean("Ask the device for its attributes (PUT; true only)."),
         "targetType": integer("A target type's id (404 when unknown); -1 on PUT takes "
                               "the type away.")},
        description="A target to create (controllerId required) or the fields to change."),
    "MgmtTargetAttributes": obj({}, additionalProperties=string(),
                                description="The attributes the device reported."),
    "MgmtTargetAutoConfirm": obj(
        {"active": boolean(), "initiator": string(), "remark": string(),
         "activatedAt": timestamp("When it was switched on"),
         "_links": links("activate", "deactivate")},
        required=("active", "_links")),
    "MgmtTargetAutoConfirmUpdate": obj({"initiator": string(), "remark": string()}),
    "MgmtMetadata": obj(
        {"key": string(maxLength=128), "value": string(maxLength=4000),
         "targetVisible": boolean("Software modules: shown to the device in its deployment.")},
        required=("key",)),
    "MgmtMetadataBodyPut": obj(
        {"value": string(maxLength=4000), "targetVisible": boolean()}),
    "MgmtMaintenanceWindow": obj(
        dict(_MAINTENANCE_WINDOW, nextStartAt=timestamp("The next start")),
        required=("schedule", "duration", "timezone")),
    "MgmtAction": audited(
        {"id": integer(), "type": enum(("update", "cancel")), "active": boolean(),
         "status": string("The action's status, lower case (running, finished, ...)."),
         "detailStatus": string(),
         "forceType": enum(FORCE_TYPES),
         "forceTime": timestamp("When a timeforced action becomes forced"),
         "weight": integer(fmt="int32"),
         "lastStatusCode": integer(fmt="int32"),
         "maintenanceWindow": ref("MgmtMaintenanceWindow"),
         "rollout": integer("The rollout that created the action, if one did."),
         "rolloutName": string("That rollout's name."),
         "_links": links("self", "target", "distributionset", "status", "canceledaction",
                         "rollout")},
        required=("id", "type", "active", "status", "forceType", "_links")),
    "MgmtActionStatus": obj(
        {"id": integer(), "type": string("The entry's status, lower case."),
         "messages": array(string()),
         "reportedAt": timestamp("When the server recorded the entry"),
         "timestamp": timestamp("When the device says it happened"),
         "code": integer(fmt="int32")},
        required=("id", "type", "messages"),
        description="One entry of an action's status history."),
    "MgmtActionRequestBodyPut": obj(
        {"forceType": enum(FORCE_TYPES, "Only forced is accepted.")}, required=("forceType",)),
    "MgmtActionConfirmationRequestBodyPut": obj(
        {"confirmation": enum(CONFIRMATIONS), "code": integer(fmt="int32"),
         "details": array(string())},
        required=("confirmation",)),
    "MgmtActionIds": array(integer(), "Action ids."),
    "MgmtSoftwareModuleType": audited(
        {"id": integer(), "key": string(), "name": string(), "description": string(),
         "colour": string(), "maxAssignments": integer(fmt="int32"),
         "minArtifacts": integer(fmt="int32"), "deleted": boolean(),
         "_links": links("self")},
        required=("id", "key", "name", "deleted", "_links")),
    "MgmtDistributionSetType": audited(
        {"id": integer(), "key": string(), "name": string(), "description": string(),
         "colour": string(), "deleted": boolean(),
         "_links": links("self", "mandatorymodules", "optionalmodules")},
        required=("id", "key", "name", "deleted", "_links")),
    "MgmtSoftwareModule": audited(
        {"id": integer(), "name": string(), "description": string(), "version": string(),
         "type": string("The module type's key."), "typeName": string(),
         "vendor": string(), "encrypted": boolean(), "locked": boolean(),
         "deleted": boolean(), "complete": boolean(),
         "_links": links("self", "artifacts", "type", "metadata")},
        required=("id", "name", "version", "type", "locked", "deleted", "_links")),
    "MgmtSoftwareModuleRequestBodyPost": obj(
        {"type": string("A module type key (os, application, ...).", minLength=1),
         "name": string(minLength=1, maxLength=128),
         "version": string(minLength=1, maxLength=128),
         "description": string(maxLength=512), "vendor": string(maxLength=256),
         "encrypted": boolean("Not supported: true is refused.")},
        required=("type", "name", "version")),
    "MgmtSoftwareModuleRequestBodyPut": obj(
        {"description": string(maxLength=512), "vendor": string(maxLength=256),
         "locked": boolean()}),
    "MgmtArtifact": audited(
        {"id": integer(),
         "hashes": obj({"sha1": string(), "md5": string(), "sha256": string()},
                       required=("sha1", "md5", "sha256")),
         "providedFilename": string(), "size": integer("Bytes."),
         "_links": links("self", "download")},
        required=("id", "hashes", "providedFilename", "size", "_links")),
    "MgmtArtifactUpload": obj(
        {"file": string("The artifact's bytes.", format="binary"),
         "filename": string("Name to store (default: the file part's name)."),
         "md5sum": string(), "sha1sum": string(), "sha256sum": string()},
        required=("file",),
        description="Optional checksums are checked against the received bytes."),
    "MgmtDistributionSet": audited(
        {"id": integer(), "name": string(), "description": string(), "version": string(),
         "type": string("The set type's key."), "typeName": string(),
         "locked": boolean(), "deleted": boolean(), "valid": boolean(),
         "complete": boolean(), "requiredMigrationStep": boolean(),
         "modules": array(ref("MgmtSoftwareModule")),
         "_links": links("self", "modules", "type", "metadata")},
        required=("id", "name", "version", "type", "locked", "deleted", "modules", "_links")),
    "MgmtId": obj({"id": integer()}, required=("id",)),
    "MgmtDistributionSetRequestBodyPost": obj(
        {"name": string(minLength=1, maxLength=128),
         "version": string(minLength=1, maxLength=128),
         "type": string("A set type key (default: the tenant's default.ds.type)."),
         "description": string(maxLength=512),
         "modules": array(ref("MgmtId"), "Software modules by id."),
         "requiredMigrationStep": boolean()},
        required=("name", "version")),
    "MgmtDistributionSetRequestBodyPut": obj(
        {"name": string(maxLength=128), "version": string(maxLength=128),
         "description": string(maxLength=512), "locked": boolean(),
         "requiredMigrationStep": boolean()}),
    "MgmtTargetAssignmentRequestBody": assignment(string("A target's controller id.")),
    "MgmtDistributionSetAssignment": assignment(integer("A distribution set id.")),
    "MgmtTargetAssignmentResponseBody": obj(
        {"assigned": integer(fmt="int32"), "alreadyAssigned": integer(fmt="int32"),
         "total": integer(fmt="int32"),
         "assignedActions": array(obj({"id": integer(), "_links": links("self")},
                                      required=("id", "_links")))},
        required=("assigned", "alreadyAssigned", "total", "assignedActions")),
    "MgmtSystemTenantConfigurationValue": obj(
        dict(AUDIT_FIELDS,
             value={"nullable": True, "description": "The value: text, number or boolean."},
             **{"global": boolean("True while the server's default applies."),
                "_links": links("self")}),
        required=("value", "global", "_links")),
    "MgmtSystemTenantConfigurationValues": obj(
        {}, additionalProperties=ref("MgmtSystemTenantConfigurationValue"),
        description="Configuration keys and their values."),
    "MgmtSystemTenantConfigurationValueRequest": obj(
        {"value": {"nullable": True, "description": "Text, number or boolean."}},
        required=("value",)),
    "MgmtUserInfo": obj(
        {"tenant": string(), "username": string(), "permissions": array(string())},
        required=("tenant", "username", "permissions")),
}

MGMT.update({"PagedList" + name: paged(name) for name in (
    "MgmtTarget", "MgmtAction", "MgmtActionStatus", "MgmtMetadata", "MgmtSoftwareModuleType",
    "MgmtDistributionSetType", "MgmtSoftwareModule", "MgmtDistributionSet")})

_LOOK_AND_FEEL = {"description": string(maxLength=512),
                  "colour": string("A colour for user interfaces, free text.", maxLength=16)}
_TYPE_IDS = array(ref("MgmtId"), "Types by id.")

TAGS_AND_TYPES = {
    "MgmtTag": audited(
        dict({"id": integer(), "name": string()}, **_LOOK_AND_FEEL,
             _links=links("self", "assignedTargets", "assignedDistributionSets")),
        required=("id", "name", "_links")),
    "MgmtTagRequestBodyPut": obj(dict({"name": string(minLength=1, maxLength=128)},
                                      **_LOOK_AND_FEEL),
                                 description="A tag to create (name required) or the fields "
                                             "to change."),
    "MgmtTargetTagAssignment": array(
        {"oneOf": [string("A controller id."),
                   obj({"controllerId": string()}, required=("controllerId",),
                       description="The form of hawkBit before 0.6.")]},
        "The targets, each by its controller id."),
    "MgmtDistributionSetTagAssignment": array(
        {"oneOf": [integer("A distribution set id."),
                   obj({"distributionSetId": integer()}, required=("distributionSetId",),
                       description="The form of hawkBit before 0.6.")]},
        "The distribution sets, each by its id."),
    "MgmtTargetType": audited(
        dict({"id": integer(), "key": string(), "name": string(), "deleted": boolean()},
             **_LOOK_AND_FEEL, _links=links("self", "compatibledistributionsettypes")),
        required=("id", "key", "name", "deleted", "_links")),
    "MgmtTargetTypeRequestBodyPost": obj(
        dict({"key": string(maxLength=64), "name": string(maxLength=128),
              "compatibledistributionsettypes": _TYPE_IDS}, **_LOOK_AND_FEEL),
        description="Key or name is required; each defaults to the other."),
    "MgmtTargetTypeRequestBodyPut": obj(dict({"name": string(minLength=1, maxLength=128)},
                                             **_LOOK_AND_FEEL)),
    "MgmtTypeRequestBodyPut": obj(dict(_LOOK_AND_FEEL),
                                  description="What a module or set type may change."),
    "MgmtSoftwareModuleTypeRequestBodyPost": obj(
        dict({"key": string(minLength=1, maxLength=64),
              "name": string(minLength=1, maxLength=128),
              "maxAssignments": integer("Modules of the type one set may hold (default 1).",
                                        fmt="int32", minimum=1),
              "minArtifacts": integer("Artifacts a module needs to be complete (default 0).",
                                      fmt="int32", minimum=0)}, **_LOOK_AND_FEEL),
        required=("key", "name")),
    "MgmtDistributionSetTypeRequestBodyPost": obj(
        dict({"key": string(minLength=1, maxLength=64),
              "name": string(minLength=1, maxLength=128),
              "mandatorymodules": _TYPE_IDS, "optionalmodules": _TYPE_IDS},
             **_LOOK_AND_FEEL),
        required=("key", "name")),
}
MGMT.update(TAGS_AND_TYPES)
MGMT.update({"PagedList" + name: paged(name) for name in ("MgmtTag", "MgmtTargetType")})

AUTO_ASSIGN_TYPES = ("forced", "soft", "downloadonly")

FILTERS = {
    "MgmtTargetFilterQuery": audited(
        {"id": integer(), "name": string(), "query": string("A target query (RSQL)."),
         "autoAssignDistributionSet": integer("The set it auto-assigns; null: none.",
                                              nullable=True),
         "autoAssignActionType": string("The type of the actions it creates.",
                                        enum=list(AUTO_ASSIGN_TYPES) + [None], nullable=True),
         "autoAssignWeight": integer("The weight of the actions it creates.", fmt="int32",
                                     nullable=True),
         "confirmationRequired": {"type": "boolean", "nullable": True,
                                  "description": "Whether its actions wait for the device's "
                                                 "confirmation; shown while the confirmation "
                                                 "flow is on."},
         "_links": links("self", "autoAssignDS", "DS")},
        required=("id", "name", "query", "autoAssignDistributionSet", "autoAssignActionType",
                  "autoAssignWeight", "confirmationRequired", "_links"),
        description="A target filter: every auto-assignment field is present, null when "
                    "unset."),
    "MgmtTargetFilterQueryRequestBodyPost": obj(
        {"name": string(minLength=1, maxLength=128),
         "query": string("A target query (RSQL), as for GET /rest/v1/targets?q=.",
                         minLength=1, maxLength=1024)},
        required=("name", "query")),
    "MgmtTargetFilterQueryRequestBodyPut": obj(
        {"name": string(minLength=1, maxLength=128),
         "query": string("A target query (RSQL).", minLength=1, maxLength=1024)}),
    "MgmtDistributionSetAutoAssignment": obj(
        {"id": integer("The distribution set: complete, not deleted."),
         "type": enum(AUTO_ASSIGN_TYPES, "Default forced; timeforced is refused."),
         "weight": integer("Default 1000.", fmt="int32", minimum=0, maximum=1000),
         "confirmationRequired": boolean("Default: whether the confirmation flow is on.")},
        required=("id",)),
    "PagedListMgmtTargetFilterQuery": paged("MgmtTargetFilterQuery"),
}

ROLLOUT_STATUSES = ("creating", "waiting_for_approval", "approval_denied", "ready", "starting",
                    "running", "paused", "stopping", "stopped", "finished", "deleting",
                    "deleted")
GROUP_STATUSES = ("ready", "scheduled", "running", "finished", "error")
_PROGRESS = obj({key: integer() for key in ("running", "notstarted", "scheduled", "cancelled",
                                            "finished", "error")},
                description="How many of the targets are at each stage: `notstarted` before "
                            "the rollout starts, then `scheduled` until their group starts.")
_THRESHOLD = obj({"condition": enum(("THRESHOLD",)),
                  "expression": string("A percentage of the group's targets, 0 to 100.")})
_SUCCESS_ACTION = obj({"action": enum(("NEXTGROUP",)), "expression": string()})
_ERROR_ACTION = obj({"action": enum(("PAUSE",)), "expression": string()})
_CONDITIONS = {"successCondition": _THRESHOLD, "successAction": _SUCCESS_ACTION,
               "errorCondition": _THRESHOLD, "errorAction": _ERROR_ACTION}

ROLLOUTS = {
    "MgmtRolloutResponseBody": audited(dict({
        "id": integer(), "name": string(), "description": string(),
        "targetFilterQuery": string("The target query (RSQL) the rollout was made of."),
        "distributionSetId": integer(), "status": enum(ROLLOUT_STATUSES),
        "totalTargets": integer(), "totalGroups": integer(fmt="int32"),
        "totalTargetsPerStatus": _PROGRESS, "deleted": boolean(),
        "type": enum(FORCE_TYPES), "forcetime": timestamp("When timeforced actions become "
                                                          "forced"),
        "weight": integer(fmt="int32"),
        "confirmationRequired": boolean("Shown while the confirmation flow is on."),
        "startAt": timestamp("When the rollout starts by itself"),
        "approvalRemark": string(), "approveDecidedBy": string(),
        "_links": links("self", "start", "pause", "resume", "triggerNextGroup", "approve",
                        "deny", "groups", "distributionset")}),
        required=("id", "name", "status", "totalTargets", "deleted", "type", "_links"),
        description="A staged rollout; `totalTargetsPerStatus` and the verbs' links are "
                    "left out of compact lists."),
    "MgmtRolloutRestRequestBodyPost": obj(dict({
        "name": string(minLength=1, maxLength=128), "description": string(maxLength=512),
        "distributionSetId": integer("A complete, valid, not deleted set."),
        "targetFilterQuery": string("A target query (RSQL); required.", minLength=1,
                                    maxLength=1024),
        "type": enum(FORCE_TYPES, "Default forced."),
        "forcetime": timestamp("When timeforced actions become forced"),
        "weight": integer("Default 1000.", fmt="int32", minimum=0, maximum=1000),
        "confirmationRequired": boolean("Default: whether the confirmation flow is on."),
        "startAt": timestamp("Start by itself at this time"),
        "amountGroups": integer("Split the targets evenly into this many groups (default 1; "
                                "not with `groups`).", fmt="int32", minimum=1, maximum=500),
        "groups": array(ref("MgmtRolloutGroup"), "Explicit groups (not with "
                                                  "`amountGroups`); they must cover every "
                                                  "target.")}, **_CONDITIONS),
        required=("name", "distributionSetId", "targetFilterQuery")),
    "MgmtRolloutGroup": obj(dict({
        "name": string(maxLength=128), "description": string(maxLength=512),
        "targetFilterQuery": string("Narrows the group to the targets this query matches "
                                    "too.", maxLength=1024),
        "targetPercentage": {"type": "number", "minimum": 1, "maximum": 100,
                             "description": "The share of the matching targets not in an "
                                            "earlier group (default 100)."},
        "confirmationRequired": boolean()}, **_CONDITIONS)),
    "MgmtRolloutRestRequestBodyPut": obj({"name": string(minLength=1, maxLength=128),
                                          "description": string(maxLength=512)}),
    "MgmtRolloutGroupResponseBody": audited(dict({
        "id": integer(), "name": string(), "description": string(),
        "status": enum(GROUP_STATUSES), "totalTargets": integer(),
        "totalTargetsPerStatus": _PROGRESS, "targetFilterQuery": string(),
        "targetPercentage": {"type": "number"},
        "confirmationRequired": boolean("Shown while the confirmation flow is on."),
        "_links": links("self")}, **_CONDITIONS),
        required=("id", "name", "status", "totalTargets", "_links")),
    "PagedListMgmtRolloutResponseBody": paged("MgmtRolloutResponseBody"),
    "PagedListMgmtRolloutGroupResponseBody": paged("MgmtRolloutGroupResponseBody"),
}

SERVER = {
    "Readiness": obj({"name": string(), "status": enum(("up",))},
                     required=("name", "status")),
    "OpenApiDocument": obj({"openapi": string()}, required=("openapi",),
                           description="This document."),
    "Health": obj({"status": enum(("UP", "DOWN"))}, required=("status",),
                  description="Spring Boot's actuator health, as hawkBit answers it."),
}

SCHEMAS = dict(SHARED, **DDI, **MGMT, **FILTERS, **ROLLOUTS, **SERVER)
