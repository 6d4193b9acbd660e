"""Auto-assignment: a target filter's distribution set goes to every target its query matches
that has never had an action for that set (hawkBit's auto-assign checker).

Which targets are looked at. A run does not evaluate every filter against every target: that
is what made hawkBit's checker load its database constantly with 1.2M targets (hawkBit
#983). Database triggers (`create_triggers` below) give each target a change number in `target_change`
that only grows: taken when the target is created, and again whenever a field a query can
name changes (its attributes, name, status, assigned or installed set, type, tags,
metadata, ...); a poll, which only writes the poll time, leaves it alone. Each filter
remembers up to which change number it has checked (`TargetFilter.checked_change`), so a run
reads only the targets changed since, through the index on the change number. A filter
starts again from zero, a full pass, when its query or its set changes, and every
`full_pass_hours`, for what a change number cannot see: the poll time, `${NOW_TS}`, the new
name of a set, tag or type, a type's new compatible set types, a history that was purged.

Which targets get the set: those the query matches that never had an action for the set and
whose target type (if any) is compatible with the set's type, as hawkBit's checker picks
them; `storage.assignments.assign` assigns, as for the Management API.

Restarts. Targets are checked in batches of BATCH change numbers, each batch one write
transaction holding its new actions and the filter's new `checked_change` together: a crash
(kill -9 included) loses a whole batch or nothing, and the next run starts where the last
committed batch ended. The rule "never a set twice" does not depend on that: the batch only
selects targets without any action for the set, inside the transaction that assigns.

Who runs it. `Scheduler` is the thread `ddi_lite.serve()` starts: a run at start, every
`interval` seconds, and at once when a target registers or reports attributes (`wake()`,
called by storage.ddi after its write has committed; the poll path only sets an Event). One
process owns the scheduler: with several server processes (issue 15), one of them should
start it. Two runners at once would not assign twice (the rule above holds per
transaction), only do the work twice.
"""

import logging

from peewee import SQL, fn

from storage import assignments, periodic, query
from storage.db import create_trigger, differs, scalar, write
from storage.errors import StoreError
from storage.models import Action, DistributionSet, Target, TargetChange, TargetFilter

log = logging.getLogger("ddi-lite")

# Target changes one transaction examines: it holds the write lock for a few milliseconds.
BATCH = 200
# hawkBit's first line in the history of an action auto-assignment created.
MESSAGE = "Auto assignment by target filter: %s"

# The target columns a query can name (storage.query, collection "targets"), except the poll
# time: a poll must cost no write here. controller_id and created_* never change.
WATCHED_COLUMNS = ("name", "description", "address", "group", "update_status",
                   "assigned_ds_id", "installed_ds_id", "target_type_id", "attributes",
                   "last_modified_at", "last_modified_by")

_NEXT = '(SELECT COALESCE(MAX("seq"), 0) + 1 FROM "target_change")'


def _note(target_id):
    """A trigger's body: the target gets the next change number. No ON CONFLICT in it: SQLite
    would apply the conflict clause of the statement that fired the trigger instead (the tag
    assignment's INSERT OR IGNORE, for one)."""
    return ('UPDATE "target_change" SET "seq" = %s WHERE "target_id" = %s; '
            'INSERT INTO "target_change" ("target_id", "seq") SELECT %s, %s WHERE NOT EXISTS '
            '(SELECT 1 FROM "target_change" WHERE "target_id" = %s);'
            % (_NEXT, target_id, target_id, _NEXT, target_id))


# (name, event, table, condition): each runs `_note` for the target the row belongs to.
def _triggers():
    watched = ", ".join('"%s"' % column for column in WATCHED_COLUMNS)
    changed = " OR ".join(differs('OLD."%s"' % column, 'NEW."%s"' % column)
                          for column in WATCHED_COLUMNS)
    # Not for the metadata or tags of a target being deleted: its change row goes with it.
    target_remains = 'EXISTS (SELECT 1 FROM "target" WHERE "id" = OLD."target_id")'
    return (
        ("target_change_on_insert", "INSERT", "target", 'NEW."id"', None),
        ("target_change_on_update", "UPDATE OF " + watched, "target", 'NEW."id"', changed),
        ("target_change_on_metadata_insert", "INSERT", "target_metadata", 'NEW."target_id"',
         None),
        ("target_change_on_metadata_update", "UPDATE", "target_metadata", 'NEW."target_id"',
         differs('OLD."value"', 'NEW."value"')),
        ("target_change_on_metadata_delete", "DELETE", "target_metadata", 'OLD."target_id"',
         target_remains),
        ("target_change_on_tag_insert", "INSERT", "target_tag_assignment", 'NEW."target_id"',
         None),
        ("target_change_on_tag_delete", "DELETE", "target_tag_assignment", 'OLD."target_id"',
         target_remains),
    )


TRIGGER_NAMES = tuple(trigger[0] for trigger in _triggers())


def create_triggers(db):
    for name, event, table, target_id, condition in _triggers():
        create_trigger(db, name, event, table, _note(target_id), condition)


def add_target_filters(db):
    """Schema step 3 -> 4: target filters, a change number for every target there is, and
    the index that tells whether a target ever had an action for a set. Each piece only if
    it is missing."""
    db.create_tables([TargetFilter, TargetChange])
    db.execute_sql('CREATE INDEX IF NOT EXISTS "action_target_id_distribution_set_id" '
                   'ON "action" ("target_id", "distribution_set_id")')
    create_triggers(db)
    db.execute_sql('INSERT INTO "target_change" ("target_id", "seq") '
                   'SELECT "id", "id" FROM "target" WHERE TRUE ON CONFLICT DO NOTHING')


def newest_change():
    return scalar('SELECT MAX("seq") FROM "target_change"') or 0


# --- one run --------------------------------------------------------------------------------

# Filters whose last run failed, with the reason: logged once, not at every run.
_failing = {}


def run(now, full_pass_hours=0, stopping=lambda: False):
    """Check every filter that has an auto-assignment, up to the newest target change there
    is now; the number of actions created. `stopping()` is asked between batches."""
    filter_ids = [row.id for row in TargetFilter.select(TargetFilter.id).where(
        TargetFilter.auto_assign_ds.is_null(False)).order_by(TargetFilter.id)]
    if not filter_ids:
        return 0
    newest = newest_change()
    full_pass_ms = full_pass_hours * 3600 * 1000
    created = 0
    for filter_id in filter_ids:
        try:
            created += _run_filter(filter_id, newest, now, full_pass_ms, stopping)
            _failing.pop(filter_id, None)
        except StoreError as error:  # an incomplete set, a query the rules no longer accept
            if _failing.get(filter_id) != error.message:
                log.warning("auto-assignment of target filter %d skipped: %s", filter_id,
                            error.message)
            _failing[filter_id] = error.message
    return created


def _run_filter(filter_id, newest, now, full_pass_ms, stopping):
    created = 0
    while not stopping():
        with write():
            target_filter = TargetFilter.get_or_none(TargetFilter.id == filter_id)
            if target_filter is None or target_filter.auto_assign_ds_id is None:
                return created
            if full_pass_ms and (target_filter.full_pass_at or 0) + full_pass_ms <= now:
                target_filter.checked_change = 0
                target_filter.full_pass_at = now
            start = target_filter.checked_change
            if start >= newest:
                return created
            end = _batch_end(start, newest)
            distribution_set = DistributionSet.get_by_id(target_filter.auto_assign_ds_id)
            assignments.check_assignable(distribution_set)
            user = target_filter.auto_assign_initiated_by or target_filter.created_by
            for target in _unassigned_matches(target_filter, distribution_set, start, end, now):
                action = assignments.assign(
                    distribution_set, target, now, user,
                    action_type=target_filter.auto_assign_action_type,
                    weight=target_filter.auto_assign_weight,
                    confirmation_required=target_filter.auto_assign_confirmation,
                    message=MESSAGE % target_filter.name)
                created += action is not None
            target_filter.checked_change = end
            target_filter.save(only=[TargetFilter.checked_change, TargetFilter.full_pass_at])
        if end >= newest:
            return created
    return created


def _batch_end(start, newest):
    """The change number that ends the batch after `start`: BATCH changes on, at most
    `newest`."""
    end = scalar('SELECT "seq" FROM "target_change" WHERE "seq" > ? ORDER BY "seq" '
                 'LIMIT 1 OFFSET ?', start, BATCH - 1)
    return newest if end is None or end > newest else end


def _unassigned_matches(target_filter, distribution_set, start, end, now):
    """The targets changed within (start, end] that match the filter's query, never had an
    action for the set and may take its type, in the order they changed."""
    action = Action.alias()
    had_action = action.select(SQL("1")).where((action.target == Target.id) & (
        action.distribution_set == distribution_set.id))
    select = (Target.select()
              .join(TargetChange, on=(TargetChange.target == Target.id))
              .where((TargetChange.seq > start) & (TargetChange.seq <= end)
                     & ~fn.EXISTS(had_action)
                     & ~assignments.incompatible_with(distribution_set.set_type_id))
              .order_by(TargetChange.seq))
    matches = query.filter_expression("targets", target_filter.query, now=now)
    if matches is not None:
        select = select.where(matches)
    return list(select)


# --- the scheduler thread -------------------------------------------------------------------

class Scheduler(periodic.Periodic):
    """Runs `run()` in a thread of its own (storage.periodic): at start, every `interval`
    seconds after the previous run ended, and at once after `wake()` (a target registered or
    changed); with a OnceLock, only in the process that holds it."""

    name = "auto-assign"

    def __init__(self):
        periodic.Periodic.__init__(self)
        self.full_pass_hours = 0

    def start(self, interval, full_pass_hours, once=None):
        self.full_pass_hours = full_pass_hours
        periodic.Periodic.start(self, interval, once)

    def turn(self, now):
        created = run(now, self.full_pass_hours, self.stopping)
        if created:
            log.info("auto-assignment created %d actions", created)


scheduler = Scheduler()
