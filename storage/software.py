"""The operator's software catalogue as Management API documents (mgmt contract §8 - §10).

Module types and set types (read), software modules with their metadata and artifacts,
distribution sets with their metadata and modules, and assigning sets to targets.

Every function takes plain values: ids, request bodies as parsed JSON values (validated and
coerced here), the base URL of the request (`base`, e.g. "http://localhost:8080") for links and
the authenticated user for audit fields. Documents are plain dicts without null values, times
in epoch milliseconds, enums in lower case. Writes run inside `storage.db.write()`.
"""

import collections
import unicodedata

from storage import assignments, filters, query, tenant
from storage.documents import audit_fields, clean, link, paged, segment
from storage import transitions as t
from storage.blobs import changing as blobs_changing
from storage.blobs import stage as stage_upload
from storage.coerce import as_bool, as_int, as_list, as_object, as_str
from storage.db import write
from storage.ddi import now_ms
from storage.errors import (BinaryDeleted, BodyNotReadable, ConstraintViolation, Deleted,
                            EncryptionNotSupported, EntityAlreadyExists, EntityNotFound,
                            InvalidMaintenanceSchedule, Locked, ModulesUnsupported,
                            MultiAssignment, QuotaExceeded)
from storage.models import (Action, Artifact, DistributionSet, DistributionSetMetadata,
                            DistributionSetModule, DistributionSetType, DistributionSetTypeModule,
                            SoftwareModule, SoftwareModuleMetadata, SoftwareModuleType, Target,
                            get_existing)


# Quotas (mgmt contract §15 item 10).
MAX_METADATA_ENTRIES = 100
MAX_ARTIFACTS_PER_MODULE = 50
MAX_MODULES_PER_SET = 100
MAX_TARGETS_PER_ASSIGNMENT = 5000

MAX_NAME = 128
MAX_VERSION = 64
MAX_DESCRIPTION = 512
MAX_VENDOR = 256
MAX_FILENAME = 256
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 4000

EXCLUDE_SOFT_DELETED = "EXCLUDE_SOFT_DELETED"
INCLUDE_SOFT_DELETED = "INCLUDE_SOFT_DELETED"
ONLY_SOFT_DELETED = "ONLY_SOFT_DELETED"

DEFAULT_SET_TYPE_KEY = "os_app"
DEFAULT_SET_TYPE_SETTING = "default.ds.type"
# hawkBit <= 0.9 accepted one module per legacy property on set creation.
LEGACY_MODULE_PROPERTIES = ("os", "runtime", "application")

ACTION_TYPES = {"soft": t.SOFT, "forced": t.FORCED, "timeforced": t.TIMEFORCED,
                "downloadonly": t.DOWNLOAD_ONLY}


# --- small helpers --------------------------------------------------------------------------

def _audit(now, user):
    return dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)


def _touch(row, now, user):
    row.last_modified_at = now
    row.last_modified_by = user




def _deleted_filter(select, field, mode):
    mode = EXCLUDE_SOFT_DELETED if mode is None else str(mode).strip().upper()
    if mode == EXCLUDE_SOFT_DELETED:
        return select.where(field == False)  # noqa: E712
    if mode == ONLY_SOFT_DELETED:
        return select.where(field == True)  # noqa: E712
    if mode == INCLUDE_SOFT_DELETED:
        return select
    raise BodyNotReadable("Unknown soft_deleted_mode '%s'." % mode)


def _text(value, field, required=False, max_length=None):
    """A string field; a required one must not be blank."""
    text = as_str(value, field, required=required, max_length=max_length)
    if required and (text is None or not text.strip()):
        raise ConstraintViolation("%s must not be empty." % field)
    return text


def _id_list(body, field):
    """`[{"id": n}, ...]` as a list of integers."""
    return [as_int(as_object(item, field, required=True).get("id"), field + ".id", required=True)
            for item in as_list(body, field, required=True)]


# --- types (§8) -----------------------------------------------------------------------------

def module_type_document(base, module_type):
    document = audit_fields(module_type)
    document.update({
        "id": module_type.id, "key": module_type.key, "name": module_type.name,
        "description": module_type.description, "colour": module_type.colour,
        "maxAssignments": module_type.max_assignments,
        "minArtifacts": module_type.min_artifacts, "deleted": module_type.deleted,
        "_links": {"self": link(base, "softwaremoduletypes/%d" % module_type.id)},
    })
    return clean(document)


def set_type_document(base, set_type, full=False):
    path = "distributionsettypes/%d" % set_type.id
    links = {"self": link(base, path)}
    if full:
        links["mandatorymodules"] = link(base, path + "/mandatorymoduletypes")
        links["optionalmodules"] = link(base, path + "/optionalmoduletypes")
    document = audit_fields(set_type)
    document.update({
        "id": set_type.id, "key": set_type.key, "name": set_type.name,
        "description": set_type.description, "colour": set_type.colour,
        "deleted": set_type.deleted, "_links": links,
    })
    return clean(document)


def _module_type(type_id):
    module_type = get_existing(SoftwareModuleType, SoftwareModuleType.id == type_id,
                               "SoftwareModuleType", type_id)
    return module_type


def _set_type(type_id):
    set_type = get_existing(DistributionSetType, DistributionSetType.id == type_id,
                            "DistributionSetType", type_id)
    return set_type


def list_module_types(base, q=None, sort=None, offset=None, limit=None):
    select = SoftwareModuleType.select().where(
        SoftwareModuleType.deleted == False)  # noqa: E712
    rows, total = query.page(select, "softwaremoduletypes", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([module_type_document(base, row) for row in rows], total)


def get_module_type(base, type_id):
    return module_type_document(base, _module_type(type_id))


def list_set_types(base, q=None, sort=None, offset=None, limit=None):
    select = DistributionSetType.select().where(
        DistributionSetType.deleted == False)  # noqa: E712
    rows, total = query.page(select, "distributionsettypes", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([set_type_document(base, row) for row in rows], total)


def get_set_type(base, type_id):
    return set_type_document(base, _set_type(type_id), full=True)


def _set_type_members(set_type, mandatory):
    return (SoftwareModuleType.select()
            .join(DistributionSetTypeModule,
                  on=(DistributionSetTypeModule.module_type == SoftwareModuleType.id))
            .where((DistributionSetTypeModule.set_type == set_type.id)
                   & (DistributionSetTypeModule.mandatory == bool(mandatory)))
            .order_by(SoftwareModuleType.id))


def set_type_module_types(base, type_id, mandatory):
    """The mandatory (or optional) module types of a set type: a plain array."""
    set_type = _set_type(type_id)
    return [module_type_document(base, row) for row in _set_type_members(set_type, mandatory)]


def get_set_type_module_type(base, type_id, module_type_id, mandatory):
    set_type = _set_type(type_id)
    module_type = _set_type_members(set_type, mandatory).where(
        SoftwareModuleType.id == module_type_id).first()
    if module_type is None:
        raise EntityNotFound("SoftwareModuleType", module_type_id)
    return module_type_document(base, module_type)


# --- software modules (§9.1, §9.2) ----------------------------------------------------------

def _module_complete(module, module_type):
    if module_type.min_artifacts <= 0:
        return True
    return (Artifact.select().where(Artifact.module == module.id).count()
            >= module_type.min_artifacts)


def module_document(base, module, full=False):
    module_type = module.module_type
    path = "softwaremodules/%d" % module.id
    links = {"self": link(base, path)}
    if full:
        links["artifacts"] = link(base, path + "/artifacts")
        links["type"] = link(base, "softwaremoduletypes/%d" % module_type.id)
        links["metadata"] = link(base, path + "/metadata")
    document = audit_fields(module)
    document.update({
        "id": module.id, "name": module.name, "description": module.description,
        "version": module.version, "type": module_type.key, "typeName": module_type.name,
        "vendor": module.vendor, "encrypted": module.encrypted, "locked": module.locked,
        "deleted": module.deleted, "complete": _module_complete(module, module_type),
        "_links": links,
    })
    return clean(document)


def _module(module_id):
    module = get_existing(SoftwareModule, SoftwareModule.id == module_id,
                          "SoftwareModule", module_id)
    return module


def _live_module(module_id):
    """A module that may still be changed: exists and is not soft-deleted."""
    module = _module(module_id)
    if module.deleted:
        raise Deleted("Software module %d is deleted." % module.id)
    return module


ModuleSpec = collections.namedtuple("ModuleSpec", "type_key name version description vendor")


def _parse_module(item):
    item = as_object(item, "softwaremodule", required=True)
    type_key = as_str(item.get("type"), "type", max_length=64)
    if type_key is None or not type_key.strip():
        raise ConstraintViolation("A software module needs a type.")
    if as_bool(item.get("encrypted"), "encrypted"):
        raise EncryptionNotSupported("Artifact encryption is not supported by this server.")
    return ModuleSpec(
        type_key=type_key.strip(),
        name=_text(item.get("name"), "name", required=True, max_length=MAX_NAME),
        version=_text(item.get("version"), "version", required=True, max_length=MAX_VERSION),
        description=_text(item.get("description"), "description", max_length=MAX_DESCRIPTION),
        vendor=_text(item.get("vendor"), "vendor", max_length=MAX_VENDOR))


def create_modules(base, body, user):
    """Create software modules from an array: all of them, or none."""
    specs = [_parse_module(item) for item in as_list(body, "softwaremodules", required=True)]
    now = now_ms()
    with write():
        created = []
        for spec in specs:
            module_type = get_existing(SoftwareModuleType, SoftwareModuleType.key == spec.type_key,
                                       "SoftwareModuleType", spec.type_key)
            if module_type.deleted:
                raise ConstraintViolation("Software module type '%s' is deleted."
                                          % spec.type_key)
            # Rows are created as we go, so a duplicate within the request is found here too.
            if SoftwareModule.select().where(
                    (SoftwareModule.module_type == module_type.id)
                    & (SoftwareModule.name == spec.name)
                    & (SoftwareModule.version == spec.version)).exists():
                raise EntityAlreadyExists(
                    "Software module '%s:%s' of type '%s' already exists."
                    % (spec.name, spec.version, spec.type_key))
            created.append(SoftwareModule.create(
                module_type=module_type, name=spec.name, version=spec.version,
                description=spec.description, vendor=spec.vendor, encrypted=False,
                **_audit(now, user)))
    return [module_document(base, module) for module in created]


def list_modules(base, q=None, sort=None, offset=None, limit=None, deleted_mode=None):
    select = _deleted_filter(SoftwareModule.select(), SoftwareModule.deleted, deleted_mode)
    rows, total = query.page(select, "softwaremodules", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([module_document(base, row) for row in rows], total)


def get_module(base, module_id):
    return module_document(base, _module(module_id), full=True)


def update_module(base, module_id, body, user):
    """Change description, vendor or the lock; name, version and type are immutable."""
    body = as_object(body, "softwaremodule", required=True)
    description = _text(body.get("description"), "description", max_length=MAX_DESCRIPTION)
    vendor = _text(body.get("vendor"), "vendor", max_length=MAX_VENDOR)
    locked = as_bool(body.get("locked"), "locked")
    with write():
        module = _live_module(module_id)
        if description is not None:
            module.description = description
        if vendor is not None:
            module.vendor = vendor
        if locked is not None:
            module.locked = locked
        _touch(module, now_ms(), user)
        module.save()
    return module_document(base, module, full=True)


def delete_module(module_id, blobs):
    """Delete a module, freeing the blobs no artifact row refers to any more.

    A module some set still refers to is only marked deleted and keeps its artifacts: a running
    deployment may still download them. It goes for good, with its blobs, once no set refers to
    it (the set is deleted or the module removed from it), or on a repeated delete then.
    """
    with blobs_changing(blobs) as changes:
        module = _module(module_id)
        in_sets = DistributionSetModule.select().where(
            DistributionSetModule.module == module.id).exists()
        if module.deleted:
            if not in_sets:
                _purge_module(module, changes)
            return
        set_ids = DistributionSetModule.select(DistributionSetModule.distribution_set).where(
            DistributionSetModule.module == module.id)
        if DistributionSet.select().where(
                DistributionSet.id.in_(set_ids) & DistributionSet.locked
                & (DistributionSet.deleted == False)).exists():  # noqa: E712
            raise Locked("Software module %d belongs to a locked distribution set." % module.id)
        if in_sets:
            module.deleted = True
            module.save()
            return
        _purge_module(module, changes)


def _purge_module(module, changes):
    sha1s = [artifact.sha1 for artifact in
             Artifact.select(Artifact.sha1).where(Artifact.module == module.id)]
    SoftwareModuleMetadata.delete().where(SoftwareModuleMetadata.module == module.id).execute()
    Artifact.delete().where(Artifact.module == module.id).execute()
    module.delete_instance()
    changes.free_unreferenced(sha1s)


def _purge_modules_left_without_set(module_ids, changes):
    """Soft-deleted modules that the set rows just removed were the last to refer to."""
    for module in SoftwareModule.select().where(
            SoftwareModule.id.in_(list(module_ids)) & SoftwareModule.deleted):
        if not DistributionSetModule.select().where(
                DistributionSetModule.module == module.id).exists():
            _purge_module(module, changes)


# --- metadata (§9.3, §10.3) ------------------------------------------------------------------

class _MetadataKind:
    """Metadata of one kind of owner: software modules (with targetVisible) or sets."""

    def __init__(self, model, owner_field, entity, find_owner, visible):
        self.model = model
        self.owner_field = owner_field
        self.entity = entity
        self.find_owner = find_owner
        self.visible = visible

    def _rows(self, owner):
        return self.model.select().where(getattr(self.model, self.owner_field) == owner.id)

    def _row(self, owner, key):
        return self._rows(owner).where(self.model.key == key).first()

    def document(self, row):
        document = {"key": row.key, "value": row.value}
        if self.visible:
            document["targetVisible"] = row.target_visible
        return clean(document)

    def parse_entry(self, item):
        item = as_object(item, "metadata", required=True)
        key = _text(item.get("key"), "key", required=True, max_length=MAX_METADATA_KEY)
        value = as_str(item.get("value"), "value", max_length=MAX_METADATA_VALUE)
        visible = as_bool(item.get("targetVisible"), "targetVisible") if self.visible else None
        return key, value, visible

    def _live_owner(self, owner_id):
        owner = self.find_owner(owner_id)
        if owner.deleted:
            raise Deleted("%s %d is deleted." % (self.entity, owner.id))
        return owner

    def _store(self, owner, key, value, visible, replace_value):
        row = self._row(owner, key)
        if row is None:
            fields = {self.owner_field: owner, "key": key, "value": value}
            if self.visible:
                fields["target_visible"] = bool(visible)
            self.model.create(**fields)
            return
        changes = {}
        if replace_value:
            changes[self.model.value] = value
        if self.visible and visible is not None:
            changes[self.model.target_visible] = visible
        if changes:
            self.model.update(changes).where(
                (getattr(self.model, self.owner_field) == owner.id)
                & (self.model.key == key)).execute()

    def _check_quota(self, owner, new_keys):
        existing = {row.key for row in self._rows(owner)}
        total = len(existing | set(new_keys))
        if total > MAX_METADATA_ENTRIES:
            raise QuotaExceeded(
                "Quota exceeded: Cannot assign %d more %sMetadata entities to %s '%d'. "
                "The maximum is %d." % (total - len(existing), self.entity, self.entity,
                                        owner.id, MAX_METADATA_ENTRIES))

    def _touch_owner(self, owner, user):
        type(owner).update(last_modified_at=now_ms(), last_modified_by=user).where(
            type(owner).id == owner.id).execute()

    def list(self, owner_id):
        owner = self.find_owner(owner_id)
        content = [self.document(row) for row in self._rows(owner).order_by(self.model.key)]
        return paged(content, len(content))

    def create(self, owner_id, body, user):
        """Upsert an array of entries (hawkBit 1.x overwrites existing keys)."""
        entries = [self.parse_entry(item) for item in as_list(body, "metadata", required=True)]
        with write():
            owner = self._live_owner(owner_id)
            self._check_quota(owner, [key for key, _, _ in entries])
            for key, value, visible in entries:
                self._store(owner, key, value, visible, replace_value=True)
            self._touch_owner(owner, user)

    def get(self, owner_id, key):
        owner = self.find_owner(owner_id)
        row = self._row(owner, key)
        if row is None:
            raise EntityNotFound(self.entity + "Metadata", key)
        return self.document(row)

    def put(self, owner_id, key, body, user):
        """Upsert one entry; either field of the body may be left out."""
        body = as_object(body, "metadata", required=True)
        key = _text(key, "key", required=True, max_length=MAX_METADATA_KEY)
        value = as_str(body.get("value"), "value", max_length=MAX_METADATA_VALUE)
        visible = as_bool(body.get("targetVisible"), "targetVisible") if self.visible else None
        with write():
            owner = self._live_owner(owner_id)
            self._check_quota(owner, [key])
            self._store(owner, key, value, visible, replace_value="value" in body)
            self._touch_owner(owner, user)
            return self.document(self._row(owner, key))

    def delete(self, owner_id, key):
        with write():
            owner = self._live_owner(owner_id)
            if self._row(owner, key) is None:
                raise EntityNotFound(self.entity + "Metadata", key)
            self.model.delete().where((getattr(self.model, self.owner_field) == owner.id)
                                      & (self.model.key == key)).execute()


_MODULE_METADATA = _MetadataKind(SoftwareModuleMetadata, "module", "SoftwareModule",
                                 lambda owner_id: _module(owner_id), visible=True)
_SET_METADATA = _MetadataKind(DistributionSetMetadata, "distribution_set", "DistributionSet",
                              lambda owner_id: _distribution_set(owner_id), visible=False)


def list_module_metadata(module_id):
    return _MODULE_METADATA.list(module_id)


def create_module_metadata(module_id, body, user):
    _MODULE_METADATA.create(module_id, body, user)


def get_module_metadata(module_id, key):
    return _MODULE_METADATA.get(module_id, key)


def put_module_metadata(module_id, key, body, user):
    return _MODULE_METADATA.put(module_id, key, body, user)


def delete_module_metadata(module_id, key):
    _MODULE_METADATA.delete(module_id, key)


def list_set_metadata(set_id):
    return _SET_METADATA.list(set_id)


def create_set_metadata(set_id, body, user):
    _SET_METADATA.create(set_id, body, user)


def get_set_metadata(set_id, key):
    return _SET_METADATA.get(set_id, key)


def put_set_metadata(set_id, key, body, user):
    return _SET_METADATA.put(set_id, key, body, user)


def delete_set_metadata(set_id, key):
    _SET_METADATA.delete(set_id, key)


# --- artifacts (§9.4 - §9.6) -----------------------------------------------------------------

def artifact_document(base, artifact, full=False):
    path = "softwaremodules/%d/artifacts/%d" % (artifact.module_id, artifact.id)
    links = {"self": link(base, path)}
    if full:
        links["download"] = link(base, path + "/download")
    document = audit_fields(artifact)
    document.update({
        "id": artifact.id,
        "hashes": {"sha1": artifact.sha1, "md5": artifact.md5, "sha256": artifact.sha256},
        "providedFilename": artifact.filename, "size": artifact.size, "_links": links,
    })
    return clean(document)


def clean_filename(name):
    """The artifact name to store: the last path component of what the client sent."""
    if name is None:
        raise ConstraintViolation("The artifact needs a filename.")
    if not isinstance(name, str):
        name = as_str(name, "filename")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ConstraintViolation("The artifact filename must not contain control characters.")
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not last.strip() or last in (".", ".."):
        raise ConstraintViolation("'%s' is not a usable artifact filename." % name)
    if len(last) > MAX_FILENAME:
        raise ConstraintViolation("The artifact filename must have at most %d characters."
                                  % MAX_FILENAME)
    return last


def check_upload(module_id):
    """May an artifact be added to this module? Checked before the bytes are read, and again
    when they are recorded. Returns the module."""
    module = _live_module(module_id)
    if module.locked:
        raise Locked("Software module %d is locked." % module.id)
    count = Artifact.select().where(Artifact.module == module.id).count()
    if count >= MAX_ARTIFACTS_PER_MODULE:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign 1 more Artifact entities to SoftwareModule '%d'. "
            "The maximum is %d." % (module.id, MAX_ARTIFACTS_PER_MODULE))
    return module


def add_uploaded_artifact(base, module_id, filename, received, blobs, user):
    """Record an artifact and keep its received bytes (`artifacts.Received`) in one
    transaction; returns its document with the download link. When this raises, the
    received bytes are discarded."""
    blob = received.blob
    now = now_ms()
    stage_upload(blobs, received)
    with blobs_changing(blobs) as changes:
        changes.keep(received)
        filename = clean_filename(filename)
        module = check_upload(module_id)
        if Artifact.select().where((Artifact.module == module.id)
                                   & (Artifact.filename == filename)).exists():
            raise EntityAlreadyExists("Artifact '%s' already exists in software module %d."
                                      % (filename, module.id))
        artifact = Artifact.create(module=module, filename=filename, size=blob.size,
                                   sha1=blob.sha1.lower(), md5=blob.md5.lower(),
                                   sha256=blob.sha256.lower(), **_audit(now, user))
    return artifact_document(base, artifact, full=True)


def _artifact(module, artifact_id):
    artifact = Artifact.get_or_none((Artifact.id == artifact_id)
                                    & (Artifact.module == module.id))
    if artifact is None:
        raise EntityNotFound("Artifact", artifact_id)
    return artifact


def list_artifacts(base, module_id, full=False):
    module = _module(module_id)
    return [artifact_document(base, artifact, full=full and not module.deleted)
            for artifact in Artifact.select().where(Artifact.module == module.id)
            .order_by(Artifact.id)]


def get_artifact(base, module_id, artifact_id):
    module = _module(module_id)
    return artifact_document(base, _artifact(module, artifact_id), full=not module.deleted)


def delete_artifact(module_id, artifact_id, blobs):
    """Delete an artifact; its blob goes when no other artifact row refers to it."""
    with blobs_changing(blobs) as changes:
        module = _module(module_id)
        artifact = _artifact(module, artifact_id)
        if module.deleted:
            raise Deleted("Software module %d is deleted." % module.id)
        if module.locked:
            raise Locked("Software module %d is locked." % module.id)
        artifact.delete_instance()
        changes.free_unreferenced([artifact.sha1])


def artifact_for_download(module_id, artifact_id):
    module = _module(module_id)
    artifact = _artifact(module, artifact_id)
    if module.deleted:
        raise BinaryDeleted("The binary of artifact %d is no longer available." % artifact.id)
    return artifact


# --- distribution sets (§10.1 - §10.3) -------------------------------------------------------

def _set_modules_select(distribution_set):
    module_ids = DistributionSetModule.select(DistributionSetModule.module).where(
        DistributionSetModule.distribution_set == distribution_set.id)
    return SoftwareModule.select().where(SoftwareModule.id.in_(module_ids))


def _set_complete(distribution_set, modules):
    return assignments.is_complete(distribution_set) and all(
        _module_complete(module, module.module_type) for module in modules)


def distribution_set_document(base, ds, full=False):
    set_type = ds.set_type
    modules = list(_set_modules_select(ds).order_by(SoftwareModule.id))
    path = "distributionsets/%d" % ds.id
    links = {"self": link(base, path)}
    if full:
        links["modules"] = link(base, path + "/assignedSM?offset=0&limit=50")
        links["type"] = link(base, "distributionsettypes/%d" % set_type.id)
        links["metadata"] = link(base, path + "/metadata")
    document = audit_fields(ds)
    document.update({
        "id": ds.id, "name": ds.name, "description": ds.description, "version": ds.version,
        "type": set_type.key, "typeName": set_type.name, "locked": ds.locked,
        "deleted": ds.deleted, "valid": ds.valid, "complete": _set_complete(ds, modules),
        "requiredMigrationStep": ds.required_migration_step,
        "modules": [module_document(base, module) for module in modules],
        "_links": links,
    })
    return clean(document)


def _distribution_set(set_id):
    distribution_set = get_existing(DistributionSet, DistributionSet.id == set_id,
                                    "DistributionSet", set_id)
    return distribution_set


def _live_set(set_id):
    distribution_set = _distribution_set(set_id)
    if distribution_set.deleted:
        raise Deleted("Distribution set %d is deleted." % distribution_set.id)
    return distribution_set


def _default_set_type():
    """The tenant's default set type (config key `default.ds.type`, an id), else `os_app`."""
    try:
        value = tenant.settings()[DEFAULT_SET_TYPE_SETTING]
    except KeyError:
        value = None
    if value is not None and not isinstance(value, bool):
        text = str(value).strip()
        if text.isdigit():
            set_type = DistributionSetType.get_or_none(DistributionSetType.id == int(text))
        else:
            set_type = DistributionSetType.get_or_none(DistributionSetType.key == text)
        if set_type is not None and not set_type.deleted:
            return set_type
    set_type = get_existing(DistributionSetType, DistributionSetType.key == DEFAULT_SET_TYPE_KEY,
                            "DistributionSetType", DEFAULT_SET_TYPE_KEY)
    return set_type


def _allowed_module_types(set_type):
    return {row.module_type_id for row in DistributionSetTypeModule.select().where(
        DistributionSetTypeModule.set_type == set_type.id)}


def _resolve_modules(set_type, module_ids):
    """The module rows for `module_ids`, each allowed by `set_type`."""
    allowed = _allowed_module_types(set_type)
    modules = []
    for module_id in module_ids:
        module = _module(module_id)
        if module.deleted:
            raise Deleted("Software module %d is deleted." % module.id)
        if module.module_type_id not in allowed:
            raise ModulesUnsupported(
                "Software module %d of type '%s' is not supported by distribution set type "
                "'%s'." % (module.id, module.module_type.key, set_type.key))
        modules.append(module)
    return modules


def _merge_modules(current, added):
    """Add modules in order; one beyond its type's maxAssignments replaces the earliest of that
    type (hawkBit's behaviour)."""
    result = list(current)
    for module in added:
        if any(existing.id == module.id for existing in result):
            continue
        same_type = [existing for existing in result
                     if existing.module_type_id == module.module_type_id]
        if len(same_type) >= module.module_type.max_assignments:
            result.remove(same_type[0])
        result.append(module)
    return result


def _check_module_quota(distribution_set_id, modules):
    if len(modules) > MAX_MODULES_PER_SET:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d SoftwareModule entities to DistributionSet '%s'. "
            "The maximum is %d." % (len(modules), distribution_set_id, MAX_MODULES_PER_SET))


SetSpec = collections.namedtuple(
    "SetSpec", "type_key name version description module_ids required_migration_step")


def _parse_set(item):
    item = as_object(item, "distributionset", required=True)
    module_ids = []
    if item.get("modules") is not None:
        module_ids.extend(_id_list(item.get("modules"), "modules"))
    for name in LEGACY_MODULE_PROPERTIES:
        if item.get(name) is not None:
            module_ids.append(as_int(as_object(item[name], name).get("id"), name + ".id",
                                     required=True))
    type_key = as_str(item.get("type"), "type", max_length=64)
    return SetSpec(
        type_key=type_key if type_key is not None and type_key.strip() else None,
        name=_text(item.get("name"), "name", required=True, max_length=MAX_NAME),
        version=_text(item.get("version"), "version", required=True, max_length=MAX_VERSION),
        description=_text(item.get("description"), "description", max_length=MAX_DESCRIPTION),
        module_ids=module_ids,
        required_migration_step=bool(as_bool(item.get("requiredMigrationStep"),
                                             "requiredMigrationStep")))


def _set_exists(set_type_id, name, version, except_id=None):
    select = DistributionSet.select().where((DistributionSet.set_type == set_type_id)
                                            & (DistributionSet.name == name)
                                            & (DistributionSet.version == version))
    if except_id is not None:
        select = select.where(DistributionSet.id != except_id)
    return select.exists()


def create_sets(base, body, user):
    """Create distribution sets from an array: all of them, or none."""
    specs = [_parse_set(item) for item in as_list(body, "distributionsets", required=True)]
    now = now_ms()
    with write():
        created = []
        default_type = None
        for spec in specs:
            if spec.type_key is None:
                default_type = default_type or _default_set_type()
                set_type = default_type
            else:
                set_type = DistributionSetType.get_or_none(
                    DistributionSetType.key == spec.type_key)
                if set_type is None:
                    raise EntityNotFound("DistributionSetType", spec.type_key)
            if set_type.deleted:
                raise ConstraintViolation("Distribution set type '%s' is deleted."
                                          % set_type.key)
            modules = _merge_modules([], _resolve_modules(set_type, spec.module_ids))
            _check_module_quota(spec.name, modules)
            if _set_exists(set_type.id, spec.name, spec.version):
                raise EntityAlreadyExists("Distribution set '%s:%s' of type '%s' already exists."
                                          % (spec.name, spec.version, set_type.key))
            distribution_set = DistributionSet.create(
                set_type=set_type, name=spec.name, version=spec.version,
                description=spec.description,
                required_migration_step=spec.required_migration_step, **_audit(now, user))
            for module in modules:
                DistributionSetModule.create(distribution_set=distribution_set, module=module)
            created.append(distribution_set)
    return [distribution_set_document(base, ds) for ds in created]


def list_sets(base, q=None, sort=None, offset=None, limit=None, deleted_mode=None):
    select = _deleted_filter(DistributionSet.select(), DistributionSet.deleted, deleted_mode)
    rows, total = query.page(select, "distributionsets", q=q, sort=sort, offset=offset,
                             limit=limit)
    return paged([distribution_set_document(base, row) for row in rows], total)


def get_set(base, set_id):
    return distribution_set_document(base, _distribution_set(set_id), full=True)


def _lock_set(distribution_set):
    """Lock a set and all its modules (what an assignment does implicitly)."""
    distribution_set.locked = True
    module_ids = DistributionSetModule.select(DistributionSetModule.module).where(
        DistributionSetModule.distribution_set == distribution_set.id)
    SoftwareModule.update(locked=True).where(SoftwareModule.id.in_(module_ids)).execute()


def update_set(base, set_id, body, user):
    """Change name, description, version, the lock or requiredMigrationStep."""
    body = as_object(body, "distributionset", required=True)
    name = _text(body.get("name"), "name", max_length=MAX_NAME)
    version = _text(body.get("version"), "version", max_length=MAX_VERSION)
    if (name is not None and not name.strip()) or (version is not None and not version.strip()):
        raise ConstraintViolation("name and version must not be empty.")
    description = _text(body.get("description"), "description", max_length=MAX_DESCRIPTION)
    locked = as_bool(body.get("locked"), "locked")
    migration = as_bool(body.get("requiredMigrationStep"), "requiredMigrationStep")
    with write():
        distribution_set = _live_set(set_id)
        if locked is False:
            distribution_set.locked = False
        if migration is not None and migration != distribution_set.required_migration_step:
            if distribution_set.locked:
                raise Locked("Distribution set %d is locked." % distribution_set.id)
            distribution_set.required_migration_step = migration
        if locked:
            _lock_set(distribution_set)
        new_name = distribution_set.name if name is None else name
        new_version = distribution_set.version if version is None else version
        if (new_name, new_version) != (distribution_set.name, distribution_set.version):
            if _set_exists(distribution_set.set_type_id, new_name, new_version,
                           except_id=distribution_set.id):
                raise EntityAlreadyExists("Distribution set '%s:%s' already exists."
                                          % (new_name, new_version))
            distribution_set.name = new_name
            distribution_set.version = new_version
        if description is not None:
            distribution_set.description = description
        _touch(distribution_set, now_ms(), user)
        distribution_set.save()
    return distribution_set_document(base, distribution_set, full=True)


def delete_set(set_id, blobs):
    """Soft delete when an action or a target refers to the set, else hard delete (which
    frees the soft-deleted modules only this set still held)."""
    with blobs_changing(blobs) as changes:
        distribution_set = _distribution_set(set_id)
        if distribution_set.deleted:
            return
        filters.forget_set(distribution_set.id)
        referenced = (
            Action.select().where(Action.distribution_set == distribution_set.id).exists()
            or Target.select().where((Target.assigned_ds == distribution_set.id)
                                     | (Target.installed_ds == distribution_set.id)).exists())
        if referenced:
            distribution_set.deleted = True
            distribution_set.save()
            return
        module_ids = _set_module_ids(distribution_set)
        DistributionSetMetadata.delete().where(
            DistributionSetMetadata.distribution_set == distribution_set.id).execute()
        DistributionSetModule.delete().where(
            DistributionSetModule.distribution_set == distribution_set.id).execute()
        distribution_set.delete_instance()
        _purge_modules_left_without_set(module_ids, changes)


def filter_auto_assign_set(base, filter_id):
    """The set a target filter auto-assigns (§12.1 autoAssignDS), or None (204)."""
    set_id = filters.auto_assign_set_id(filter_id)
    return None if set_id is None else get_set(base, set_id)


def _set_module_ids(distribution_set):
    return {row.module_id for row in DistributionSetModule.select(DistributionSetModule.module)
            .where(DistributionSetModule.distribution_set == distribution_set.id)}


def set_modules(base, set_id, sort=None, offset=None, limit=None):
    distribution_set = _distribution_set(set_id)
    rows, total = query.page(_set_modules_select(distribution_set), "softwaremodules",
                             q=None, sort=sort, offset=offset, limit=limit)
    return paged([module_document(base, row) for row in rows], total)


def add_set_modules(set_id, body, blobs, user):
    module_ids = _id_list(body, "modules")
    with blobs_changing(blobs) as changes:
        distribution_set = _live_set(set_id)
        if distribution_set.locked:
            raise Locked("Distribution set %d is locked." % distribution_set.id)
        added = _resolve_modules(distribution_set.set_type, module_ids)
        current = list(_set_modules_select(distribution_set).order_by(SoftwareModule.id))
        merged = _merge_modules(current, added)
        _check_module_quota(distribution_set.id, merged)
        kept = {module.id for module in merged}
        for module in current:
            if module.id not in kept:
                DistributionSetModule.delete().where(
                    (DistributionSetModule.distribution_set == distribution_set.id)
                    & (DistributionSetModule.module == module.id)).execute()
        present = {module.id for module in current}
        for module in merged:
            if module.id not in present:
                DistributionSetModule.create(distribution_set=distribution_set, module=module)
        _touch(distribution_set, now_ms(), user)
        distribution_set.save()
        _purge_modules_left_without_set(present - kept, changes)


def remove_set_module(set_id, module_id, blobs, user=None):
    with blobs_changing(blobs) as changes:
        distribution_set = _live_set(set_id)
        module = _module(module_id)
        if distribution_set.locked:
            raise Locked("Distribution set %d is locked." % distribution_set.id)
        removed = DistributionSetModule.delete().where(
            (DistributionSetModule.distribution_set == distribution_set.id)
            & (DistributionSetModule.module == module.id)).execute()
        if removed:
            _touch(distribution_set, now_ms(), user or distribution_set.last_modified_by)
            distribution_set.save()
            _purge_modules_left_without_set([module.id], changes)




# --- assignment (§10.4 - §10.7, §6.9) --------------------------------------------------------

Request = collections.namedtuple(
    "Request", "key action_type forced_time weight confirmation_required window_parts")


def _parse_request(item, key_is_controller_id):
    item = as_object(item, "assignment", required=True)
    if key_is_controller_id:
        key = _text(item.get("id"), "id", required=True)
    else:
        key = as_int(item.get("id"), "id", required=True)
    action_type = t.FORCED
    if item.get("type") is not None:
        text = as_str(item.get("type"), "type")
        action_type = ACTION_TYPES.get(text.strip().lower())
        if action_type is None:
            raise BodyNotReadable("Unknown assignment type '%s'." % text)
    window_parts = None
    if item.get("maintenanceWindow") is not None:
        window = as_object(item.get("maintenanceWindow"), "maintenanceWindow")
        window_parts = tuple(as_str(window.get(name), "maintenanceWindow." + name)
                             for name in ("schedule", "duration", "timezone"))
    return Request(
        key=key, action_type=action_type,
        forced_time=as_int(item.get("forcetime"), "forcetime"),
        weight=as_int(item.get("weight"), "weight"),
        confirmation_required=as_bool(item.get("confirmationRequired"),
                                      "confirmationRequired"),
        window_parts=window_parts)


def _online_window(request, now):
    """Check weight and maintenance window of an online request; the window to use."""
    if request.weight is not None and not 0 <= request.weight <= 1000:
        raise ConstraintViolation("The weight must lie between 0 and 1000.")
    parts = request.window_parts
    if parts is None or all(part is None for part in parts):
        return None
    if any(part is None or not part.strip() for part in parts):
        raise InvalidMaintenanceSchedule(
            "A maintenance window needs all of schedule, duration and timezone.")
    window = assignments.MaintenanceWindow(*parts)
    assignments.check_window(window, now)
    return window


def _carry_out(base, jobs, offline, user, now):
    """`jobs`: (target or None, set, request, window) in request order, inside the write."""
    assigned = []
    already = 0
    for target, distribution_set, request, window in jobs:
        if target is None:
            continue
        if offline:
            if (target.update_status == "PENDING"
                    or target.assigned_ds_id == distribution_set.id):
                already += 1
                continue
            action = assignments.record_offline(distribution_set, target, user, now)
        else:
            forced_time = None
            if request.action_type == t.TIMEFORCED:
                forced_time = request.forced_time or 0
            action = assignments.assign(
                distribution_set, target, now, user, action_type=request.action_type,
                forced_time=forced_time, weight=request.weight, window=window,
                confirmation_required=request.confirmation_required)
            if action is None:
                already += 1
                continue
        assigned.append({"id": action.id, "_links": {"self": link(
            base, "targets/%s/actions/%d" % (segment(target.controller_id), action.id))}})
    return {"assigned": len(assigned), "alreadyAssigned": already,
            "total": len(assigned) + already, "assignedActions": assigned}


def _check_request_count(count):
    if count > MAX_TARGETS_PER_ASSIGNMENT:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d targets in one request. The maximum is %d."
            % (count, MAX_TARGETS_PER_ASSIGNMENT))


def assign_targets(base, set_id, body, offline, user):
    """Assign one set to the targets listed in `body` (online, or recorded as installed)."""
    requests = [_parse_request(item, True) for item in as_list(body, "assignments", required=True)]
    _check_request_count(len(requests))
    now = now_ms()
    with write():
        distribution_set = assignments.assignable_set(set_id)
        windows = [None if offline else _online_window(request, now) for request in requests]
        seen = set()
        for request in requests:
            if request.key in seen:
                raise MultiAssignment(
                    "Target '%s' appears more than once; multi-assignment is not enabled."
                    % request.key)
            seen.add(request.key)
        targets = {}
        keys = list(seen)
        for start in range(0, len(keys), 500):
            for target in Target.select().where(Target.controller_id.in_(keys[start:start + 500])):
                targets[target.controller_id] = target
        assignments.check_target_types(distribution_set, list(targets.values()))
        jobs = [(targets.get(request.key), distribution_set, request, window)
                for request, window in zip(requests, windows)]
        return _carry_out(base, jobs, offline, user, now)


def assign_from_target(base, controller_id, body, offline, user):
    """Assign sets to one target (§6.9): `body` is an array or a single object."""
    items = [body] if isinstance(body, dict) else as_list(body, "assignments", required=True)
    requests = [_parse_request(item, False) for item in items]
    now = now_ms()
    with write():
        target = Target.get_or_none(Target.controller_id == controller_id)
        if target is None and not offline:
            raise EntityNotFound("Target", controller_id)
        if len(requests) > 1:
            raise MultiAssignment(
                "Several distribution sets for target '%s'; multi-assignment is not enabled."
                % controller_id)
        jobs = []
        for request in requests:
            distribution_set = assignments.assignable_set(request.key)
            if target is not None:
                assignments.check_target_types(distribution_set, [target])
            window = None if offline else _online_window(request, now)
            jobs.append((target, distribution_set, request, window))
        return _carry_out(base, jobs, offline, user, now)
