"""Target filters as Management API documents (mgmt contract §12.1): named target queries, and
the distribution set each may auto-assign (`autoAssignDS`).

A filter's query is a target query of storage.query, checked when it is stored. Giving a
filter a set (or a new query while it has one) makes it check every target again from the
start: storage.autoassign does the assigning, in the background. Functions take plain values
and return plain documents, as storage.software does.
"""

import urllib.parse

from storage import assignments, autoassign, query, tenant
from storage import transitions as t
from storage.coerce import as_bool, as_int, as_object, as_str
from storage.db import write
from storage.ddi import now_ms
from storage.documents import audit_fields, link, paged
from storage.errors import (BodyNotReadable, ConstraintViolation, EntityAlreadyExists,
                            InvalidAutoAssignActionType)
from storage.models import DistributionSet, TargetFilter, get_existing

MAX_NAME = 128
MAX_QUERY = 1024

# The action types auto-assignment takes, by their Management API names.
ACTION_TYPES = {"forced": t.FORCED, "soft": t.SOFT, "downloadonly": t.DOWNLOAD_ONLY}
ACTION_TYPE_NAMES = {value: name for name, value in ACTION_TYPES.items()}
# hawkBit's default weight of an action, stored when the request gives none.
DEFAULT_WEIGHT = 1000

# What a filter without auto-assignment holds (also after its set was deleted).
NO_AUTO_ASSIGNMENT = {
    TargetFilter.auto_assign_ds: None, TargetFilter.auto_assign_action_type: None,
    TargetFilter.auto_assign_weight: None, TargetFilter.auto_assign_confirmation: False,
    TargetFilter.auto_assign_initiated_by: None, TargetFilter.checked_change: 0,
    TargetFilter.full_pass_at: None,
}


def filter_document(base, target_filter, single=False, set_link=False):
    """A filter as hawkBit writes it: the auto-assignment fields are always there, null when
    the filter has none. `single`: the autoAssignDS link too (a filter on its own); `set_link`:
    a `DS` link to its set in the set list (representation=full, and a single GET)."""
    path = "targetfilters/%d" % target_filter.id
    links = {"self": link(base, path)}
    if single:
        links["autoAssignDS"] = link(base, path + "/autoAssignDS")
    set_id = target_filter.auto_assign_ds_id
    if set_link and set_id is not None:
        distribution_set = target_filter.auto_assign_ds
        wanted = "name==%s;version==%s" % (distribution_set.name, distribution_set.version)
        links["DS"] = link(base, "distributionsets?q=%s&offset=0&limit=50"
                           % urllib.parse.quote(wanted, safe="=;*"))
    flow = tenant.settings()["user.confirmation.flow.enabled"]
    document = audit_fields(target_filter)
    document.update({
        "id": target_filter.id, "name": target_filter.name, "query": target_filter.query,
        "autoAssignDistributionSet": set_id,
        "autoAssignActionType": ACTION_TYPE_NAMES.get(target_filter.auto_assign_action_type),
        "autoAssignWeight": target_filter.auto_assign_weight,
        # Shown only while the confirmation flow is on (hawkBit).
        "confirmationRequired": target_filter.auto_assign_confirmation
        if set_id is not None and flow else None,
        "_links": links,
    })
    return document


def _filter(filter_id):
    return get_existing(TargetFilter, TargetFilter.id == filter_id, "TargetFilterQuery",
                        filter_id)


def _name(value, required):
    return as_str(value, "name", required=required, max_length=MAX_NAME)


def _query(value, required):
    """A filter's query: a target query the rules accept (else 400 rsqlParamSyntax or
    rsqlInvalidField)."""
    text = as_str(value, "query", required=required, max_length=MAX_QUERY)
    if text is not None:
        if not text.strip():
            raise ConstraintViolation("query must not be blank.", {"field": "query"})
        query.filter_expression("targets", text)
    return text


def _check_unique(name, except_id=None):
    select = TargetFilter.select().where(TargetFilter.name == name)
    if except_id is not None:
        select = select.where(TargetFilter.id != except_id)
    if select.exists():
        raise EntityAlreadyExists("A target filter named '%s' exists already." % name)


def _audit(row, now, user):
    row.last_modified_at = now
    row.last_modified_by = user


def list_filters(base, q=None, sort=None, offset=None, limit=None, full=False):
    rows, total = query.page(TargetFilter.select(), "targetfilters", q=q, sort=sort,
                             offset=offset, limit=limit)
    return paged([filter_document(base, row, set_link=full) for row in rows], total)


def get_filter(base, filter_id):
    return filter_document(base, _filter(filter_id), single=True, set_link=True)


def create_filter(base, body, user):
    """Create one filter from `{"name", "query"}` (a single object, not an array)."""
    body = as_object(body, "targetfilter", required=True)
    name, text = _name(body.get("name"), True), _query(body.get("query"), True)
    now = now_ms()
    with write():
        _check_unique(name)
        target_filter = TargetFilter.create(name=name, query=text, created_at=now,
                                            created_by=user, last_modified_at=now,
                                            last_modified_by=user)
    return filter_document(base, target_filter, single=True)


def update_filter(base, filter_id, body, user):
    """Change the name or the query (those given); a new query of a filter with an
    auto-assignment checks every target again."""
    body = as_object(body, "targetfilter", required=True)
    name, text = _name(body.get("name"), False), _query(body.get("query"), False)
    if name is not None and not name.strip():
        raise ConstraintViolation("name must not be blank.", {"field": "name"})
    with write():
        target_filter = _filter(filter_id)
        if name is not None and name != target_filter.name:
            _check_unique(name, except_id=target_filter.id)
            target_filter.name = name
        recheck = text is not None and text != target_filter.query \
            and target_filter.auto_assign_ds_id is not None
        if text is not None:
            target_filter.query = text
        now = now_ms()
        if recheck:
            target_filter.checked_change = 0
            target_filter.full_pass_at = now
        _audit(target_filter, now, user)
        target_filter.save()
    if recheck:
        autoassign.scheduler.wake()
    return filter_document(base, target_filter, single=True)


def delete_filter(filter_id):
    with write():
        _filter(filter_id).delete_instance()


def auto_assign_set_id(filter_id):
    """The id of the set a filter auto-assigns, or None."""
    return _filter(filter_id).auto_assign_ds_id


def _auto_assignment(body):
    """(set id, action type, weight, confirmationRequired or None) of an autoAssignDS body."""
    body = as_object(body, "autoassignment", required=True)
    set_id = as_int(body.get("id"), "id", required=True)
    action_type = t.FORCED
    if body.get("type") is not None:
        name = as_str(body.get("type"), "type").strip().lower()
        if name == "timeforced":
            raise InvalidAutoAssignActionType()
        if name not in ACTION_TYPES:
            raise BodyNotReadable("Unknown action type '%s'." % body.get("type"))
        action_type = ACTION_TYPES[name]
    weight = as_int(body.get("weight"), "weight", minimum=0, maximum=1000)
    confirmation = as_bool(body.get("confirmationRequired"), "confirmationRequired")
    return set_id, action_type, weight, confirmation


def set_auto_assign(base, filter_id, body, user):
    """Give the filter a set to assign to every target it matches (replacing any set it had):
    the set must be assignable, and is locked as by an assignment."""
    set_id, action_type, weight, confirmation = _auto_assignment(body)
    now = now_ms()
    with write():
        target_filter = _filter(filter_id)
        distribution_set = assignments.assignable_set(set_id)
        assignments.lock_implicitly(distribution_set)
        if confirmation is None:
            confirmation = tenant.settings()["user.confirmation.flow.enabled"]
        target_filter.auto_assign_ds = distribution_set
        target_filter.auto_assign_action_type = action_type
        target_filter.auto_assign_weight = DEFAULT_WEIGHT if weight is None else weight
        target_filter.auto_assign_confirmation = bool(confirmation)
        target_filter.auto_assign_initiated_by = user
        target_filter.checked_change = 0
        target_filter.full_pass_at = now
        _audit(target_filter, now, user)
        target_filter.save()
    autoassign.scheduler.wake()
    return filter_document(base, target_filter, single=True)


def remove_auto_assign(filter_id, user):
    with write():
        target_filter = _filter(filter_id)
        changes = dict(NO_AUTO_ASSIGNMENT)
        changes.update({TargetFilter.last_modified_at: now_ms(),
                        TargetFilter.last_modified_by: user})
        TargetFilter.update(changes).where(TargetFilter.id == target_filter.id).execute()


def forget_set(set_id):
    """A deleted set is auto-assigned no more (inside the delete's transaction)."""
    TargetFilter.update(NO_AUTO_ASSIGNMENT).where(
        TargetFilter.auto_assign_ds == set_id).execute()


def filters_of_set(base, set_id, q=None, sort=None, offset=None, limit=None):
    """The filters that auto-assign a set (`/distributionsets/{id}/autoAssignTargetFilters`)."""
    get_existing(DistributionSet, DistributionSet.id == set_id, "DistributionSet", set_id)
    select = TargetFilter.select().where(TargetFilter.auto_assign_ds == set_id)
    rows, total = query.page(select, "targetfilters", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([filter_document(base, row) for row in rows], total)
