"""Target types (mgmt-contract §12.4): kinds of devices, each with the distribution set types
its devices can install, and the type of each target.

A target without a type takes any set; a target with one takes only sets whose type its type
lists as compatible. That rule is `storage.assignments.check_target_types`, which every way of
assigning a set calls. Here: the types themselves, their compatible set types, and giving a
target a type. Documents are plain dicts without null values; writes run inside
`storage.db.write()`.
"""

from storage import query
from storage.coerce import as_id_list, as_int, as_list, as_object, as_str
from storage.db import write
from storage.ddi import find_target, now_ms
from storage.documents import audit_fields, clean, link, paged
from storage.errors import (ConstraintViolation, EntitiesNotFound, EntityAlreadyExists,
                            EntityNotFound, QuotaExceeded, TargetTypeInUse,
                            TargetTypeKeyOrNameRequired)
from storage.models import DistributionSetType, Target, TargetType, TargetTypeSetType
from storage.software import set_type_document

MAX_KEY = 64
MAX_NAME = 128
MAX_DESCRIPTION = 512
MAX_COLOUR = 16
# hawkBit's quota: distribution set types per target type.
MAX_SET_TYPES_PER_TARGET_TYPE = 50
# `"targetType": -1` in a target update takes the type away (hawkBit's convention).
NO_TYPE = -1


def _audit(now, user):
    return dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)


def document(base, target_type, full=False):
    path = "targettypes/%d" % target_type.id
    links = {"self": link(base, path)}
    if full:
        links["compatibledistributionsettypes"] = link(base,
                                                       path + "/compatibledistributionsettypes")
    doc = audit_fields(target_type)
    doc.update({"id": target_type.id, "key": target_type.key, "name": target_type.name,
                "description": target_type.description, "colour": target_type.colour,
                # hawkBit's type documents carry the flag; target types are never soft-deleted.
                "deleted": False, "_links": links})
    return clean(doc)


def get_existing_type(type_id):
    target_type = TargetType.get_or_none(TargetType.id == type_id)
    if target_type is None:
        raise EntityNotFound("TargetType", type_id)
    return target_type


def _text(item, field, max_length):
    return as_str(item.get(field), field, max_length=max_length)


def _set_types(type_ids):
    found = {row.id: row for row in
             DistributionSetType.select().where(DistributionSetType.id.in_(type_ids))}
    missing = [type_id for type_id in type_ids if type_id not in found]
    if missing:
        raise EntitiesNotFound("DistributionSetType", missing)
    return [found[type_id] for type_id in type_ids]


def _check_unique(key=None, name=None, except_id=None):
    for field, value in (("key", key), ("name", name)):
        if value is None:
            continue
        select = TargetType.select().where(getattr(TargetType, field) == value)
        if except_id is not None:
            select = select.where(TargetType.id != except_id)
        if select.exists():
            raise EntityAlreadyExists("A target type with %s '%s' already exists."
                                      % (field, value))


def _check_quota(target_type, adding):
    present = {row.set_type_id for row in TargetTypeSetType.select().where(
        TargetTypeSetType.target_type == target_type.id)}
    total = len(present | set(adding))
    if total > MAX_SET_TYPES_PER_TARGET_TYPE:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d more DistributionSetType entities to TargetType "
            "'%d'. The maximum is %d." % (total - len(present), target_type.id,
                                          MAX_SET_TYPES_PER_TARGET_TYPE))


def _parse_new(item):
    item = as_object(item, "targettype", required=True)
    key = _text(item, "key", MAX_KEY)
    name = _text(item, "name", MAX_NAME)
    key = key if key is not None and key.strip() else None
    name = name if name is not None and name.strip() else None
    if key is None and name is None:
        raise TargetTypeKeyOrNameRequired("Key or name of the target type shall be specified!")
    compatible = item.get("compatibledistributionsettypes")
    return dict(key=key if key is not None else name, name=name if name is not None else key,
                description=_text(item, "description", MAX_DESCRIPTION),
                colour=_text(item, "colour", MAX_COLOUR),
                set_type_ids=[] if compatible is None
                else as_id_list(compatible, "compatibledistributionsettypes"))


def create_types(base, body, user):
    """Create target types from an array: all of them, or none."""
    specs = [_parse_new(item) for item in as_list(body, "targettypes", required=True)]
    now = now_ms()
    created = []
    with write():
        for spec in specs:
            set_type_ids = spec.pop("set_type_ids")
            set_types = _set_types(set_type_ids)
            # Rows are created as we go: a duplicate within the request is found too.
            _check_unique(spec["key"], spec["name"])
            target_type = TargetType.create(**dict(spec, **_audit(now, user)))
            _check_quota(target_type, set_type_ids)
            for set_type in set_types:
                TargetTypeSetType.create(target_type=target_type, set_type=set_type)
            created.append(target_type)
    return [document(base, target_type) for target_type in created]


def list_types(base, q=None, sort=None, offset=None, limit=None):
    rows, total = query.page(TargetType.select(), "targettypes", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([document(base, row) for row in rows], total)


def get_type(base, type_id):
    return document(base, get_existing_type(type_id), full=True)


def update_type(base, type_id, body, user):
    """Change name, description or colour; the key stays."""
    body = as_object(body, "targettype", required=True)
    name = _text(body, "name", MAX_NAME)
    if name is not None and not name.strip():
        raise ConstraintViolation("name must not be blank.", {"field": "name"})
    changes = {"name": name, "description": _text(body, "description", MAX_DESCRIPTION),
               "colour": _text(body, "colour", MAX_COLOUR)}
    with write():
        target_type = get_existing_type(type_id)
        _check_unique(name=name, except_id=target_type.id)
        for field, value in changes.items():
            if value is not None:
                setattr(target_type, field, value)
        target_type.last_modified_at = now_ms()
        target_type.last_modified_by = user
        target_type.save()
    return document(base, target_type, full=True)


def delete_type(type_id):
    with write():
        target_type = get_existing_type(type_id)
        if Target.select().where(Target.target_type == target_type.id).exists():
            raise TargetTypeInUse("Cannot delete target type that is in use")
        TargetTypeSetType.delete().where(
            TargetTypeSetType.target_type == target_type.id).execute()
        target_type.delete_instance()


# --- compatible distribution set types ------------------------------------------------------

def compatible_set_types(base, type_id):
    """A plain array of the set types the type's targets can install."""
    target_type = get_existing_type(type_id)
    rows = (DistributionSetType.select()
            .join(TargetTypeSetType, on=(TargetTypeSetType.set_type == DistributionSetType.id))
            .where(TargetTypeSetType.target_type == target_type.id)
            .order_by(DistributionSetType.id))
    return [set_type_document(base, row) for row in rows]


def add_compatible_set_types(type_id, body, user):
    set_type_ids = as_id_list(body, "distributionsettypes")
    with write():
        set_types = _set_types(set_type_ids)
        target_type = get_existing_type(type_id)
        _check_quota(target_type, set_type_ids)
        for set_type in set_types:
            TargetTypeSetType.insert(target_type=target_type.id,
                                     set_type=set_type.id).on_conflict_ignore().execute()
        _touch(target_type, user)


def remove_compatible_set_type(type_id, set_type_id, user):
    with write():
        target_type = get_existing_type(type_id)
        if not DistributionSetType.select().where(DistributionSetType.id == set_type_id).exists():
            raise EntityNotFound("DistributionSetType", set_type_id)
        TargetTypeSetType.delete().where((TargetTypeSetType.target_type == target_type.id)
                                         & (TargetTypeSetType.set_type == set_type_id)).execute()
        _touch(target_type, user)


def _touch(target_type, user):
    TargetType.update(last_modified_at=now_ms(), last_modified_by=user).where(
        TargetType.id == target_type.id).execute()


# --- the type of a target ---------------------------------------------------------------------

def type_change(value):
    """What `targetType` in a target update asks for: None (leave it), NO_TYPE (take it away)
    or an existing type's id."""
    type_id = as_int(value, "targetType")
    if type_id is None or type_id == NO_TYPE:
        return type_id
    return get_existing_type(type_id).id


def target_type_fields(target):
    """`targetType` (the id) and `targetTypeName` of a target document; empty without one."""
    if target.target_type_id is None:
        return {}
    target_type = TargetType.get_or_none(TargetType.id == target.target_type_id)
    if target_type is None:
        return {}
    return {"targetType": target_type.id, "targetTypeName": target_type.name}


def _target(controller_id):
    target = find_target(controller_id)
    if target is None:
        raise EntityNotFound("Target", controller_id)
    return target


def assign_to_target(controller_id, body, user):
    """`POST /targets/{id}/targettype` with `{"id": typeId}`."""
    type_id = as_int(as_object(body, "targettype", required=True).get("id"), "id",
                     required=True)
    with write():
        target = _target(controller_id)
        target_type = get_existing_type(type_id)
        Target.update(target_type=target_type.id, last_modified_at=now_ms(),
                      last_modified_by=user).where(Target.id == target.id).execute()


def unassign_from_target(controller_id, user):
    with write():
        target = _target(controller_id)
        Target.update(target_type=None, last_modified_at=now_ms(),
                      last_modified_by=user).where(Target.id == target.id).execute()
