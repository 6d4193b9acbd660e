"""Peewee models: what ddi-lite remembers, in hawkBit's own terms.

Times are integer epoch milliseconds (UTC). Ids of actions, status entries, modules, sets and
artifacts come from AUTOINCREMENT columns (sequences on PostgreSQL) so that an id is never
handed out twice, even after a delete: devices and scripts cache action ids. One schema for
both engines: the few places where they differ are functions of storage.db.
"""

import json

import peewee

from storage.db import IdField, database
from storage.errors import EntityNotFound


class JSONField(peewee.TextField):
    """A JSON document in a TEXT column, written with a stable key order."""

    def db_value(self, value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def python_value(self, value):
        return json.loads(value) if value is not None else None


def get_existing(model, condition, entity_type, entity_id):
    """The row matching `condition`, or hawkBit's not-found error naming `entity_type`."""
    row = model.get_or_none(condition)
    if row is None:
        raise EntityNotFound(entity_type, entity_id)
    return row


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Audited(BaseModel):
    created_at = peewee.BigIntegerField()
    created_by = peewee.CharField(max_length=64)
    last_modified_at = peewee.BigIntegerField()
    last_modified_by = peewee.CharField(max_length=64)


class TenantConfig(Audited):
    """A tenant configuration value that overrides the server-wide default (hawkBit §7 keys)."""

    key = peewee.CharField(primary_key=True, max_length=128)
    value = JSONField()


class SoftwareModuleType(Audited):
    id = IdField()
    key = peewee.CharField(unique=True, max_length=64)
    name = peewee.CharField(unique=True, max_length=64)
    description = peewee.CharField(null=True, max_length=512)
    colour = peewee.CharField(null=True, max_length=16)
    max_assignments = peewee.IntegerField(default=1)
    min_artifacts = peewee.IntegerField(default=0)
    deleted = peewee.BooleanField(default=False)


class DistributionSetType(Audited):
    id = IdField()
    key = peewee.CharField(unique=True, max_length=64)
    name = peewee.CharField(unique=True, max_length=64)
    description = peewee.CharField(null=True, max_length=512)
    colour = peewee.CharField(null=True, max_length=16)
    deleted = peewee.BooleanField(default=False)


class DistributionSetTypeModule(BaseModel):
    """Which module types a set type requires (mandatory) or allows (optional)."""

    set_type = peewee.ForeignKeyField(DistributionSetType, on_delete="CASCADE")
    module_type = peewee.ForeignKeyField(SoftwareModuleType, on_delete="CASCADE")
    mandatory = peewee.BooleanField()

    class Meta:
        primary_key = peewee.CompositeKey("set_type", "module_type")


class SoftwareModule(Audited):
    id = IdField()
    module_type = peewee.ForeignKeyField(SoftwareModuleType)
    name = peewee.CharField(max_length=128)
    version = peewee.CharField(max_length=64)
    description = peewee.CharField(null=True, max_length=512)
    vendor = peewee.CharField(null=True, max_length=256)
    encrypted = peewee.BooleanField(default=False)
    locked = peewee.BooleanField(default=False)
    deleted = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("module_type", "name", "version"), True),)


class SoftwareModuleMetadata(BaseModel):
    module = peewee.ForeignKeyField(SoftwareModule, on_delete="CASCADE")
    key = peewee.CharField(max_length=128)
    value = peewee.TextField(null=True)
    target_visible = peewee.BooleanField(default=False)

    class Meta:
        primary_key = peewee.CompositeKey("module", "key")


class Artifact(Audited):
    id = IdField()
    module = peewee.ForeignKeyField(SoftwareModule, on_delete="CASCADE")
    filename = peewee.CharField(max_length=256)
    size = peewee.BigIntegerField()
    sha1 = peewee.CharField(max_length=40, index=True)
    md5 = peewee.CharField(max_length=32)
    sha256 = peewee.CharField(max_length=64)

    class Meta:
        indexes = ((("module", "filename"), True),)


class DistributionSet(Audited):
    id = IdField()
    set_type = peewee.ForeignKeyField(DistributionSetType)
    name = peewee.CharField(max_length=128)
    version = peewee.CharField(max_length=64)
    description = peewee.CharField(null=True, max_length=512)
    required_migration_step = peewee.BooleanField(default=False)
    locked = peewee.BooleanField(default=False)
    deleted = peewee.BooleanField(default=False)
    valid = peewee.BooleanField(default=True)

    class Meta:
        indexes = ((("name", "version", "set_type"), True),)


class DistributionSetModule(BaseModel):
    distribution_set = peewee.ForeignKeyField(DistributionSet, on_delete="CASCADE")
    module = peewee.ForeignKeyField(SoftwareModule, index=True)

    class Meta:
        primary_key = peewee.CompositeKey("distribution_set", "module")


class DistributionSetMetadata(BaseModel):
    distribution_set = peewee.ForeignKeyField(DistributionSet, on_delete="CASCADE")
    key = peewee.CharField(max_length=128)
    value = peewee.TextField(null=True)

    class Meta:
        primary_key = peewee.CompositeKey("distribution_set", "key")


class TargetType(Audited):
    """A kind of device, and the distribution set types its devices can install."""

    id = IdField()
    key = peewee.CharField(unique=True, max_length=64)
    name = peewee.CharField(unique=True, max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    colour = peewee.CharField(null=True, max_length=16)


class TargetTypeSetType(BaseModel):
    """A distribution set type the devices of a target type are compatible with."""

    target_type = peewee.ForeignKeyField(TargetType, on_delete="CASCADE")
    set_type = peewee.ForeignKeyField(DistributionSetType, on_delete="CASCADE")

    class Meta:
        primary_key = peewee.CompositeKey("target_type", "set_type")


class Target(Audited):
    id = IdField()
    controller_id = peewee.CharField(unique=True, max_length=256)
    name = peewee.CharField(max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    security_token = peewee.CharField(max_length=128)
    address = peewee.CharField(null=True, max_length=512)
    group = peewee.CharField(null=True, max_length=256)
    update_status = peewee.CharField(max_length=16)
    assigned_ds = peewee.ForeignKeyField(DistributionSet, null=True, backref="assigned_targets")
    installed_ds = peewee.ForeignKeyField(DistributionSet, null=True, backref="installed_targets")
    installation_date = peewee.BigIntegerField(null=True)
    last_target_query = peewee.BigIntegerField(null=True)
    request_attributes = peewee.BooleanField(default=True)
    attributes = JSONField(default=dict)
    auto_confirm_active = peewee.BooleanField(default=False)
    auto_confirm_initiator = peewee.CharField(null=True, max_length=64)
    auto_confirm_remark = peewee.CharField(null=True, max_length=512)
    auto_confirm_activated_at = peewee.BigIntegerField(null=True)
    # Schema 3: added last, as the migration of an older database appends the column.
    target_type = peewee.ForeignKeyField(TargetType, null=True)


class TargetMetadata(BaseModel):
    target = peewee.ForeignKeyField(Target, on_delete="CASCADE")
    key = peewee.CharField(max_length=128)
    value = peewee.TextField(null=True)

    class Meta:
        primary_key = peewee.CompositeKey("target", "key")


class Rollout(Audited):
    """A staged rollout (mgmt contract §12.2): a set for the targets a query matched when it
    was created, split into groups that start one after the other (storage.rollouts).

    `status` is hawkBit's rollout status in upper case (READY, RUNNING, ...); the action
    type, forced time, weight and confirmation are those of the actions it creates.
    """

    id = IdField()
    name = peewee.CharField(unique=True, max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    distribution_set = peewee.ForeignKeyField(DistributionSet)
    target_filter_query = peewee.TextField()
    status = peewee.CharField(max_length=32)
    action_type = peewee.CharField(max_length=16)
    forced_time = peewee.BigIntegerField(null=True)
    weight = peewee.IntegerField(null=True)
    confirmation_required = peewee.BooleanField(default=False)
    start_at = peewee.BigIntegerField(null=True)
    approval_remark = peewee.CharField(null=True, max_length=512)
    approval_decided_by = peewee.CharField(null=True, max_length=64)
    deleted = peewee.BooleanField(default=False)


class RolloutGroup(Audited):
    """One group of a rollout, in the order of its id; its targets are the targets of its
    actions (`Action.rollout_group`). Thresholds are percentages of the group's targets."""

    id = IdField()
    rollout = peewee.ForeignKeyField(Rollout, on_delete="CASCADE", backref="groups")
    name = peewee.CharField(max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    status = peewee.CharField(max_length=16)
    target_filter_query = peewee.TextField(null=True)
    target_percentage = peewee.DoubleField()
    success_condition = peewee.CharField(max_length=16)
    success_threshold = peewee.IntegerField()
    success_action = peewee.CharField(max_length=16)
    error_condition = peewee.CharField(max_length=16)
    error_threshold = peewee.IntegerField()
    error_action = peewee.CharField(max_length=16)
    confirmation_required = peewee.BooleanField(default=False)


class Action(Audited):
    id = IdField()
    target = peewee.ForeignKeyField(Target, on_delete="CASCADE")
    distribution_set = peewee.ForeignKeyField(DistributionSet)
    action_type = peewee.CharField(max_length=16)
    forced_time = peewee.BigIntegerField(null=True)
    weight = peewee.IntegerField(null=True)
    status = peewee.CharField(max_length=32)
    active = peewee.BooleanField()
    # Bumped on every change of the row; the `c` value of DDI links is derived from it.
    revision = peewee.IntegerField(default=0)
    maintenance_schedule = peewee.CharField(null=True, max_length=128)
    maintenance_duration = peewee.CharField(null=True, max_length=16)
    maintenance_timezone = peewee.CharField(null=True, max_length=8)
    initiated_by = peewee.CharField(max_length=64)
    last_status_code = peewee.IntegerField(null=True)
    # Schema 5: the rollout and group that created the action (none for other assignments).
    rollout = peewee.ForeignKeyField(Rollout, null=True)
    rollout_group = peewee.ForeignKeyField(RolloutGroup, null=True)

    class Meta:
        # (target, distribution_set): "has this target ever had an action for this set?",
        # which auto-assignment asks of every target it checks.
        indexes = ((("target", "active"), False), (("target", "distribution_set"), False))

    @property
    def priority_weight(self):
        return 1000 if self.weight is None else self.weight


class ActionStatus(BaseModel):
    """One entry of an action's append-only history."""

    id = IdField()
    action = peewee.ForeignKeyField(Action, on_delete="CASCADE")
    status = peewee.CharField(max_length=32)
    timestamp = peewee.BigIntegerField()
    reported_at = peewee.BigIntegerField()
    created_by = peewee.CharField(max_length=64)
    code = peewee.IntegerField(null=True)
    messages = JSONField(default=list)

    class Meta:
        indexes = ((("action", "id"), False),)


class TargetTag(Audited):
    id = IdField()
    name = peewee.CharField(unique=True, max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    colour = peewee.CharField(null=True, max_length=16)


class TargetTagAssignment(BaseModel):
    tag = peewee.ForeignKeyField(TargetTag, on_delete="CASCADE")
    target = peewee.ForeignKeyField(Target, on_delete="CASCADE")

    class Meta:
        primary_key = peewee.CompositeKey("tag", "target")


class DistributionSetTag(Audited):
    id = IdField()
    name = peewee.CharField(unique=True, max_length=128)
    description = peewee.CharField(null=True, max_length=512)
    colour = peewee.CharField(null=True, max_length=16)


class DistributionSetTagAssignment(BaseModel):
    tag = peewee.ForeignKeyField(DistributionSetTag, on_delete="CASCADE")
    distribution_set = peewee.ForeignKeyField(DistributionSet, on_delete="CASCADE")

    class Meta:
        primary_key = peewee.CompositeKey("tag", "distribution_set")


# Added by schema 3 (tags and target types); an older database gets them by migration.
TAG_AND_TARGET_TYPE_MODELS = (TargetType, TargetTypeSetType, TargetTag, TargetTagAssignment,
                              DistributionSetTag, DistributionSetTagAssignment)

class TargetFilter(Audited):
    """A named target query (hawkBit's target filter query), optionally with a distribution set
    the server assigns to every target the query matches (auto-assignment, storage.autoassign).

    `checked_change` and `full_pass_at` are the auto-assignment's progress: every target whose
    TargetChange.seq is at most `checked_change` has been checked against the current query
    and set; `full_pass_at` is when the last check of all targets began.
    """

    id = IdField()
    name = peewee.CharField(unique=True, max_length=128)
    query = peewee.CharField(max_length=1024)
    auto_assign_ds = peewee.ForeignKeyField(DistributionSet, null=True)
    auto_assign_action_type = peewee.CharField(null=True, max_length=16)
    auto_assign_weight = peewee.IntegerField(null=True)
    auto_assign_confirmation = peewee.BooleanField(default=False)
    auto_assign_initiated_by = peewee.CharField(null=True, max_length=64)
    checked_change = peewee.BigIntegerField(default=0)
    full_pass_at = peewee.BigIntegerField(null=True)


class TargetChange(BaseModel):
    """When a target last changed in a way a target query can see, as a number that only grows.

    Written by database triggers on `target`, `target_metadata` and `target_tag_assignment`
    (storage.autoassign), not by Python: every write of those tables, whichever rule makes
    it, moves the number. A poll, which only writes `last_target_query`, does not.
    """

    target = peewee.ForeignKeyField(Target, primary_key=True, on_delete="CASCADE")
    seq = peewee.BigIntegerField(unique=True)


ALL_MODELS = (
    TenantConfig,
    SoftwareModuleType,
    DistributionSetType,
    DistributionSetTypeModule,
    SoftwareModule,
    SoftwareModuleMetadata,
    Artifact,
    DistributionSet,
    DistributionSetModule,
    DistributionSetMetadata,
    Target,
    TargetMetadata,
    Rollout,
    RolloutGroup,
    Action,
    ActionStatus,
) + TAG_AND_TARGET_TYPE_MODELS + (TargetFilter, TargetChange)
