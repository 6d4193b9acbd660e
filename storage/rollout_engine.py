"""The life cycle of staged rollouts (mgmt contract §12.2): the two status tables, the moves
between statuses, a group's start and a rollout's stop, the evaluation of running groups
against their thresholds, and the scheduler thread that evaluates them.

A rollout's targets are held as its actions. Creation (storage.rollouts) gives every target
of every group an action in status SCHEDULED, inactive and tied to its rollout and group.
DDI only ever looks at active actions, so a device whose group has not started sees nothing
and a poll costs what it cost before; a group's start opens its SCHEDULED actions through the
transition table (`rollout_started`), as an assignment would (earlier open actions of the
target are superseded, the target gets the set, PENDING), and its devices see the deployment
on their next poll. Membership rows turned into actions only at the start would have needed
a second table read on every count and a second kind of "target in a rollout"; with actions,
counts per status, RSQL on `rollout.*`, the group's target list and a stop (cancel what is
still SCHEDULED) all read one table. A group's actions open (and a stop cancels them) with
`actions.apply_event_to_many`, the table's row applied a few statements per 500 actions: a
group of 20,000 targets starts in about 1.5 s of write lock, not minutes.

Restarts. Every move is one write transaction whose UPDATE names the status it expects
(`WHERE id = ? AND status IN (...)`): a group's start is the group's SCHEDULED -> RUNNING
together with the opening of its actions, a threshold's pause is the group's RUNNING -> ERROR
together with the rollout's RUNNING -> PAUSED. A kill -9 loses a whole move or nothing; a
move that happened is not made again (its UPDATE then changes no row), and a pause that was
committed stays until an operator resumes. What the engine does next is read from the
database on each evaluation, never remembered in memory.

Thresholds are percentages of the group's targets: the success condition is reached when
finished * 100 >= threshold * targets (then NEXTGROUP starts the group after it), the error
condition when error * 100 > threshold * targets (then PAUSE pauses the rollout and marks the
group ERROR). A group whose actions are all closed is FINISHED if it reached its success
condition; if it did not (cancelled actions, errors below the error threshold), it is ERROR
and the rollout pauses, the cautious choice the contract leaves open. When no group runs any
more (a resume after a pause), the next SCHEDULED group starts; when none is left either and
no action of the rollout is open, the rollout is FINISHED. A set deleted or invalidated
before a group starts stops the rollout instead.

`Scheduler` is the thread `ddi_lite.serve()` starts, as storage.autoassign's: an evaluation
every `interval` seconds, and soon after `wake()`, which device feedback on a rollout's action
calls after its write has committed (setting an Event is all it costs that request).
"""

import collections
import logging

from storage import assignments, periodic, tenant
from storage import transitions as t
from storage.actions import apply_event_to_many
from storage.db import database, write
from storage.models import Action, DistributionSet, Rollout, RolloutGroup, Target

log = logging.getLogger("ddi-lite")

# Rollout statuses (hawkBit's names, stored as they are).
CREATING = "CREATING"
WAITING_FOR_APPROVAL = "WAITING_FOR_APPROVAL"
APPROVAL_DENIED = "APPROVAL_DENIED"
READY = "READY"
STARTING = "STARTING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
STOPPING = "STOPPING"
STOPPED = "STOPPED"
FINISHED = "FINISHED"
DELETING = "DELETING"
DELETED = "DELETED"

# Group statuses.
GROUP_READY = "READY"
GROUP_SCHEDULED = "SCHEDULED"
GROUP_RUNNING = "RUNNING"
GROUP_FINISHED = "FINISHED"
GROUP_ERROR = "ERROR"

THRESHOLD = "THRESHOLD"
NEXTGROUP = "NEXTGROUP"
PAUSE = "PAUSE"

# Who the engine's own moves are made by.
SYSTEM = "system"

# event -> (the statuses the rollout may be in, its status after). Operators' verbs and the
# engine's moves alike; anything else is refused (RolloutIllegalState, by the caller).
LIFE_CYCLE = {
    "approve": ((WAITING_FOR_APPROVAL,), READY),
    "deny": ((WAITING_FOR_APPROVAL,), APPROVAL_DENIED),
    "start": ((READY,), STARTING),
    "auto_start": ((READY,), STARTING),          # the engine: startAt reached
    "started": ((STARTING,), RUNNING),           # the engine: the first group starts
    "pause": ((RUNNING,), PAUSED),
    "error_action": ((RUNNING,), PAUSED),        # the engine: a group's error condition
    "resume": ((PAUSED,), RUNNING),
    "trigger_next_group": ((RUNNING,), RUNNING),
    "finished": ((RUNNING,), FINISHED),          # the engine: every group done
    "stop": ((READY, STARTING, RUNNING, PAUSED), STOPPED),
    "retry": ((FINISHED, STOPPED), None),        # reads only: a new rollout is made
    "delete": ((CREATING, WAITING_FOR_APPROVAL, APPROVAL_DENIED, READY, STARTING, RUNNING,
                PAUSED, STOPPING, STOPPED, FINISHED, DELETING), DELETED),
}

GROUP_LIFE_CYCLE = {
    "scheduled": ((GROUP_READY,), GROUP_SCHEDULED),   # the rollout starts
    "started": ((GROUP_SCHEDULED,), GROUP_RUNNING),
    "finished": ((GROUP_RUNNING,), GROUP_FINISHED),
    "error": ((GROUP_RUNNING,), GROUP_ERROR),
    "stopped": ((GROUP_READY, GROUP_SCHEDULED, GROUP_RUNNING), GROUP_FINISHED),
}

# Action statuses as a group's progress counts them (`totalTargetsPerStatus`).
PROGRESS = {
    t.SCHEDULED: "scheduled",
    t.WAIT_FOR_CONFIRMATION: "running", t.RUNNING: "running", t.RETRIEVED: "running",
    t.CANCELING: "running",
    t.FINISHED: "finished", t.DOWNLOADED: "finished",
    t.CANCELED: "cancelled",
    t.ERROR: "error",
}
PROGRESS_KEYS = ("running", "notstarted", "scheduled", "cancelled", "finished", "error")


def allowed(event, status):
    return status in LIFE_CYCLE[event][0]


def move(rollout_id, event, now, by, **fields):
    """The rollout's status move for `event`, only from a status the event allows: whether
    it moved (the caller holds the write transaction)."""
    before, after = LIFE_CYCLE[event]
    values = dict(fields, last_modified_at=now, last_modified_by=by)
    if after is not None:
        values["status"] = after
    return Rollout.update(**values).where(
        (Rollout.id == rollout_id) & Rollout.status.in_(before)).execute() == 1


def move_groups(where, event, now, by):
    """Groups matching `where` in a status `event` allows move on; how many did."""
    before, after = GROUP_LIFE_CYCLE[event]
    return RolloutGroup.update(status=after, last_modified_at=now, last_modified_by=by).where(
        where & RolloutGroup.status.in_(before)).execute()


# --- counting --------------------------------------------------------------------------------

def action_counts(rollout_id):
    """{group id: Counter(action status -> count)} of a rollout's actions."""
    counts = collections.defaultdict(collections.Counter)
    for group_id, status, count in database.execute_sql(
            'SELECT "rollout_group_id", "status", COUNT(*) FROM "action" '
            'WHERE "rollout_id" = ? GROUP BY 1, 2', (rollout_id,)):
        counts[group_id][status] = count
    return counts


def progress(counter, group_status):
    """`totalTargetsPerStatus` of one group: a group whose rollout has not started yet shows
    its SCHEDULED actions as `notstarted`, as hawkBit shows targets without an action."""
    figures = collections.OrderedDict((key, 0) for key in PROGRESS_KEYS)
    for status, count in counter.items():
        key = PROGRESS.get(status, "running")
        if key == "scheduled" and group_status == GROUP_READY:
            key = "notstarted"
        figures[key] += count
    return figures


def _reached(count, threshold, total, strictly):
    if strictly:
        return count * 100 > threshold * total
    return count * 100 >= threshold * total


# --- the moves that change actions -----------------------------------------------------------

def start_group(rollout, group, now):
    """Start one group: SCHEDULED -> RUNNING, then open its SCHEDULED actions as an
    assignment would. False (nothing done) if the group was not SCHEDULED. A set deleted or
    invalidated since the rollout was made is not deployed: the rollout stops instead."""
    distribution_set = DistributionSet.get_by_id(rollout.distribution_set_id)
    if distribution_set.deleted or not distribution_set.valid:
        return stop(rollout, now, SYSTEM)
    if not move_groups(RolloutGroup.id == group.id, "started", now, SYSTEM):
        return False
    settings = tenant.settings()
    scheduled = list(Action.select(Action.id, Action.target).where(
        (Action.rollout_group == group.id) & (Action.status == t.SCHEDULED)).order_by(Action.id))
    by = rollout.created_by
    _supersede_open_actions([action.target_id for action in scheduled], settings, now, by)
    waiting = set()
    if settings["user.confirmation.flow.enabled"] and group.confirmation_required:
        auto_confirmed = Target.select(Target.id).where(Target.auto_confirm_active)
        waiting = {row.id for row in Action.select(Action.id).where(
            (Action.rollout_group == group.id) & (Action.status == t.SCHEDULED)
            & Action.target.not_in(auto_confirmed))}
    values = {"rollout": rollout.name, "group": group.name}
    for event, action_ids in (
            ("rollout_started_unconfirmed", [a.id for a in scheduled if a.id in waiting]),
            ("rollout_started", [a.id for a in scheduled if a.id not in waiting])):
        apply_event_to_many(action_ids, t.SERVER, t.SCHEDULED, event, rollout.action_type,
                            now, by, values)
    assignments.lock_implicitly(distribution_set)
    return True


def _supersede_open_actions(target_ids, settings, now, by):
    """What an assignment does to the targets' earlier open actions (storage.assignments):
    cancel them, or close them with autoclose, unless their set is a migration step."""
    supersede = ("close_obsolete" if settings["repository.actions.autoclose.enabled"]
                 else "cancel_obsolete")
    by_state = collections.defaultdict(list)
    for start in range(0, len(target_ids), 500):
        for other in (Action.select(Action.id, Action.status, Action.action_type).join(
                DistributionSet, on=(Action.distribution_set == DistributionSet.id)).where(
                Action.target.in_(target_ids[start:start + 500]) & Action.active
                & ~DistributionSet.required_migration_step).order_by(Action.id)):
            by_state[other.status, other.action_type].append(other.id)
    for (status, action_type), action_ids in sorted(by_state.items()):
        apply_event_to_many(action_ids, t.OPERATOR, status, supersede, action_type, now, by)


def stop(rollout, now, by):
    """Stop the rollout: its actions still SCHEDULED are cancelled, its groups end. False if
    its status does not allow it (the caller holds the write transaction)."""
    if not move(rollout.id, "stop", now, by):
        return False
    scheduled = [row.id for row in Action.select(Action.id).where(
        (Action.rollout == rollout.id) & (Action.status == t.SCHEDULED)).order_by(Action.id)]
    apply_event_to_many(scheduled, t.SERVER, t.SCHEDULED, "rollout_stopped",
                        rollout.action_type, now, by, {"rollout": rollout.name})
    move_groups(RolloutGroup.rollout == rollout.id, "stopped", now, by)
    return True


def next_scheduled_group(rollout_id):
    return (RolloutGroup.select().where((RolloutGroup.rollout == rollout_id)
                                        & (RolloutGroup.status == GROUP_SCHEDULED))
            .order_by(RolloutGroup.id).first())


# --- evaluation ------------------------------------------------------------------------------

def evaluate(now):
    """One pass over every rollout the engine has work for: those STARTING or RUNNING, and
    those READY whose startAt has come. Returns how many moves were made."""
    due = (Rollout.status.in_((STARTING, RUNNING))
           | ((Rollout.status == READY) & Rollout.start_at.is_null(False)
              & (Rollout.start_at <= now)))
    rollout_ids = [row.id for row in Rollout.select(Rollout.id).where(
        due & ~Rollout.deleted).order_by(Rollout.id)]
    moves = 0
    for rollout_id in rollout_ids:
        moves += evaluate_rollout(rollout_id, now)
    return moves


def evaluate_rollout(rollout_id, now):
    """Take one rollout as far as it goes now, one transaction per move; the moves made."""
    moves = 0
    while True:
        with write():
            moved = _step(rollout_id, now)
        if not moved:
            return moves
        moves += 1


def _step(rollout_id, now):
    """Make the one move the rollout is due for, if any: whether one was made."""
    rollout = Rollout.get_or_none(Rollout.id == rollout_id)
    if rollout is None or rollout.deleted:
        return False
    if rollout.status == READY:
        due = rollout.start_at is not None and rollout.start_at <= now
        return due and move(rollout.id, "auto_start", now, SYSTEM)
    if rollout.status == STARTING:
        if not move(rollout.id, "started", now, SYSTEM):
            return False
        move_groups(RolloutGroup.rollout == rollout.id, "scheduled", now, SYSTEM)
        first = next_scheduled_group(rollout.id)
        if first is not None:
            start_group(rollout, first, now)
        return True
    if rollout.status == RUNNING:
        return _run_groups(rollout, now)
    return False


def _run_groups(rollout, now):
    groups = list(RolloutGroup.select().where(RolloutGroup.rollout == rollout.id)
                  .order_by(RolloutGroup.id))
    counts = action_counts(rollout.id)
    for index, group in enumerate(groups):
        if group.status != GROUP_RUNNING:
            continue
        counter = counts.get(group.id, collections.Counter())
        total = sum(counter.values())
        if group.error_condition == THRESHOLD and _reached(
                counter[t.ERROR], group.error_threshold, total, strictly=True):
            return _error_action(rollout, group, now)
        success = _reached(counter[t.FINISHED] + counter[t.DOWNLOADED],
                           group.success_threshold, total, strictly=False)
        following = groups[index + 1] if index + 1 < len(groups) else None
        if success and following is not None and following.status == GROUP_SCHEDULED:
            return start_group(rollout, following, now)
        still_open = counter[t.SCHEDULED] + sum(counter[s] for s in t.ACTIVE_STATUSES)
        if not still_open:
            if success:
                return bool(move_groups(RolloutGroup.id == group.id, "finished", now, SYSTEM))
            return _error_action(rollout, group, now)
    if any(group.status == GROUP_RUNNING for group in groups):
        return False
    following = next_scheduled_group(rollout.id)
    if following is not None:
        return start_group(rollout, following, now)
    open_actions = Action.select().where((Action.rollout == rollout.id) & (
        Action.active | (Action.status == t.SCHEDULED))).exists()
    return not open_actions and move(rollout.id, "finished", now, SYSTEM)


def _error_action(rollout, group, now):
    """The group failed: it becomes ERROR and (PAUSE) the rollout pauses, together."""
    move_groups(RolloutGroup.id == group.id, "error", now, SYSTEM)
    if group.error_action == PAUSE:
        move(rollout.id, "error_action", now, SYSTEM)
    return True


# --- the scheduler thread --------------------------------------------------------------------

class Scheduler(periodic.Periodic):
    """Runs `evaluate()` in a thread of its own (storage.periodic): every `interval` seconds
    after the previous pass ended, and at once after `wake()` (a rollout changed or a device
    reported on one of its actions); with a OnceLock, only in the process that holds it."""

    name = "rollout evaluation"

    def turn(self, now):
        evaluate(now)


scheduler = Scheduler()


def add_rollouts(db):
    """Schema step 4 -> 5: rollouts, their groups, and each action's rollout and group
    (none for the actions there are). Each piece only if it is missing."""
    db.create_tables([Rollout, RolloutGroup])
    columns = [column.name for column in db.get_columns("action")]
    if "rollout_id" not in columns:
        db.execute_sql('ALTER TABLE "action" ADD COLUMN "rollout_id" INTEGER '
                       'REFERENCES "rollout" ("id")')
    if "rollout_group_id" not in columns:
        db.execute_sql('ALTER TABLE "action" ADD COLUMN "rollout_group_id" INTEGER '
                       'REFERENCES "rollout_group" ("id")')
    db.execute_sql('CREATE INDEX IF NOT EXISTS "action_rollout_id" ON "action" ("rollout_id")')
    db.execute_sql('CREATE INDEX IF NOT EXISTS "action_rollout_group_id" '
                   'ON "action" ("rollout_group_id")')
