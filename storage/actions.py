"""Carrying out the transition table: status entries, quotas, and the effects on the target.

`apply_event` is the only function in ddi-lite that changes an action's status or `active` flag,
with its set-based twin `apply_event_to_many` for the server's events on many actions at once
(a rollout group's start or stop). Callers hold a write transaction (`storage.db.write`).
"""

import collections

from storage import transitions as t
from storage.errors import EmptyNotFound, NotCancelable, NotForceQuitable, QuotaExceeded
from storage.db import database, scalar
from storage.models import Action, ActionStatus, Target

MAX_MESSAGE_LENGTH = 512
SERVER_PREFIX = "Update Server: "

Limits = collections.namedtuple(
    "Limits", "status_entries_per_action messages_per_status attributes_per_target")

# hawkBit's defaults; `configure` installs the server's own.
limits = Limits(status_entries_per_action=1000, messages_per_status=50, attributes_per_target=100)


def configure(new_limits):
    global limits
    limits = new_limits


Outcome = collections.namedtuple("Outcome", "applied late")


def split_messages(lines):
    """hawkBit keeps messages of at most 512 characters: longer ones become several.

    Only the stored form: the message quota counts messages as they were said, so one long
    device log is one message, not one per 512 characters (hawkBit counts the pieces, and
    refused a single 900 KB message as 1758; the body limit bounds its size already).
    """
    messages = []
    for line in lines:
        if line == "":
            messages.append(line)
        for start in range(0, len(line), MAX_MESSAGE_LENGTH):
            messages.append(line[start:start + MAX_MESSAGE_LENGTH])
    return messages


def device_messages(details, code, prefix=""):
    messages = list(details)
    if code is not None:
        messages.append(prefix % code if prefix else "Device reported status code: %d" % code)
    return messages


def entry_count(action):
    return scalar('SELECT COUNT(*) FROM "action_status" WHERE "action_id" = ?', action.id)


def check_entry_quota(action):
    quota = limits.status_entries_per_action
    if quota and entry_count(action) + 1 > quota:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign 1 more ActionStatus entities to Action '%d'. "
            "The maximum is %d." % (action.id, quota))


def check_message_quota(messages):
    quota = limits.messages_per_status
    if quota and len(messages) > quota:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d more messages to ActionStatus. "
            "The maximum is %d." % (len(messages), quota))


_INSERT_ENTRY = (
    'INSERT INTO "action_status" ("action_id", "status", "timestamp", "reported_at", '
    '"created_by", "code", "messages") VALUES (?, ?, ?, ?, ?, ?, ?)')


def append_entry(action, status, messages, now, by, timestamp=None, code=None):
    """Append one status entry (a fixed INSERT: feedback is the busiest write)."""
    database.execute_sql(_INSERT_ENTRY, (
        action.id, status, timestamp if timestamp is not None else now, now, by, code,
        ActionStatus.messages.db_value(split_messages(messages))))


def apply_event(action, channel, execution, finished=None, details=(), code=None,
                timestamp=None, now=None, by="system", message_values=None):
    """Run one event against an action through the transition table.

    Returns an Outcome; raises the error the table's refusal names. Device feedback for a
    closed action is kept as a late report (within quota) and never changes the action.
    """
    row = t.transition(channel, action.status, execution, finished, action.action_type)
    if row is None:
        return _refuse(action, channel, execution, finished, details, code, timestamp, now, by)
    server_line = row.message % (message_values or {}) if row.message else None
    if channel in t.DEVICE_CHANNELS:
        reported = device_messages(details, code, "Confirmation status code: %d"
                                   if channel == t.CONFIRMATION else "")
        if t.server_line_always_said(channel, execution, finished):
            messages = ([server_line] + reported if channel == t.CANCEL
                        else reported + [server_line])
        else:
            messages = reported or [server_line]
    else:
        messages = list(details) + [server_line]
    if row.quotas != t.NO_QUOTA:
        check_message_quota(messages)
    if row.quotas == t.ALL_QUOTAS:
        check_entry_quota(action)
    append_entry(action, row.entry, messages, now, by, timestamp, code)
    changed = False
    if row.to_status is not None and row.to_status != action.status:
        action.status = row.to_status
        changed = True
    if row.active is not None and row.active != action.active:
        action.active = row.active
        changed = True
    if code is not None and channel == t.DEPLOYMENT:
        action.last_status_code = code
        changed = True
    if changed:
        touch(action, now, by)
    if row.effects:
        _apply_effects(action, row.effects, timestamp if timestamp is not None else now, now, by)
    return Outcome(applied=True, late=False)


def apply_event_to_many(action_ids, channel, status, execution, action_type, now, by,
                        message_values=None):
    """The table's row for `execution` on actions in `status` of `action_type`, applied to
    all of `action_ids` that are still in that status, with a few statements per 500 actions
    instead of a few per action: a rollout group of 20,000 targets starts in one transaction
    that holds the write lock for a moment, not for minutes. Only rows of the server's own
    events qualify: no device details, no quota, no effect but ASSIGNED. The number applied."""
    row = t.transition(channel, status, execution, None, action_type)
    if row is None:
        return 0
    if row.quotas != t.NO_QUOTA or row.effects - {t.ASSIGNED}:
        raise ValueError("row %r cannot be applied to many actions at once" % (execution,))
    messages = ActionStatus.messages.db_value(
        split_messages([row.message % (message_values or {})]))
    to_status = row.to_status or status
    applied = 0
    for start in range(0, len(action_ids), 500):
        chunk = list(action_ids[start:start + 500])
        these = '"id" IN (%s) AND "status" = ?' % ", ".join("?" * len(chunk))
        database.execute_sql(
            'INSERT INTO "action_status" ("action_id", "status", "timestamp", "reported_at", '
            '"created_by", "code", "messages") SELECT "id", ?, ?, ?, ?, NULL, ? '
            'FROM "action" WHERE ' + these + ' ORDER BY "id"',
            [row.entry, now, now, by, messages] + chunk + [status])
        if t.ASSIGNED in row.effects:
            database.execute_sql(
                'UPDATE "target" SET "assigned_ds_id" = (SELECT "distribution_set_id" FROM '
                '"action" WHERE "action"."target_id" = "target"."id" AND "action".' + these
                + '), "update_status" = ?, "last_modified_at" = ?, "last_modified_by" = ? '
                'WHERE "id" IN (SELECT "target_id" FROM "action" WHERE ' + these + ')',
                chunk + [status, "PENDING", now, by] + chunk + [status])
        active = "" if row.active is None else ', "active" = %s' % ("TRUE" if row.active else "FALSE")
        cursor = database.execute_sql(
            'UPDATE "action" SET "status" = ?' + active + ', "revision" = "revision" + 1, '
            '"last_modified_at" = ?, "last_modified_by" = ? WHERE ' + these,
            [to_status, now, by] + chunk + [status])
        applied += cursor.rowcount
    return applied


def touch(action, now, by):
    action.revision += 1
    action.last_modified_at = now
    action.last_modified_by = by
    action.save()


def _refuse(action, channel, execution, finished, details, code, timestamp, now, by):
    refusal = t.refusal(channel, execution, action.active)
    if refusal == t.LATE_REPORT:
        _keep_late_report(action, channel, execution, finished, details, code, timestamp, now, by)
        return Outcome(applied=False, late=True)
    if refusal == t.EMPTY_NOT_FOUND:
        raise EmptyNotFound("action %d is %s" % (action.id, action.status))
    if refusal == t.NOT_CANCELABLE:
        raise NotCancelable()
    if refusal == t.NOT_FORCE_QUITABLE:
        raise NotForceQuitable()
    return Outcome(applied=False, late=False)


def _keep_late_report(action, channel, execution, finished, details, code, timestamp, now, by):
    """Record what a device said about an action that is already closed, as a WARNING entry.

    Dropped silently beyond the quotas: a device must never be made to retry a late report.
    """
    report = "/".join(part for part in (execution, finished) if part)
    messages = device_messages(details, code) + [
        SERVER_PREFIX + "Late %s feedback '%s' for the closed action (%s) was ignored."
        % (channel, report, action.status)]
    quota = limits.status_entries_per_action
    over_entries = quota and entry_count(action) + 1 > quota
    over_messages = limits.messages_per_status and len(messages) > limits.messages_per_status
    if not (over_entries or over_messages):
        append_entry(action, t.WARNING, messages, now, by, timestamp, code)


def _apply_effects(action, effects, event_time, now, by):
    target = Target.get_by_id(action.target_id)
    ds_id = action.distribution_set_id
    if t.INSTALLED in effects:
        if target.installation_date is None or target.installation_date < event_time:
            target.installed_ds = ds_id
            target.installation_date = event_time
            if action.action_type == t.DOWNLOAD_ONLY:
                target.assigned_ds = ds_id
        if target.assigned_ds_id == target.installed_ds_id:
            target.update_status = "IN_SYNC"
    if t.ASSIGNED in effects:
        target.assigned_ds = ds_id
        target.update_status = "PENDING"
    if t.FAILED in effects:
        target.update_status = "ERROR"
        target.assigned_ds = None
    if t.DOWNLOAD_ONLY_DONE in effects:
        target.update_status = "IN_SYNC"
    if t.CANCEL_COMPLETED in effects:
        oldest_open = (Action.select().where((Action.target == target) & Action.active)
                       .order_by(Action.id).first())
        if oldest_open is None:
            target.assigned_ds = target.installed_ds_id
            target.update_status = "IN_SYNC"
        else:
            target.assigned_ds = oldest_open.distribution_set_id
    if t.REQUEST_ATTRIBUTES in effects:
        target.request_attributes = True
    target.last_modified_at = now
    target.last_modified_by = by
    target.save()
