"""The operator's view of the fleet: targets, actions, their status entries, tenant configuration
and the user's own info, as Management API documents (mgmt-contract §6, §7, §11, §2).

Every function that returns documents takes `base` ("http://host:port", no trailing slash) and
builds absolute links from it. Documents are plain dicts: null fields are left out (§1.3),
enum values are lower case and times are epoch milliseconds. Request bodies arrive as parsed
JSON values and are checked here with `storage.coerce`. Writes run inside `storage.db.write()`;
every change of an action's state goes through `storage.actions.apply_event`.
"""

import collections
import urllib.parse

from storage import assignments, ddi, query, schedule, software, target_types, tenant
from storage.documents import audit_fields, clean, link, paged, segment
from storage import transitions as t
from storage.actions import apply_event, touch
from storage.catalog import create_target
from storage.coerce import as_bool, as_int, as_list, as_object, as_str
from storage.db import write
from storage.errors import (ActionOfOtherTarget, BodyNotReadable, ConstraintViolation,
                            EmptyBadRequest, EmptyGone, EntityAlreadyExists, EntityNotFound,
                            NotDeletable, QuotaExceeded)
from storage.models import (Action, ActionStatus, DistributionSet, DistributionSetType,
                            Rollout, TenantConfig, Target, TargetMetadata,
                            get_existing)
from storage.tenant import InvalidConfigKey, InvalidConfigValue


# Accept the tenant configuration keys of hawkBit <= 0.9 (mgmt-contract §11.3, §13).
LEGACY_CONFIG_KEYS = True

MAX_NAME = 128
MAX_DESCRIPTION = 512
MAX_TOKEN = 128
MAX_ADDRESS = 512
MAX_GROUP = 256
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 4000
MAX_METADATA_ENTRIES = 100
MAX_CONFIRMATION_DETAILS = 50

ACTION_LINK_QUERY = "?offset=0&limit=50&sort=id%3ADESC"

FORCE_TYPES = collections.OrderedDict((
    (t.FORCED, "forced"), (t.SOFT, "soft"), (t.TIMEFORCED, "timeforced"),
    (t.DOWNLOAD_ONLY, "downloadonly"),
))

PERMISSIONS = (
    "READ_TARGET", "CREATE_TARGET", "UPDATE_TARGET", "DELETE_TARGET",
    "READ_TARGET_SECURITY_TOKEN", "READ_REPOSITORY", "CREATE_REPOSITORY", "UPDATE_REPOSITORY",
    "DELETE_REPOSITORY", "DOWNLOAD_REPOSITORY_ARTIFACT", "READ_ROLLOUT", "CREATE_ROLLOUT",
    "UPDATE_ROLLOUT", "DELETE_ROLLOUT", "HANDLE_ROLLOUT", "APPROVE_ROLLOUT",
    "TENANT_CONFIGURATION", "SYSTEM_ADMIN",
)


# --- small helpers --------------------------------------------------------------------------

def _target(controller_id):
    target = ddi.find_target(controller_id)
    if target is None:
        raise EntityNotFound("Target", controller_id)
    return target


def _action_id(action_id):
    try:
        return int(str(action_id).strip())
    except ValueError:
        raise EntityNotFound("Action", action_id)


def _action(action_id):
    number = _action_id(action_id)
    action = get_existing(Action, Action.id == number, "Action", action_id)
    return action


def _target_action(controller_id, action_id):
    """The target and one of its actions: 404 with a body for unknown ones, 404 without a body
    for an action of another target (mgmt-contract §7.3)."""
    target = _target(controller_id)
    action = _action(action_id)
    if action.target_id != target.id:
        raise ActionOfOtherTarget(action.id, controller_id)
    return target, action


def _lower(value):
    return value.lower() if value is not None else None


# --- targets (§6) ---------------------------------------------------------------------------

def _duration_seconds(text, fallback):
    """Seconds of a duration setting; a `~NN%` deviation or an override list is ignored."""
    try:
        return schedule.parse_duration(str(text).split(",")[0].split("~")[0].strip())
    except ValueError:
        return fallback


def poll_status(last_request_at, settings, now):
    """hawkBit's pollStatus of a target that has polled (mgmt-contract §5.1)."""
    polling = schedule.parse_polling_time(str(settings["pollingTime"]))
    interval_ms = polling.seconds * 1000
    next_expected = last_request_at + interval_ms + interval_ms * polling.deviation_percent // 100
    overdue_ms = _duration_seconds(settings["pollingOverdueTime"], 300) * 1000
    return collections.OrderedDict((
        ("lastRequestAt", last_request_at),
        ("nextExpectedRequestAt", next_expected),
        ("overdue", now > next_expected + overdue_ms),
    ))


def ip_address(address):
    """The host part of a target's address, when it is a real address (§6.1)."""
    if not address:
        return None
    try:
        parts = urllib.parse.urlsplit(address)
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or parts.scheme.lower().startswith("amqp") or not host or "*" in host:
        return None
    return host


def target_document(base, target, full=False, settings=None, now=None, with_poll=True):
    """A target as §6.1 shows it; `full` adds the links of a single-target response."""
    settings = settings if settings is not None else tenant.settings()
    flow = bool(settings["user.confirmation.flow.enabled"])
    self_path = "targets/" + segment(target.controller_id)
    doc = collections.OrderedDict(audit_fields(target))
    doc["name"] = target.name
    doc["description"] = target.description
    doc["controllerId"] = target.controller_id
    doc["updateStatus"] = _lower(target.update_status)
    doc["lastControllerRequestAt"] = target.last_target_query
    doc["installedAt"] = target.installation_date
    doc["ipAddress"] = ip_address(target.address)
    doc["address"] = target.address
    if with_poll and target.last_target_query is not None:
        doc["pollStatus"] = poll_status(target.last_target_query, settings,
                                        now if now is not None else ddi.now_ms())
    doc["securityToken"] = target.security_token
    doc["requestAttributes"] = bool(target.request_attributes)
    doc["group"] = target.group
    doc.update(target_types.target_type_fields(target))
    if flow:
        doc["autoConfirmActive"] = bool(target.auto_confirm_active)
    links = collections.OrderedDict((("self", link(base, self_path)),))
    if full:
        links["assignedDS"] = link(base, self_path + "/assignedDS")
        links["installedDS"] = link(base, self_path + "/installedDS")
        links["attributes"] = link(base, self_path + "/attributes")
        links["actions"] = link(base, self_path + "/actions" + ACTION_LINK_QUERY)
        links["metadata"] = link(base, self_path + "/metadata")
        if "targetType" in doc:
            links["targetType"] = link(base, "targettypes/%d" % doc["targetType"])
        if flow:
            links["autoConfirm"] = link(base, self_path + "/autoConfirm")
    doc["_links"] = links
    return clean(doc)


def list_targets(base, q=None, sort=None, offset=None, limit=None):
    ddi.poll_log.flush()
    now = ddi.now_ms()
    rows, total = query.page(Target.select(), "targets", q=q, sort=sort, offset=offset,
                             limit=limit, now=now)
    settings = tenant.settings()
    return paged([target_document(base, row, settings=settings, now=now) for row in rows],
                  total)


def _targets_with_set(base, field, set_id, q, sort, offset, limit):
    distribution_set = get_existing(DistributionSet, DistributionSet.id == set_id,
                                    "DistributionSet", set_id)
    ddi.poll_log.flush()
    select = Target.select().where(field == distribution_set.id)
    now = ddi.now_ms()
    rows, total = query.page(select, "targets", q=q, sort=sort, offset=offset, limit=limit,
                             default_order=[Target.id], now=now)
    settings = tenant.settings()
    return paged([target_document(base, row, settings=settings, now=now) for row in rows],
                 total)


def targets_assigned_set(base, set_id, q=None, sort=None, offset=None, limit=None):
    """The targets a distribution set is assigned to (§9.8, `assignedTargets`)."""
    return _targets_with_set(base, Target.assigned_ds, set_id, q, sort, offset, limit)


def targets_installed_set(base, set_id, q=None, sort=None, offset=None, limit=None):
    """The targets that run a distribution set (§9.8, `installedTargets`)."""
    return _targets_with_set(base, Target.installed_ds, set_id, q, sort, offset, limit)


def get_target(base, controller_id):
    ddi.poll_log.flush()
    return target_document(base, _target(controller_id), full=True)


def _optional_text(item, key, max_length, blank_ok=True):
    text = as_str(item.get(key), key, max_length=max_length)
    if text is not None and not blank_ok and not text.strip():
        raise ConstraintViolation("%s must not be blank." % key, {"field": key})
    return text


def _parse_new_target(item):
    item = as_object(item, "target", required=True)
    controller_id = as_str(item.get("controllerId"), "controllerId", required=True,
                           max_length=ddi.MAX_CONTROLLER_ID)
    ddi.validate_controller_id(controller_id)
    name = as_str(item.get("name"), "name")
    if name is not None and not name.strip():
        name = None  # blank: the default applies, as when omitted
    if name is not None and len(name) > MAX_NAME:
        raise ConstraintViolation("name must not be longer than %d characters." % MAX_NAME,
                                  {"field": "name"})
    token = as_str(item.get("securityToken"), "securityToken", max_length=MAX_TOKEN)
    fields = dict(
        name=name,
        description=_optional_text(item, "description", MAX_DESCRIPTION),
        security_token=token if token and token.strip() else None,
        address=_optional_text(item, "address", MAX_ADDRESS),
        group=_optional_text(item, "group", MAX_GROUP),
    )
    return controller_id, fields, as_int(item.get("targetType"), "targetType")


def create_targets(base, body, user):
    """Create targets from a JSON array, all or nothing (§6.2); their documents, in order."""
    items = as_list(body, "targets", required=True)
    parsed = [_parse_new_target(item) for item in items]
    seen = set()
    for controller_id, _, _ in parsed:
        if controller_id in seen:
            raise EntityAlreadyExists("Target with controller id '%s' is given twice."
                                      % controller_id)
        seen.add(controller_id)
    now = ddi.now_ms()
    created = []
    with write():
        for controller_id, fields, type_id in parsed:
            target_type = None if type_id is None else target_types.get_existing_type(type_id)
            created.append(create_target(controller_id, now, user, target_type=target_type,
                                         **fields))
    settings = tenant.settings()
    return [target_document(base, target, settings=settings, now=now, with_poll=False)
            for target in created]


def update_target(base, controller_id, body, user):
    """Partial update (§6.5): fields present and non-null change; the full target back."""
    body = as_object(body, "target", required=True)
    request_attributes = as_bool(body.get("requestAttributes"), "requestAttributes")
    if request_attributes is False:
        raise EmptyBadRequest("requestAttributes can only be set to true.")
    changes = {}
    name = as_str(body.get("name"), "name", max_length=MAX_NAME)
    if name is not None:
        if not name.strip():
            raise ConstraintViolation("name must not be blank.", {"field": "name"})
        changes["name"] = name
    token = as_str(body.get("securityToken"), "securityToken", max_length=MAX_TOKEN)
    if token is not None:
        if not token.strip():
            raise ConstraintViolation("securityToken must not be blank.",
                                      {"field": "securityToken"})
        changes["security_token"] = token
    for key, column, max_length in (("description", "description", MAX_DESCRIPTION),
                                    ("address", "address", MAX_ADDRESS),
                                    ("group", "group", MAX_GROUP)):
        value = as_str(body.get(key), key, max_length=max_length)
        if value is not None:
            changes[column] = value
    if request_attributes:
        changes["request_attributes"] = True
    with write():
        target = _target(controller_id)
        type_change = target_types.type_change(body.get("targetType"))
        if type_change is not None:
            changes["target_type"] = None if type_change == target_types.NO_TYPE \
                else type_change
        if changes:
            for column, value in changes.items():
                setattr(target, column, value)
            target.last_modified_at = ddi.now_ms()
            target.last_modified_by = user
            target.save()
    return get_target(base, controller_id)


def delete_target(controller_id):
    """Hard delete with actions, status entries and metadata (§5.6)."""
    with write():
        target = _target(controller_id)
        actions = Action.select(Action.id).where(Action.target == target.id)
        ActionStatus.delete().where(ActionStatus.action.in_(actions)).execute()
        Action.delete().where(Action.target == target.id).execute()
        TargetMetadata.delete().where(TargetMetadata.target == target.id).execute()
        Target.delete().where(Target.id == target.id).execute()


def target_attributes(controller_id):
    """The attributes exactly as last reported, or None when there are none (→ 204)."""
    attributes = _target(controller_id).attributes
    return dict(attributes) if attributes else None


def _set_document(base, set_id):
    if set_id is None:
        return None
    distribution_set = DistributionSet.get_or_none(DistributionSet.id == set_id)
    if distribution_set is None:
        return None
    return software.distribution_set_document(base, distribution_set, full=True)


def target_assigned_ds(base, controller_id):
    return _set_document(base, _target(controller_id).assigned_ds_id)


def target_installed_ds(base, controller_id):
    return _set_document(base, _target(controller_id).installed_ds_id)


# --- auto-confirmation (§6.10) --------------------------------------------------------------

def auto_confirm_state(base, controller_id):
    target = _target(controller_id)
    path = "targets/%s/autoConfirm/" % segment(target.controller_id)
    doc = collections.OrderedDict((("active", bool(target.auto_confirm_active)),))
    if target.auto_confirm_active:
        doc["initiator"] = target.auto_confirm_initiator
        doc["remark"] = target.auto_confirm_remark
        doc["activatedAt"] = target.auto_confirm_activated_at
        doc["_links"] = {"deactivate": link(base, path + "deactivate")}
    else:
        doc["_links"] = {"activate": link(base, path + "activate")}
    return clean(doc)


def activate_auto_confirm(controller_id, body, user):
    body = as_object(body, "autoConfirm") or {}
    initiator = as_str(body.get("initiator"), "initiator")
    remark = as_str(body.get("remark"), "remark")
    target = _target(controller_id)
    ddi.activate_auto_confirm(target, initiator or None, remark or None, ddi.now_ms(), user)


def deactivate_auto_confirm(controller_id):
    ddi.deactivate_auto_confirm(_target(controller_id))


# --- target metadata (§6.11) ----------------------------------------------------------------

def _metadata_document(entry):
    return clean(collections.OrderedDict((("key", entry.key), ("value", entry.value))))


def _metadata_entry(target, key):
    entry = TargetMetadata.get_or_none((TargetMetadata.target == target.id)
                                       & (TargetMetadata.key == key))
    if entry is None:
        raise EntityNotFound("TargetMetadata", key)
    return entry


def _metadata_value(body):
    return as_str(body.get("value"), "value", max_length=MAX_METADATA_VALUE)


def _check_metadata_quota(target, adding):
    count = TargetMetadata.select().where(TargetMetadata.target == target.id).count()
    if count + adding > MAX_METADATA_ENTRIES:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d more TargetMetadata entities to Target '%s'. "
            "The maximum is %d." % (adding, target.controller_id, MAX_METADATA_ENTRIES))


def list_target_metadata(controller_id):
    target = _target(controller_id)
    entries = list(TargetMetadata.select().where(TargetMetadata.target == target.id)
                   .order_by(TargetMetadata.key))
    return paged([_metadata_document(entry) for entry in entries], len(entries))


def create_target_metadata(controller_id, body, user):
    """Add entries from `[{"key": ..., "value": ...}]`; an existing key is a conflict."""
    items = []
    for item in as_list(body, "metadata", required=True):
        item = as_object(item, "metadata", required=True)
        key = as_str(item.get("key"), "key", required=True, max_length=MAX_METADATA_KEY)
        items.append((key, _metadata_value(item)))
    with write():
        target = _target(controller_id)
        keys = set()
        for key, _ in items:
            if key in keys or TargetMetadata.select().where(
                    (TargetMetadata.target == target.id) & (TargetMetadata.key == key)).exists():
                raise EntityAlreadyExists("Metadata key '%s' already exists for target '%s'."
                                          % (key, controller_id))
            keys.add(key)
        _check_metadata_quota(target, len(items))
        for key, value in items:
            TargetMetadata.create(target=target, key=key, value=value)


def get_target_metadata(controller_id, key):
    return _metadata_document(_metadata_entry(_target(controller_id), key))


def put_target_metadata(controller_id, key, body, user):
    """Set the value of a key, creating it if needed (within the quota)."""
    body = as_object(body, "metadata", required=True)
    value = _metadata_value(body)
    with write():
        target = _target(controller_id)
        entry = TargetMetadata.get_or_none((TargetMetadata.target == target.id)
                                           & (TargetMetadata.key == key))
        if entry is None:
            if len(key) > MAX_METADATA_KEY:
                raise ConstraintViolation("key must not be longer than %d characters."
                                          % MAX_METADATA_KEY, {"field": "key"})
            _check_metadata_quota(target, 1)
            TargetMetadata.create(target=target, key=key, value=value)
        else:
            TargetMetadata.update(value=value).where(
                (TargetMetadata.target == target.id) & (TargetMetadata.key == key)).execute()


def delete_target_metadata(controller_id, key):
    with write():
        target = _target(controller_id)
        _metadata_entry(target, key)
        TargetMetadata.delete().where((TargetMetadata.target == target.id)
                                      & (TargetMetadata.key == key)).execute()


# --- actions (§7) ---------------------------------------------------------------------------

def _maintenance_window(action, now):
    if not action.maintenance_schedule:
        return None
    window = collections.OrderedDict((
        ("schedule", action.maintenance_schedule),
        ("duration", action.maintenance_duration),
        ("timezone", action.maintenance_timezone),
    ))
    try:
        state = schedule.window_state(action.maintenance_schedule, action.maintenance_duration,
                                      action.maintenance_timezone, now)
        window["nextStartAt"] = state.start_ms
    except ValueError:
        pass
    return clean(window)


def _action_document(base, action, target, distribution_set, full, now, rollout_name=None):
    path = "targets/%s/actions/%d" % (segment(target.controller_id), action.id)
    status = _lower(action.status)
    is_cancel = action.status in t.CANCEL_STATUSES
    doc = collections.OrderedDict(audit_fields(action))
    doc["id"] = action.id
    doc["type"] = "cancel" if is_cancel else "update"
    doc["active"] = bool(action.active)
    doc["status"] = status
    doc["detailStatus"] = status
    doc["forceType"] = FORCE_TYPES.get(action.action_type, _lower(action.action_type))
    if action.action_type == t.TIMEFORCED:
        doc["forceTime"] = action.forced_time
    doc["weight"] = action.priority_weight
    doc["lastStatusCode"] = action.last_status_code
    doc["maintenanceWindow"] = _maintenance_window(action, now)
    doc["rollout"] = action.rollout_id
    doc["rolloutName"] = rollout_name
    links = collections.OrderedDict((("self", link(base, path)),))
    if full:
        if is_cancel:
            links["canceledaction"] = link(base, path)
        links["target"] = link(base, "targets/" + segment(target.controller_id),
                                name=target.name)
        links["distributionset"] = link(
            base, "distributionsets/%d" % distribution_set.id,
            name="%s:%s" % (distribution_set.name, distribution_set.version))
        links["status"] = link(base, path + "/status" + ACTION_LINK_QUERY)
        if action.rollout_id is not None:
            links["rollout"] = link(base, "rollouts/%d" % action.rollout_id, name=rollout_name)
    doc["_links"] = links
    return clean(doc)


def action_document(base, action, full=False):
    """One action as §7.1 shows it; `full` adds the links of a single-action response."""
    target = Target.get_by_id(action.target_id)
    distribution_set = DistributionSet.get_by_id(action.distribution_set_id) if full else None
    return _action_document(base, action, target, distribution_set, full, ddi.now_ms(),
                            _rollout_names({action.rollout_id}).get(action.rollout_id))


def _rollout_names(rollout_ids):
    """{rollout id: name} of the rollouts some actions came from."""
    rollout_ids = [rollout_id for rollout_id in rollout_ids if rollout_id is not None]
    if not rollout_ids:
        return {}
    return {row.id: row.name for row in Rollout.select(Rollout.id, Rollout.name).where(
        Rollout.id.in_(rollout_ids))}


def _action_documents(base, actions, full):
    """Documents of many actions, their targets and sets fetched in one query each."""
    now = ddi.now_ms()
    target_ids = {action.target_id for action in actions}
    targets = {row.id: row for row in Target.select().where(Target.id.in_(target_ids))} \
        if target_ids else {}
    sets = {}
    if full and actions:
        set_ids = {action.distribution_set_id for action in actions}
        sets = {row.id: row for row in
                DistributionSet.select().where(DistributionSet.id.in_(set_ids))}
    names = _rollout_names({action.rollout_id for action in actions})
    return [_action_document(base, action, targets[action.target_id],
                             sets.get(action.distribution_set_id), full, now,
                             names.get(action.rollout_id))
            for action in actions]


def list_target_actions(base, controller_id, q=None, sort=None, offset=None, limit=None):
    target = _target(controller_id)
    rows, total = query.page(Action.select().where(Action.target == target.id), "actions",
                             q=q, sort=sort, offset=offset, limit=limit)
    return paged(_action_documents(base, rows, False), total)


def get_target_action(base, controller_id, action_id):
    _, action = _target_action(controller_id, action_id)
    return action_document(base, action, full=True)


def status_entry_document(entry):
    return clean(collections.OrderedDict((
        ("id", entry.id),
        ("type", _lower(entry.status)),
        ("messages", list(entry.messages or [])),
        ("reportedAt", entry.reported_at),
        ("timestamp", entry.timestamp),
        ("code", entry.code),
    )))


def action_status_list(controller_id, action_id, sort=None, offset=None, limit=None):
    """The action's history, newest first unless `sort` says otherwise (§7.4)."""
    _, action = _target_action(controller_id, action_id)
    rows, total = query.page(ActionStatus.select().where(ActionStatus.action == action.id),
                             "actionstatus", sort=sort, offset=offset, limit=limit)
    return paged([status_entry_document(row) for row in rows], total)


def cancel_target_action(controller_id, action_id, force, user):
    """Soft cancel, or with `force` a force-quit of a cancelling action (§7.5)."""
    _, action = _target_action(controller_id, action_id)
    assignments.cancel(action, ddi.now_ms(), user, force=bool(force))


def update_target_action(base, controller_id, action_id, body, user):
    """Switch an action to forced (§7.6); the device sees a new `c` value."""
    body = as_object(body, "action", required=True)
    text = as_str(body.get("forceType"), "forceType")
    force_type = text.strip().lower() if text is not None else None
    if force_type is not None and force_type not in FORCE_TYPES.values():
        raise BodyNotReadable("Unknown forceType '%s'." % text)
    now = ddi.now_ms()
    with write():
        _, action = _target_action(controller_id, action_id)
        if force_type != "forced":
            raise ConstraintViolation("Resource supports only switch to FORCED.",
                                      {"field": "forceType"})
        due = (action.action_type == t.TIMEFORCED and action.forced_time is not None
               and now >= action.forced_time)
        if action.action_type != t.FORCED and not due:
            action.action_type = t.FORCED
            touch(action, now, user)
    return get_target_action(base, controller_id, action_id)


def confirm_target_action(controller_id, action_id, body, user):
    """The operator confirms or denies an action waiting for confirmation (§7.7)."""
    body = as_object(body, "confirmation", required=True)
    confirmation = as_str(body.get("confirmation"), "confirmation", required=True)
    execution = confirmation.strip().lower()
    if execution not in t.CONFIRMATIONS:
        raise BodyNotReadable("confirmation must be 'confirmed' or 'denied', not '%s'."
                              % confirmation)
    code = as_int(body.get("code"), "code")
    details = [as_str(line, "details") for line in as_list(body.get("details"), "details") or []]
    details = [line for line in details if line is not None]
    if len(details) > MAX_CONFIRMATION_DETAILS:
        raise ConstraintViolation("At most %d details are allowed." % MAX_CONFIRMATION_DETAILS,
                                  {"field": "details"})
    with write():
        _, action = _target_action(controller_id, action_id)
        if not action.active:
            raise EmptyGone("Action %d is not active." % action.id)
        apply_event(action, t.OPERATOR, execution, details=details, code=code,
                    now=ddi.now_ms(), by=user)


def list_actions(base, q=None, sort=None, offset=None, limit=None, full=False):
    rows, total = query.page(Action.select(), "actions", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged(_action_documents(base, rows, bool(full)), total)


def get_action(base, action_id):
    return action_document(base, _action(action_id), full=True)


def deletable_statuses():
    text = tenant.settings()["action.delete.allowed.statuses"] or ""
    return frozenset(part.strip().upper() for part in str(text).split(",") if part.strip())


def _check_deletable(action, allowed):
    if action.status not in allowed:
        raise NotDeletable("Action %d is %s; only actions in status %s can be deleted."
                           % (action.id, action.status, ",".join(sorted(allowed)) or "-"))


def _delete_action_rows(action_ids):
    if action_ids:
        ActionStatus.delete().where(ActionStatus.action.in_(action_ids)).execute()
        Action.delete().where(Action.id.in_(action_ids)).execute()


def delete_action(action_id):
    """Purge one action from the history, if its status allows it (§7.8)."""
    with write():
        action = _action(action_id)
        _check_deletable(action, deletable_statuses())
        _delete_action_rows([action.id])


def _id_list(ids, field):
    return [as_int(value, field, required=True) for value in as_list(ids, field, required=True)]


def _exactly_one(first, second, names):
    if (first is None) == (second is None):
        raise BodyNotReadable("Give exactly one of %s and %s." % names)


def delete_actions(q=None, ids=None):
    """Purge the actions matching `q` (the deletable ones) or exactly the given ids (all must
    exist and be deletable, else nothing is deleted)."""
    if q is not None and not str(q).strip():
        q = None
    _exactly_one(q, ids, ("q", "a list of action ids"))
    allowed = deletable_statuses()
    with write():
        if q is not None:
            expression = query.filter_expression("actions", q, now=ddi.now_ms())
            select = Action.select(Action.id).where(Action.status.in_(tuple(allowed)))
            if expression is not None:
                select = select.where(expression)
            _delete_action_rows([row.id for row in select])
            return
        doomed = []
        for number in _id_list(ids, "ids"):
            action = _action(number)
            _check_deletable(action, allowed)
            doomed.append(action.id)
        _delete_action_rows(doomed)


def purge_target_actions(controller_id, keep_last=None, ids=None):
    """Purge a target's history: all deletable actions but the newest `keep_last`, or exactly
    the given ids (each of this target and deletable, else nothing is deleted)."""
    _exactly_one(keep_last, ids, ("keepLast", "a list of action ids"))
    allowed = deletable_statuses()
    with write():
        target = _target(controller_id)
        if keep_last is not None:
            keep = as_int(keep_last, "keepLast", required=True, minimum=0)
            deletable = [row.id for row in
                         Action.select(Action.id)
                         .where((Action.target == target.id)
                                & Action.status.in_(tuple(allowed)))
                         .order_by(Action.id.desc())]
            _delete_action_rows(deletable[keep:])
            return
        doomed = []
        for number in _id_list(ids, "ids"):
            action = Action.get_or_none(Action.id == number)
            if action is None or action.target_id != target.id:
                raise EntityNotFound("Action", number)
            _check_deletable(action, allowed)
            doomed.append(action.id)
        _delete_action_rows(doomed)


# --- tenant configuration (§11) -------------------------------------------------------------

DEFAULT_SET_TYPE = "default.ds.type"
DEFAULT_SET_TYPE_KEY = "os_app"

MIN_POLLING_TIME = "minPollingTime"
ANONYMOUS_DOWNLOAD = "anonymous.download.enabled"
MULTI_ASSIGNMENTS = "multi.assignments.enabled"
CLEANUP_ENABLED = "action.cleanup.enabled"
CLEANUP_EXPIRY = "action.cleanup.actionExpiry"
CLEANUP_STATUS = "action.cleanup.actionStatus"
LEGACY_KEYS = (MIN_POLLING_TIME, ANONYMOUS_DOWNLOAD, MULTI_ASSIGNMENTS, CLEANUP_ENABLED,
               CLEANUP_EXPIRY, CLEANUP_STATUS)

AUTO_EXPIRY = "action.cleanup.auto.expiry"
AUTO_STATUS = "action.cleanup.auto.status"
DEFAULT_CLEANUP_EXPIRY = 30 * 24 * 3600 * 1000

# Keys kept as rows of their own, outside storage.tenant's key list.
_OWN_ROW_KEYS = (DEFAULT_SET_TYPE, MIN_POLLING_TIME, ANONYMOUS_DOWNLOAD, MULTI_ASSIGNMENTS,
                 CLEANUP_EXPIRY)

_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def config_keys():
    """Every key GET /system/configs shows, in order."""
    keys = list(tenant.KEYS) + [DEFAULT_SET_TYPE]
    if LEGACY_CONFIG_KEYS:
        keys.extend(LEGACY_KEYS)
    return keys


def _check_key(key):
    if key in tenant.KEYS or key == DEFAULT_SET_TYPE or (LEGACY_CONFIG_KEYS
                                                         and key in LEGACY_KEYS):
        return
    raise InvalidConfigKey("The given configuration key '%s' is not known." % key)


def _own_row(key):
    return TenantConfig.get_or_none(TenantConfig.key == key)


def _default_set_type_id():
    set_type = DistributionSetType.get_or_none(DistributionSetType.key == DEFAULT_SET_TYPE_KEY)
    return set_type.id if set_type is not None else None


def _own_default(key):
    if key == DEFAULT_SET_TYPE:
        return _default_set_type_id()
    if key == MIN_POLLING_TIME:
        return schedule.format_duration(tenant.Bounds.min_polling_seconds)
    if key in (ANONYMOUS_DOWNLOAD, MULTI_ASSIGNMENTS):
        return False
    if key == CLEANUP_EXPIRY:
        return DEFAULT_CLEANUP_EXPIRY
    raise KeyError(key)


def _value(key, pending=None):
    """The effective value of a key, seeing the not yet written values in `pending`."""
    pending = pending or {}
    if key in pending:
        return pending[key]
    if key in tenant.KEYS:
        return tenant.settings()[key]
    if key == CLEANUP_ENABLED:
        return _cleanup_enabled(pending)
    if key == CLEANUP_STATUS:
        return _value(AUTO_STATUS, pending)
    if key == CLEANUP_EXPIRY and _cleanup_enabled(pending):
        return _value(AUTO_EXPIRY, pending)
    row = _own_row(key)
    return row.value if row is not None else _own_default(key)


def _cleanup_enabled(pending):
    expiry = _value(AUTO_EXPIRY, pending)
    return isinstance(expiry, int) and not isinstance(expiry, bool) and expiry >= 0


def _row_behind(key):
    """The stored row whose audit fields a key shows, or None when its default applies."""
    if key in tenant.KEYS:
        return tenant.stored_row(key)
    if key == CLEANUP_ENABLED:
        return tenant.stored_row(AUTO_EXPIRY)
    if key == CLEANUP_STATUS:
        return tenant.stored_row(AUTO_STATUS)
    if key == CLEANUP_EXPIRY and _cleanup_enabled({}):
        return tenant.stored_row(AUTO_EXPIRY)
    return _own_row(key)


def _value_object(base, key):
    row = _row_behind(key)
    doc = collections.OrderedDict()
    doc["value"] = _value(key)
    doc["global"] = row is None and key != DEFAULT_SET_TYPE
    if row is not None:
        doc.update(audit_fields(row))
    doc["_links"] = {"self": link(base, "system/configs/" + segment(key))}
    return doc


def all_configs(base):
    return collections.OrderedDict((key, _value_object(base, key)) for key in config_keys())


def get_config(base, key):
    _check_key(key)
    return _value_object(base, key)


def _config_bool(key, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if not isinstance(value, (dict, list)):
        if text in _TRUE_WORDS:
            return True
        if text in _FALSE_WORDS:
            return False
    raise InvalidConfigValue("The value of '%s' must be a boolean." % key)


def _config_int(key, value, minimum=None):
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise InvalidConfigValue("The value of '%s' must be a number." % key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidConfigValue("The value of '%s' must be a number." % key)
    if minimum is not None and number < minimum:
        raise InvalidConfigValue("The value of '%s' must be at least %d." % (key, minimum))
    return number


def _config_duration(key, value):
    if isinstance(value, (bool, dict, list)):
        raise InvalidConfigValue("The value of '%s' must be a duration." % key)
    text = value if isinstance(value, str) else str(value)
    try:
        seconds = schedule.parse_duration(text)
    except ValueError as error:
        raise InvalidConfigValue("The value of '%s' is not a duration: %s" % (key, error))
    low, high = tenant.Bounds.min_polling_seconds, tenant.Bounds.max_polling_seconds
    if not low <= seconds <= high:
        raise InvalidConfigValue("The value of '%s' must lie between %s and %s." % (
            key, schedule.format_duration(low), schedule.format_duration(high)))
    return text


def _plan(key, value, pending):
    """Validate one key/value pair and note what is to be written in `pending`."""
    _check_key(key)
    if value is None:
        raise InvalidConfigValue("The configuration value of '%s' must not be null." % key)
    if key in tenant.KEYS:
        converted = tenant.convert(key, value)
        if key == "pollingTime":
            _check_minimum_polling(converted, pending)
            for target_filter, _ in schedule.parse_polling_time(converted).overrides:
                query.filter_expression("targets", target_filter)
        pending[key] = converted
    elif key == DEFAULT_SET_TYPE:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise InvalidConfigValue("The value of '%s' must be the id of a distribution set "
                                     "type." % key)
        set_type = DistributionSetType.get_or_none(DistributionSetType.id == int(value))
        if set_type is None or set_type.deleted:
            raise EntityNotFound("DistributionSetType", int(value))
        pending[key] = set_type.id
    elif key == MIN_POLLING_TIME:
        pending[key] = _config_duration(key, value)
    elif key in (ANONYMOUS_DOWNLOAD, MULTI_ASSIGNMENTS):
        if _config_bool(key, value):
            raise InvalidConfigValue("'%s' cannot be enabled: this server does not support it."
                                     % key)
        pending[key] = False
    elif key == CLEANUP_ENABLED:
        enabled = _config_bool(key, value)
        pending[AUTO_EXPIRY] = _value(CLEANUP_EXPIRY, pending) if enabled else -1
    elif key == CLEANUP_EXPIRY:
        expiry = _config_int(key, value, minimum=0)
        if _cleanup_enabled(pending):
            pending[AUTO_EXPIRY] = expiry
        pending[key] = expiry
    elif key == CLEANUP_STATUS:
        pending[AUTO_STATUS] = tenant.convert(AUTO_STATUS, value)


def _check_minimum_polling(polling_time, pending):
    """A stored legacy minPollingTime is a lower bound for pollingTime."""
    if not LEGACY_CONFIG_KEYS:
        return
    minimum = _duration_seconds(_value(MIN_POLLING_TIME, pending), 0)
    if _duration_seconds(polling_time, minimum) < minimum:
        raise InvalidConfigValue("The polling time must not be shorter than minPollingTime (%s)."
                                 % schedule.format_duration(minimum))


def put_config(base, key, body, user):
    """Set one key from `{"value": ...}`; the stored value object back (the web layer answers
    204 and may use it for the legacy status codes)."""
    _check_key(key)
    body = as_object(body, "configuration", required=True)
    pending = collections.OrderedDict()
    _plan(key, body.get("value"), pending)
    tenant.write_values(pending, user)
    return get_config(base, key)


def put_configs(base, body, user):
    """Set several keys from `{"<key>": <value>, ...}`, all or nothing."""
    body = as_object(body, "configuration", required=True)
    pending = collections.OrderedDict()
    for key, value in body.items():
        _plan(key, value, pending)
    if pending:
        tenant.write_values(pending, user)
    return collections.OrderedDict((key, get_config(base, key)) for key in body)


def delete_config(key):
    """Forget a stored value so the default applies again; unknown keys are ignored."""
    if key == DEFAULT_SET_TYPE:
        raise EntityNotFound("TenantConfiguration", key)
    if key in tenant.KEYS:
        tenant.reset(key)
        return
    if not LEGACY_CONFIG_KEYS or key not in LEGACY_KEYS:
        return
    if key == CLEANUP_ENABLED:
        tenant.reset(AUTO_EXPIRY)
    elif key == CLEANUP_STATUS:
        tenant.reset(AUTO_STATUS)
    else:
        with write():
            TenantConfig.delete().where(TenantConfig.key == key).execute()
        tenant.invalidate()


# --- user info (§2) -------------------------------------------------------------------------

def userinfo(user):
    return collections.OrderedDict((("tenant", "DEFAULT"), ("username", user),
                                    ("permissions", list(PERMISSIONS))))
