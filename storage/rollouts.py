"""Staged rollouts as Management API documents and requests (mgmt contract §12.2): create,
list, read, rename, the operator's verbs (start, pause, resume, stop, triggerNextGroup,
approve, deny), retry, delete, and the groups with their targets.

Creation is one write transaction: the rollout, its groups and one SCHEDULED action per
target (see storage.rollout_engine for why the targets are held as actions), or nothing when
a check fails. Every verb is one conditional status move of storage.rollout_engine's table;
the engine's thread does the rest (the first group after `start`, the next groups, pauses on
errors, the end). Functions take plain values and return plain documents, as
storage.filters does.
"""

import collections
import math

from storage import assignments, filters, query, tenant
from storage import rollout_engine as engine
from storage import transitions as t
from storage.coerce import as_bool, as_int, as_list, as_object, as_str
from storage.db import database, write
from storage.ddi import now_ms
from storage.documents import audit_fields, clean, link, paged
from storage.errors import (BodyNotReadable, ConstraintViolation, EntityAlreadyExists,
                            EntityReadOnly, QuotaExceeded, RolloutIllegalState)
from storage.fleet import FORCE_TYPES, target_document
from storage.models import Action, ActionStatus, Rollout, RolloutGroup, Target, get_existing

MAX_NAME = 128
MAX_DESCRIPTION = 512
MAX_REMARK = 255  # hawkBit's approvalRemark column
# Quotas (mgmt contract §15 item 10, hawkBit's defaults).
MAX_GROUPS = 500
MAX_TARGETS_PER_GROUP = 20000
DEFAULT_THRESHOLD = 50
ACTION_TYPES = {name: value for value, name in FORCE_TYPES.items()}
# Actions are written this many rows per INSERT (SQLite binds at most 999 values in old
# builds; an action row has 16 columns).
INSERT_ROWS = 50
SCHEDULED_LINE = "Update Server: Scheduled by rollout '%s', group '%s'"

Condition = collections.namedtuple("Condition", "condition threshold")
GroupSpec = collections.namedtuple(
    "GroupSpec", "name description query percentage success success_action error error_action "
                 "confirmation")
RolloutSpec = collections.namedtuple(
    "RolloutSpec", "name description set_id query action_type forced_time weight confirmation "
                   "start_at amount groups")


# --- documents -------------------------------------------------------------------------------

def _condition_document(condition, threshold):
    return collections.OrderedDict((("condition", condition), ("expression", str(threshold))))


def _action_document(action):
    return collections.OrderedDict((("action", action), ("expression", "")))


def _sum(progress_rows):
    figures = collections.OrderedDict((key, 0) for key in engine.PROGRESS_KEYS)
    for row in progress_rows:
        for key, count in row.items():
            figures[key] += count
    return figures


def rollout_document(base, rollout, full=True, groups=None, counts=None):
    """A rollout as hawkBit writes it; `full` adds the counts per status and the verbs' links
    (a single rollout, and lists with representation=full)."""
    path = "rollouts/%d" % rollout.id
    if groups is None:
        groups = list(RolloutGroup.select().where(RolloutGroup.rollout == rollout.id))
    if counts is None:
        counts = engine.action_counts(rollout.id)
    per_group = [engine.progress(counts.get(group.id, {}), group.status) for group in groups]
    flow = tenant.settings()["user.confirmation.flow.enabled"]
    document = collections.OrderedDict(audit_fields(rollout))
    document.update({
        "id": rollout.id, "name": rollout.name, "description": rollout.description,
        "targetFilterQuery": rollout.target_filter_query,
        "distributionSetId": rollout.distribution_set_id,
        "status": rollout.status.lower(),
        "totalTargets": sum(sum(row.values()) for row in per_group),
        "totalGroups": len(groups),
        "deleted": bool(rollout.deleted),
        "type": FORCE_TYPES.get(rollout.action_type),
        "forcetime": rollout.forced_time if rollout.action_type == t.TIMEFORCED else None,
        "weight": 1000 if rollout.weight is None else rollout.weight,
        "confirmationRequired": bool(rollout.confirmation_required) if flow else None,
        "startAt": rollout.start_at,
        "approvalRemark": rollout.approval_remark,
        "approveDecidedBy": rollout.approval_decided_by,
    })
    links = collections.OrderedDict((("self", link(base, path)),))
    if full:
        document["totalTargetsPerStatus"] = _sum(per_group)
        for verb in ("start", "pause", "resume", "triggerNextGroup", "approve", "deny"):
            links[verb] = link(base, "%s/%s" % (path, verb))
        links["groups"] = link(base, path + "/deploygroups?offset=0&limit=50")
        distribution_set = rollout.distribution_set
        links["distributionset"] = link(
            base, "distributionsets/%d" % distribution_set.id,
            name="%s:%s" % (distribution_set.name, distribution_set.version))
    document["_links"] = links
    return clean(document)


def group_document(base, group, counter):
    flow = tenant.settings()["user.confirmation.flow.enabled"]
    figures = engine.progress(counter, group.status)
    document = collections.OrderedDict(audit_fields(group))
    document.update({
        "id": group.id, "name": group.name, "description": group.description,
        "status": group.status.lower(),
        "totalTargets": sum(figures.values()),
        "totalTargetsPerStatus": figures,
        "targetFilterQuery": group.target_filter_query or "",
        "targetPercentage": group.target_percentage,
        "successCondition": _condition_document(group.success_condition,
                                                group.success_threshold),
        "successAction": _action_document(group.success_action),
        "errorCondition": _condition_document(group.error_condition, group.error_threshold),
        "errorAction": _action_document(group.error_action),
        "confirmationRequired": bool(group.confirmation_required) if flow else None,
        "_links": {"self": link(base, "rollouts/%d/deploygroups/%d"
                                % (group.rollout_id, group.id))},
    })
    return clean(document)


def _rollout(rollout_id):
    return get_existing(Rollout, Rollout.id == rollout_id, "Rollout", rollout_id)


def _group(rollout_id, group_id):
    _rollout(rollout_id)
    return get_existing(RolloutGroup, (RolloutGroup.id == group_id)
                        & (RolloutGroup.rollout == rollout_id), "RolloutGroup", group_id)


def list_rollouts(base, q=None, sort=None, offset=None, limit=None, full=False):
    """Rollouts that are not deleted; `full` (representation=full) adds the counts and the
    verbs' links, which the compact default leaves out as hawkBit does."""
    rows, total = query.page(Rollout.select().where(~Rollout.deleted), "rollouts", q=q,
                             sort=sort, offset=offset, limit=limit)
    return paged([rollout_document(base, row, full=full) for row in rows], total)


def get_rollout(base, rollout_id):
    return rollout_document(base, _rollout(rollout_id))


def list_groups(base, rollout_id, q=None, sort=None, offset=None, limit=None):
    _rollout(rollout_id)
    select = RolloutGroup.select().where(RolloutGroup.rollout == rollout_id)
    rows, total = query.page(select, "rolloutgroups", q=q, sort=sort, offset=offset,
                             limit=limit)
    counts = engine.action_counts(rollout_id)
    return paged([group_document(base, row, counts.get(row.id, {})) for row in rows], total)


def get_group(base, rollout_id, group_id):
    group = _group(rollout_id, group_id)
    return group_document(base, group, engine.action_counts(rollout_id).get(group.id, {}))


def group_targets(base, rollout_id, group_id, q=None, sort=None, offset=None, limit=None):
    """The targets of a group, in the order they joined it."""
    group = _group(rollout_id, group_id)
    select = Target.select().join(Action, on=(Action.target == Target.id)).where(
        Action.rollout_group == group.id)
    now = now_ms()
    rows, total = query.page(select, "targets", q=q, sort=sort, offset=offset, limit=limit,
                             default_order=[Action.id], now=now)
    settings = tenant.settings()
    return paged([target_document(base, row, settings=settings, now=now) for row in rows],
                 total)


# --- reading a request -----------------------------------------------------------------------

def _name(value, required=True):
    name = as_str(value, "name", required=required, max_length=MAX_NAME)
    if name is not None and not name.strip():
        raise ConstraintViolation("name must not be blank.", {"field": "name"})
    return name


def _query(value, field):
    """A target query the rules accept; a rollout without one is hawkBit's rsqlParamSyntax.
    At most as long as a target filter's query (hawkBit keeps both in one column size): it
    is evaluated inside the creating write transaction, which every device's feedback waits
    for, so an unbounded one could hold the writer for seconds."""
    text = as_str(value, field, max_length=filters.MAX_QUERY)
    if text is None or not text.strip():
        raise query.RsqlSyntax("A rollout needs a %s." % field)
    query.filter_expression("targets", text)
    return text


def _threshold(value, field):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ConstraintViolation("%s must be a number from 0 to 100." % field,
                                      {"field": field})
    else:
        raise BodyNotReadable("Cannot read a number for field '%s'." % field)
    if number != number or not 0 <= number <= 100:
        raise ConstraintViolation("%s must be a number from 0 to 100." % field,
                                  {"field": field})
    return int(math.ceil(number))


def _condition(value, field, default):
    """A success or error condition: THRESHOLD with a percentage (the only kind there is)."""
    body = as_object(value, field)
    if body is None:
        return default
    kind = (as_str(body.get("condition"), field + ".condition") or engine.THRESHOLD).upper()
    if kind != engine.THRESHOLD:
        raise BodyNotReadable("Unknown %s '%s'." % (field, body.get("condition")))
    expression = body.get("expression")
    if expression is None:
        return Condition(kind, default.threshold)
    return Condition(kind, _threshold(expression, field + ".expression"))


def _reaction(value, field, only, default):
    """A success or error action: NEXTGROUP and PAUSE are the ones hawkBit offers."""
    body = as_object(value, field)
    if body is None or body.get("action") is None:
        return default
    name = as_str(body.get("action"), field + ".action").upper()
    if name != only:
        raise BodyNotReadable("Unknown %s '%s'." % (field, body.get("action")))
    return name


def _percentage(value, field):
    if isinstance(value, bool):
        raise BodyNotReadable("Cannot read a number for field '%s'." % field)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise BodyNotReadable("Cannot read a number for field '%s'." % field)
    if not isinstance(value, (int, float)):
        raise BodyNotReadable("Cannot read a number for field '%s'." % field)
    if value != value or not 1 <= value <= 100:
        raise ConstraintViolation("%s must be from 1 to 100 (got %s)." % (field, value),
                                  {"field": field})
    return float(value)


def _parse(body):
    body = as_object(body, "rollout", required=True)
    name = _name(body.get("name"))
    description = as_str(body.get("description"), "description", max_length=MAX_DESCRIPTION)
    set_id = as_int(body.get("distributionSetId"), "distributionSetId", required=True)
    text = _query(body.get("targetFilterQuery"), "targetFilterQuery")
    action_type = t.FORCED
    if body.get("type") is not None:
        type_name = as_str(body.get("type"), "type").strip().lower()
        if type_name not in ACTION_TYPES:
            raise BodyNotReadable("Unknown action type '%s'." % body.get("type"))
        action_type = ACTION_TYPES[type_name]
    forced_time = as_int(body.get("forcetime"), "forcetime", minimum=0)
    weight = as_int(body.get("weight"), "weight", minimum=0, maximum=1000)
    confirmation = as_bool(body.get("confirmationRequired"), "confirmationRequired")
    start_at = as_int(body.get("startAt"), "startAt")
    default_success = _condition(body.get("successCondition"), "successCondition",
                                 Condition(engine.THRESHOLD, DEFAULT_THRESHOLD))
    default_error = _condition(body.get("errorCondition"), "errorCondition",
                               Condition(engine.THRESHOLD, DEFAULT_THRESHOLD))
    success_action = _reaction(body.get("successAction"), "successAction", engine.NEXTGROUP,
                               engine.NEXTGROUP)
    error_action = _reaction(body.get("errorAction"), "errorAction", engine.PAUSE,
                             engine.PAUSE)
    amount = as_int(body.get("amountGroups"), "amountGroups")
    group_bodies = as_list(body.get("groups"), "groups")
    if amount is not None and group_bodies is not None:
        raise ConstraintViolation("Give either amountGroups or groups, not both.",
                                  {"field": "groups"})
    if group_bodies is not None and not group_bodies:
        raise ConstraintViolation("groups must not be empty.", {"field": "groups"})
    if amount is None and group_bodies is None:
        amount = 1
    if amount is not None and amount < 1:
        raise ConstraintViolation("amountGroups must be at least 1.", {"field": "amountGroups"})
    if (amount or len(group_bodies)) > MAX_GROUPS:
        raise QuotaExceeded("Quota exceeded: a rollout may have at most %d groups."
                            % MAX_GROUPS)
    if group_bodies is None:
        groups = [GroupSpec("group-%d" % (index + 1), None, None, None, default_success,
                            success_action, default_error, error_action, confirmation)
                  for index in range(amount)]
    else:
        groups = []
        for index, item in enumerate(group_bodies):
            item = as_object(item, "groups[%d]" % index, required=True)
            field = "groups[%d]." % index
            group_query = item.get("targetFilterQuery")
            if group_query is not None and as_str(group_query, field + "targetFilterQuery"):
                group_query = _query(group_query, field + "targetFilterQuery")
            else:
                group_query = None
            percentage = item.get("targetPercentage")
            groups.append(GroupSpec(
                _name(item.get("name"), required=False) or "group-%d" % (index + 1),
                as_str(item.get("description"), field + "description",
                       max_length=MAX_DESCRIPTION),
                group_query,
                100.0 if percentage is None else _percentage(percentage,
                                                             field + "targetPercentage"),
                _condition(item.get("successCondition"), field + "successCondition",
                           default_success),
                _reaction(item.get("successAction"), field + "successAction", engine.NEXTGROUP,
                          success_action),
                _condition(item.get("errorCondition"), field + "errorCondition",
                           default_error),
                _reaction(item.get("errorAction"), field + "errorAction", engine.PAUSE,
                          error_action),
                as_bool(item.get("confirmationRequired"), field + "confirmationRequired")))
    return RolloutSpec(name, description, set_id, text, action_type, forced_time, weight,
                       confirmation, start_at, amount, groups)


# --- creation --------------------------------------------------------------------------------

def _check_unique(name, except_id=None):
    select = Rollout.select().where(Rollout.name == name)
    if except_id is not None:
        select = select.where(Rollout.id != except_id)
    if select.exists():
        raise EntityAlreadyExists("A rollout named '%s' exists already." % name)


def _matching(text, distribution_set, now, within=None):
    """Ids of the targets `text` matches that may take the set's type, in creation order."""
    select = Target.select(Target.id).where(
        ~assignments.incompatible_with(distribution_set.set_type_id))
    expression = query.filter_expression("targets", text, now=now)
    if expression is not None:
        select = select.where(expression)
    ids = [row.id for row in select.order_by(Target.id)]
    if within is not None:
        ids = [target_id for target_id in ids if target_id in within]
    return ids


def _split(spec, distribution_set, now):
    """[(group spec with its percentage, [target ids])]: `amountGroups` splits the matches
    evenly (the first groups take one more when it does not divide); explicit groups each
    take their percentage (rounded up) of the matches of their own query not already in an
    earlier group, and must leave no match out."""
    matches = _matching(spec.query, distribution_set, now)
    if not matches:
        raise ConstraintViolation("The rollout's targetFilterQuery matches no target that "
                                  "can take the distribution set.",
                                  {"field": "targetFilterQuery"})
    if spec.amount is not None:
        size, extra = divmod(len(matches), spec.amount)
        split, start = [], 0
        for index, group in enumerate(spec.groups):
            count = size + (1 if index < extra else 0)
            remaining = len(matches) - start
            percentage = 100.0 if not remaining else round(count * 100.0 / remaining, 2)
            split.append((group._replace(percentage=percentage),
                          matches[start:start + count]))
            start += count
        return split
    remaining = list(matches)
    split = []
    for group in spec.groups:
        if group.query is None:
            pool = remaining
        else:
            both = "(%s);(%s)" % (spec.query, group.query)
            pool = _matching(both, distribution_set, now, within=set(remaining))
        count = int(math.ceil(len(pool) * group.percentage / 100.0))
        taken = pool[:count]
        chosen = set(taken)
        remaining = [target_id for target_id in remaining if target_id not in chosen]
        split.append((group, taken))
    if remaining:
        raise ConstraintViolation(
            "The groups leave %d of the %d targets of the rollout out."
            % (len(remaining), len(matches)), {"field": "groups"})
    return split


def _create(spec, user, now):
    """The rollout of `spec`, its groups and their SCHEDULED actions (the caller holds the
    write transaction: a failed check leaves nothing behind)."""
    _check_unique(spec.name)
    distribution_set = assignments.assignable_set(spec.set_id)
    split = _split(spec, distribution_set, now)
    for group, target_ids in split:
        if len(target_ids) > MAX_TARGETS_PER_GROUP:
            raise QuotaExceeded("Quota exceeded: group '%s' would have %d targets; the most "
                                "is %d." % (group.name, len(target_ids),
                                            MAX_TARGETS_PER_GROUP))
    settings = tenant.settings()
    confirmation = spec.confirmation
    if confirmation is None:
        confirmation = settings["user.confirmation.flow.enabled"]
    audit = dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)
    rollout = Rollout.create(
        name=spec.name, description=spec.description, distribution_set=distribution_set,
        target_filter_query=spec.query,
        status=(engine.WAITING_FOR_APPROVAL if settings["rollout.approval.enabled"]
                else engine.READY),
        action_type=spec.action_type,
        # As an assignment: a timeforced action without a time is forced from the start.
        forced_time=(spec.forced_time or 0) if spec.action_type == t.TIMEFORCED else None,
        weight=spec.weight, confirmation_required=bool(confirmation), start_at=spec.start_at,
        **audit)
    for group, target_ids in split:
        row = RolloutGroup.create(
            rollout=rollout, name=group.name, description=group.description,
            status=engine.GROUP_READY, target_filter_query=group.query,
            target_percentage=group.percentage,
            success_condition=group.success.condition,
            success_threshold=group.success.threshold, success_action=group.success_action,
            error_condition=group.error.condition, error_threshold=group.error.threshold,
            error_action=group.error_action,
            confirmation_required=bool(confirmation if group.confirmation is None
                                       else group.confirmation), **audit)
        _schedule(rollout, row, target_ids, user, now)
    return rollout


def _schedule(rollout, group, target_ids, user, now):
    """One SCHEDULED, inactive action per target of the group, each with its first entry."""
    audit = dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)
    rows = [dict(target=target_id, distribution_set=rollout.distribution_set_id,
                 action_type=rollout.action_type, forced_time=rollout.forced_time,
                 weight=rollout.weight, status=t.SCHEDULED, active=False, revision=0,
                 initiated_by=user, rollout=rollout.id, rollout_group=group.id, **audit)
            for target_id in target_ids]
    for start in range(0, len(rows), INSERT_ROWS):
        Action.insert_many(rows[start:start + INSERT_ROWS]).execute()
    messages = ActionStatus.messages.db_value([SCHEDULED_LINE % (rollout.name, group.name)])
    database.execute_sql(
        'INSERT INTO "action_status" ("action_id", "status", "timestamp", "reported_at", '
        '"created_by", "code", "messages") SELECT "id", ?, ?, ?, ?, NULL, ? FROM "action" '
        'WHERE "rollout_group_id" = ?', (t.SCHEDULED, now, now, user, messages, group.id))


def create_rollout(base, body, user):
    """Create a rollout from a single JSON object: 201 with the rollout, READY (or
    WAITING_FOR_APPROVAL when rollout.approval.enabled)."""
    spec = _parse(body)
    with write():
        rollout = _create(spec, user, now_ms())
    engine.scheduler.wake()  # a startAt already due
    return rollout_document(base, rollout)


def update_rollout(base, rollout_id, body, user):
    """Rename or describe a rollout (only `name` and `description` change)."""
    body = as_object(body, "rollout", required=True)
    name = _name(body.get("name"), required=False)
    description = as_str(body.get("description"), "description", max_length=MAX_DESCRIPTION)
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted:
            # As hawkBit: a soft-deleted rollout stays readable, never changeable.
            raise EntityReadOnly("Rollout %d is soft deleted and cannot be changed."
                                 % rollout.id)
        if name is not None and name != rollout.name:
            _check_unique(name, except_id=rollout.id)
            rollout.name = name
        if description is not None:
            rollout.description = description
        rollout.last_modified_at = now_ms()
        rollout.last_modified_by = user
        rollout.save()
    return rollout_document(base, rollout)


# --- the operator's verbs --------------------------------------------------------------------

def _refuse(rollout, verb):
    raise RolloutIllegalState("Rollout %d is %s: %s is not possible now."
                              % (rollout.id, rollout.status.lower(), verb))


def _verb(rollout_id, event, verb, user, **fields):
    """One status move of the life cycle table, or 404 / 400 illegalState."""
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted or not engine.move(rollout.id, event, now_ms(), user, **fields):
            _refuse(rollout, verb)
    engine.scheduler.wake()


def start(rollout_id, user):
    _verb(rollout_id, "start", "start", user)


def pause(rollout_id, user):
    _verb(rollout_id, "pause", "pause", user)


def resume(rollout_id, user):
    _verb(rollout_id, "resume", "resume", user)


def approve(rollout_id, remark, user):
    _verb(rollout_id, "approve", "approve", user,
          approval_remark=as_str(remark, "remark", max_length=MAX_REMARK),
          approval_decided_by=user)


def deny(rollout_id, remark, user):
    _verb(rollout_id, "deny", "deny", user,
          approval_remark=as_str(remark, "remark", max_length=MAX_REMARK),
          approval_decided_by=user)


def stop(rollout_id, user):
    """Stop: the actions not started yet are cancelled; those running go on."""
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted or not engine.stop(rollout, now_ms(), user):
            _refuse(rollout, "stop")


def trigger_next_group(rollout_id, user):
    """Start the next group now, whatever the running group's success condition says."""
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted or not engine.allowed("trigger_next_group", rollout.status):
            _refuse(rollout, "triggerNextGroup")
        following = engine.next_scheduled_group(rollout.id)
        if following is None:
            raise RolloutIllegalState("Rollout %d has no group left to start." % rollout.id)
        engine.start_group(rollout, following, now_ms())
    engine.scheduler.wake()


def retry(base, rollout_id, user):
    """A new rollout, `<name>_retry`, of one group with the targets whose action of this
    rollout ended in error; this one must be finished or stopped."""
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted or not engine.allowed("retry", rollout.status):
            _refuse(rollout, "retry")
        if not Action.select().where((Action.rollout == rollout.id)
                                     & (Action.status == t.ERROR)).exists():
            raise ConstraintViolation("Rollout %d has no failed target to retry."
                                      % rollout.id)
        first = (RolloutGroup.select().where(RolloutGroup.rollout == rollout.id)
                 .order_by(RolloutGroup.id).first())
        spec = RolloutSpec(
            (rollout.name + "_retry")[:MAX_NAME], rollout.description,
            rollout.distribution_set_id,
            "failedrollout==%d" % rollout.id,
            rollout.action_type, rollout.forced_time, rollout.weight,
            rollout.confirmation_required, None, 1,
            [GroupSpec("group-1", None, None, 100.0,
                       Condition(first.success_condition, first.success_threshold),
                       first.success_action,
                       Condition(first.error_condition, first.error_threshold),
                       first.error_action, rollout.confirmation_required)])
        created = _create(spec, user, now_ms())
    return rollout_document(base, created)


def delete(rollout_id, user):
    """Delete: the actions not started yet go; a rollout whose other actions remain is kept
    as `deleted` (readable by id, out of lists), one without any is removed (then 404)."""
    with write():
        rollout = _rollout(rollout_id)
        if rollout.deleted:
            return
        Action.delete().where((Action.rollout == rollout.id)
                              & (Action.status == t.SCHEDULED)).execute()
        if Action.select().where(Action.rollout == rollout.id).exists():
            engine.move(rollout.id, "delete", now_ms(), user, deleted=True)
            engine.move_groups(RolloutGroup.rollout == rollout.id, "stopped", now_ms(), user)
        else:
            RolloutGroup.delete().where(RolloutGroup.rollout == rollout.id).execute()
            rollout.delete_instance()
