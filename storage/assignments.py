"""Assigning distribution sets to targets, and the operator's cancel and force-quit.

Online assignment creates an action the device is offered; offline assignment records a set as
already installed. Both follow mgmt-contract §10.5/§10.6 and DDI contract §5.4.
"""

import collections

from storage import schedule
from storage import tenant
from storage import transitions as t
from storage.actions import append_entry, apply_event
from storage.db import write
from storage.errors import (Deleted, IncompatibleTargetType, IncompleteDistributionSet,
                            InvalidDistributionSet, InvalidMaintenanceSchedule)
from storage.models import (Action, DistributionSet, DistributionSetModule, DistributionSetType,
                            DistributionSetTypeModule, SoftwareModule, Target, TargetType,
                            TargetTypeSetType, get_existing)

OFFLINE_LINE = "Update Server: Action reported as offline deployment"

MaintenanceWindow = collections.namedtuple("MaintenanceWindow", "schedule duration timezone")


def is_complete(distribution_set):
    """Every mandatory module type of the set's type is present in the set."""
    mandatory = {row.module_type_id for row in DistributionSetTypeModule.select().where(
        (DistributionSetTypeModule.set_type == distribution_set.set_type_id)
        & DistributionSetTypeModule.mandatory)}
    present = {module.module_type_id for module in SoftwareModule.select().join(
        DistributionSetModule, on=(DistributionSetModule.module == SoftwareModule.id)).where(
        DistributionSetModule.distribution_set == distribution_set.id)}
    return mandatory <= present


def check_assignable(distribution_set):
    if not distribution_set.valid:
        raise InvalidDistributionSet("Distribution set %d is invalidated." % distribution_set.id)
    if not is_complete(distribution_set):
        raise IncompleteDistributionSet(
            "Distribution set %d lacks a mandatory software module." % distribution_set.id)


def incompatible_with(set_type_id):
    """Expression: the target has a type, and that type does not list `set_type_id` as
    compatible (a target without a type takes any set)."""
    compatible = TargetTypeSetType.select(TargetTypeSetType.target_type).where(
        TargetTypeSetType.set_type == set_type_id)
    return Target.target_type.is_null(False) & Target.target_type.not_in(compatible)


def check_target_types(distribution_set, targets):
    """Refuse the whole request when one of `targets` cannot take the set (hawkBit checks
    before it assigns anything, online or offline)."""
    target_ids = [target.id for target in targets]
    type_names = set()
    for start in range(0, len(target_ids), 500):
        type_names.update(row.name for row in TargetType.select(TargetType.name).join(
            Target, on=(Target.target_type == TargetType.id)).where(
            Target.id.in_(target_ids[start:start + 500])
            & incompatible_with(distribution_set.set_type_id)).distinct())
    if type_names:
        set_type = DistributionSetType.get_by_id(distribution_set.set_type_id)
        raise IncompatibleTargetType(
            "Targets of types [%s] are not compatible with distribution set of type %s"
            % (", ".join(sorted(type_names)), set_type.name))


def assignable_set(set_id):
    """The distribution set `set_id` if it may be assigned: it exists (else 404), is not
    deleted (404 deleted), is valid and complete (400)."""
    distribution_set = get_existing(DistributionSet, DistributionSet.id == set_id,
                                    "DistributionSet", set_id)
    if distribution_set.deleted:
        raise Deleted("Distribution set %d is deleted." % distribution_set.id)
    check_assignable(distribution_set)
    return distribution_set


def check_window(window, now):
    if window is None:
        return
    try:
        schedule.validate_window(window.schedule, window.duration, window.timezone, now)
    except ValueError as error:
        raise InvalidMaintenanceSchedule(str(error))


def _audit(now, user):
    return dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)


def assign(distribution_set, target, now, user, action_type=t.FORCED, forced_time=None,
           weight=None, window=None, confirmation_required=None, message=None):
    """Assign online; returns the new action, or None when the set is already assigned.

    The caller checks the set (`check_assignable`) and the window (`check_window`) first and
    holds the write transaction. `message` replaces the first line of the action's history,
    which otherwise names the user (auto-assignment names its target filter, as hawkBit).
    """
    if target.assigned_ds_id == distribution_set.id:
        return None
    settings = tenant.settings()
    supersede = ("close_obsolete" if settings["repository.actions.autoclose.enabled"]
                 else "cancel_obsolete")
    open_actions = Action.select().where((Action.target == target.id) & Action.active)
    for other in open_actions:
        if not other.distribution_set.required_migration_step:
            apply_event(other, t.OPERATOR, supersede, now=now, by=user)
    flow = settings["user.confirmation.flow.enabled"]
    needs_confirmation = flow and (confirmation_required is None or confirmation_required)
    waits = needs_confirmation and not target.auto_confirm_active
    action = Action.create(
        target=target, distribution_set=distribution_set, action_type=action_type,
        forced_time=forced_time if action_type == t.TIMEFORCED else None, weight=weight,
        status=t.WAIT_FOR_CONFIRMATION if waits else t.RUNNING, active=True,
        maintenance_schedule=window.schedule if window else None,
        maintenance_duration=window.duration if window else None,
        maintenance_timezone=window.timezone if window else None,
        initiated_by=user, **_audit(now, user))
    messages = [message or "Assignment initiated by user '%s'" % user]
    if flow and not waits:
        messages.append("Assignment confirmed by initiator [%s]." % user)
    if waits:
        messages.append("Waiting for the confirmation by the device before processing with "
                        "the deployment")
    append_entry(action, t.WAIT_FOR_CONFIRMATION if flow else t.RUNNING, messages, now, user)
    Target.update(assigned_ds=distribution_set.id, update_status="PENDING",
                  last_modified_at=now, last_modified_by=user).where(
        Target.id == target.id).execute()
    _lock(distribution_set, settings)
    return action


def record_offline(distribution_set, target, user, now):
    """Record the set as installed without the device's involvement; returns the action."""
    action = Action.create(target=target, distribution_set=distribution_set,
                           action_type=t.FORCED, status=t.FINISHED, active=False,
                           initiated_by=user, **_audit(now, user))
    append_entry(action, t.FINISHED,
                 ["Assignment initiated by user '%s'" % user, OFFLINE_LINE], now, user)
    Target.update(assigned_ds=distribution_set.id, installed_ds=distribution_set.id,
                  installation_date=now, update_status="IN_SYNC", last_modified_at=now,
                  last_modified_by=user).where(Target.id == target.id).execute()
    _lock(distribution_set, tenant.settings())
    return action


def lock_implicitly(distribution_set):
    """What an assignment does to its set when implicit.lock.enabled: lock it and its
    modules (hawkBit does it when a target filter gets the set for auto-assignment, too)."""
    _lock(distribution_set, tenant.settings())


def _lock(distribution_set, settings):
    if not settings["implicit.lock.enabled"] or distribution_set.locked:
        return
    distribution_set.locked = True
    distribution_set.save()
    module_ids = DistributionSetModule.select(DistributionSetModule.module).where(
        DistributionSetModule.distribution_set == distribution_set.id)
    SoftwareModule.update(locked=True).where(SoftwareModule.id.in_(module_ids)).execute()


def cancel(action, now, user, force=False):
    """The operator's cancel (soft, the device is asked) or force-quit (no device involved)."""
    with write():
        action = Action.get_by_id(action.id)
        apply_event(action, t.OPERATOR, "force_quit" if force else "cancel", now=now, by=user)
        return action
