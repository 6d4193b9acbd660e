"""Creating, changing and deleting software module types and distribution set types
(mgmt-contract §8, the write half; reading them is `storage.software`).

hawkBit's rules: keys and names are unique, also against types marked deleted (a deleted type
keeps its key, as deleted modules and sets do). A type that something still uses is only marked
deleted: a module type that modules have or a set type names, a set type that sets have. Which
module types a set type requires or allows cannot change once sets of that type exist (403), as
that would make existing sets incomplete or hold modules their type no longer allows. Deleting a
set type also takes it off every target type's compatible list.
"""

from storage.coerce import as_id_list, as_int, as_list, as_object, as_str
from storage.db import write
from storage.ddi import now_ms
from storage.errors import (Deleted, EntitiesNotFound, EntityAlreadyExists, EntityNotFound,
                            EntityReadOnly, QuotaExceeded)
from storage.models import (DistributionSet, DistributionSetType, DistributionSetTypeModule,
                            SoftwareModule, SoftwareModuleType, TargetTypeSetType)
from storage.software import module_type_document, set_type_document

MAX_KEY = 64
MAX_NAME = 128
MAX_DESCRIPTION = 512
MAX_COLOUR = 16
# hawkBit's quota: module types per distribution set type.
MAX_MODULE_TYPES_PER_SET_TYPE = 50


def _audit(now, user):
    return dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)


def _required_text(item, field, max_length):
    text = as_str(item.get(field), field, required=True, max_length=max_length)
    return text.strip()


def _look_and_feel(item):
    """description and colour, the fields every type may change."""
    return {"description": as_str(item.get("description"), "description",
                                   max_length=MAX_DESCRIPTION),
            "colour": as_str(item.get("colour"), "colour", max_length=MAX_COLOUR)}


def _check_unique(model, entity, key, name):
    for field, value in (("key", key), ("name", name)):
        if model.select().where(getattr(model, field) == value).exists():
            raise EntityAlreadyExists("A %s with %s '%s' already exists." % (entity, field, value))


def _existing(model, entity, type_id):
    row = model.get_or_none(model.id == type_id)
    if row is None:
        raise EntityNotFound(entity, type_id)
    return row


def _live(model, entity, type_id):
    """A type that may still be changed: it exists and is not marked deleted."""
    row = _existing(model, entity, type_id)
    if row.deleted:
        raise Deleted("%s %d is deleted." % (entity, row.id))
    return row


def _change_look_and_feel(row, body, user):
    for field, value in _look_and_feel(as_object(body, "type", required=True)).items():
        if value is not None:
            setattr(row, field, value)
    row.last_modified_at = now_ms()
    row.last_modified_by = user
    row.save()


# --- software module types --------------------------------------------------------------------

def _parse_module_type(item):
    item = as_object(item, "softwaremoduletype", required=True)
    spec = dict(key=_required_text(item, "key", MAX_KEY),
                name=_required_text(item, "name", MAX_NAME),
                max_assignments=as_int(item.get("maxAssignments"), "maxAssignments", minimum=1),
                min_artifacts=as_int(item.get("minArtifacts"), "minArtifacts", minimum=0),
                **_look_and_feel(item))
    spec["max_assignments"] = 1 if spec["max_assignments"] is None else spec["max_assignments"]
    spec["min_artifacts"] = 0 if spec["min_artifacts"] is None else spec["min_artifacts"]
    return spec


def create_module_types(base, body, user):
    """Create module types from an array: all of them, or none."""
    specs = [_parse_module_type(item)
             for item in as_list(body, "softwaremoduletypes", required=True)]
    now = now_ms()
    created = []
    with write():
        for spec in specs:
            # Rows are created as we go: a duplicate within the request is found too.
            _check_unique(SoftwareModuleType, "software module type", spec["key"], spec["name"])
            created.append(SoftwareModuleType.create(**dict(spec, **_audit(now, user))))
    return [module_type_document(base, row) for row in created]


def update_module_type(base, type_id, body, user):
    """Change description and colour; key, name and the assignment rules stay."""
    with write():
        module_type = _live(SoftwareModuleType, "SoftwareModuleType", type_id)
        _change_look_and_feel(module_type, body, user)
    return module_type_document(base, module_type)


def delete_module_type(type_id):
    """Mark deleted while modules have the type or a set type names it, else delete."""
    with write():
        module_type = _existing(SoftwareModuleType, "SoftwareModuleType", type_id)
        in_use = (SoftwareModule.select().where(SoftwareModule.module_type == module_type.id)
                  .exists()
                  or DistributionSetTypeModule.select().where(
                      DistributionSetTypeModule.module_type == module_type.id).exists())
        if in_use:
            module_type.deleted = True
            module_type.save()
        else:
            module_type.delete_instance()


# --- distribution set types ---------------------------------------------------------------------

def _module_types(type_ids):
    found = {row.id for row in SoftwareModuleType.select(SoftwareModuleType.id).where(
        SoftwareModuleType.id.in_(type_ids))}
    missing = [type_id for type_id in type_ids if type_id not in found]
    if missing:
        raise EntitiesNotFound("SoftwareModuleType", missing)


def _check_module_type_quota(set_type_id, adding):
    present = {row.module_type_id for row in DistributionSetTypeModule.select().where(
        DistributionSetTypeModule.set_type == set_type_id)}
    total = len(present | set(adding))
    if total > MAX_MODULE_TYPES_PER_SET_TYPE:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d more SoftwareModuleType entities to "
            "DistributionSetType '%d'. The maximum is %d."
            % (total - len(present), set_type_id, MAX_MODULE_TYPES_PER_SET_TYPE))


def _put_module_types(set_type_id, type_ids, mandatory):
    """Require (or allow) these module types; one already in the other list moves."""
    for type_id in type_ids:
        DistributionSetTypeModule.insert(
            set_type=set_type_id, module_type=type_id, mandatory=mandatory).on_conflict(
            conflict_target=[DistributionSetTypeModule.set_type,
                             DistributionSetTypeModule.module_type],
            update={DistributionSetTypeModule.mandatory: mandatory}).execute()


def _parse_set_type(item):
    item = as_object(item, "distributionsettype", required=True)
    mandatory = [] if item.get("mandatorymodules") is None \
        else as_id_list(item["mandatorymodules"], "mandatorymodules", one_object=True)
    optional = [] if item.get("optionalmodules") is None \
        else as_id_list(item["optionalmodules"], "optionalmodules", one_object=True)
    return dict(key=_required_text(item, "key", MAX_KEY),
                name=_required_text(item, "name", MAX_NAME), **_look_and_feel(item)), \
        mandatory, [type_id for type_id in optional if type_id not in mandatory]


def create_set_types(base, body, user):
    """Create set types, with their mandatory and optional module types, all or none."""
    specs = [_parse_set_type(item)
             for item in as_list(body, "distributionsettypes", required=True)]
    now = now_ms()
    created = []
    with write():
        for fields, mandatory, optional in specs:
            _module_types(mandatory + optional)
            _check_unique(DistributionSetType, "distribution set type", fields["key"],
                          fields["name"])
            set_type = DistributionSetType.create(**dict(fields, **_audit(now, user)))
            _check_module_type_quota(set_type.id, mandatory + optional)
            _put_module_types(set_type.id, mandatory, True)
            _put_module_types(set_type.id, optional, False)
            created.append(set_type)
    return [set_type_document(base, row) for row in created]


def update_set_type(base, type_id, body, user):
    """Change description and colour; key and name stay."""
    with write():
        set_type = _live(DistributionSetType, "DistributionSetType", type_id)
        _change_look_and_feel(set_type, body, user)
    return set_type_document(base, set_type, full=True)


def _changeable_set_type(type_id):
    set_type = _live(DistributionSetType, "DistributionSetType", type_id)
    if DistributionSet.select().where(DistributionSet.set_type == set_type.id).exists():
        raise EntityReadOnly("Distribution set type %d is already assigned to distribution "
                             "sets and cannot be changed!" % set_type.id)
    return set_type


def _touch(set_type, user):
    DistributionSetType.update(last_modified_at=now_ms(), last_modified_by=user).where(
        DistributionSetType.id == set_type.id).execute()


def add_set_type_module_types(type_id, body, mandatory, user):
    """Require (`mandatory`) or allow module types: `{"id": n}` or an array of them."""
    type_ids = as_id_list(body, "softwaremoduletypes", one_object=True)
    with write():
        _module_types(type_ids)
        set_type = _changeable_set_type(type_id)
        _check_module_type_quota(set_type.id, type_ids)
        _put_module_types(set_type.id, type_ids, mandatory)
        _touch(set_type, user)


def remove_set_type_module_type(type_id, module_type_id, user):
    """Take a module type off the set type (hawkBit does so from either list)."""
    with write():
        set_type = _changeable_set_type(type_id)
        _existing(SoftwareModuleType, "SoftwareModuleType", module_type_id)
        DistributionSetTypeModule.delete().where(
            (DistributionSetTypeModule.set_type == set_type.id)
            & (DistributionSetTypeModule.module_type == module_type_id)).execute()
        _touch(set_type, user)


def delete_set_type(type_id):
    """Mark deleted while sets have the type, else delete; target types lose it either way."""
    with write():
        set_type = _existing(DistributionSetType, "DistributionSetType", type_id)
        TargetTypeSetType.delete().where(TargetTypeSetType.set_type == set_type.id).execute()
        if DistributionSet.select().where(DistributionSet.set_type == set_type.id).exists():
            set_type.deleted = True
            set_type.save()
            return
        DistributionSetTypeModule.delete().where(
            DistributionSetTypeModule.set_type == set_type.id).execute()
        set_type.delete_instance()

