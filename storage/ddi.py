"""The device side (DDI v1): what a device sees and what its reports change.

Every function takes plain values (the target row the caller looked up, ids, parsed bodies,
`now` in epoch ms, base URLs as strings) and returns plain documents ready to serialise. HTTP
stays in `ddi_lite.py`. Section numbers refer to `ddi-contract.md`.
"""

import collections
import logging
import secrets
import threading
import time
import urllib.parse

import peewee

from storage import assignments, autoassign, chunks, query, rollout_engine, schedule
from storage import tenant
from storage import transitions as t
from storage import actions as action_rules
from storage.actions import SERVER_PREFIX, apply_event
from storage.db import Prepared, database, execute_many, scalar, write, writer
from storage.errors import (ActionNotOfTarget, AutoConfirmAlreadyActive, BodyNotReadable,
                            ConstraintViolation, EmptyNotFound, EntityNotFound,
                            IncompleteDistributionSet, InvalidDistributionSet,
                            InvalidTargetAttributes, ModuleNotAssigned, QuotaExceeded)
from storage.models import Action, ActionStatus, Artifact, DistributionSet, Target

MAX_CONTROLLER_ID = 256
MAX_HISTORY = 100
PLUG_AND_PLAY = "CONTROLLER_PLUG_AND_PLAY"
# An artifact's checksum file is at its download URL plus this (§4.16).
MD5SUM_SUFFIX = ".MD5SUM"


def now_ms():
    return int(time.time() * 1000)


# --- targets and polls ---------------------------------------------------------------------

_TARGET_BY_CONTROLLER_ID = Prepared(
    'SELECT * FROM "target" WHERE "controller_id" = ?', Target)


def find_target(controller_id):
    return _TARGET_BY_CONTROLLER_ID.first(controller_id)


# What the device routes read of a target and of the action it is shown, as plain tuples
# named like the models' fields: building model instances (every column converted, the
# attributes' JSON parsed) was a fifth of a poll. Booleans stay SQLite's 0 and 1.
DeviceTarget = collections.namedtuple(
    "DeviceTarget", "id controller_id security_token address update_status request_attributes "
    "installed_ds_id assigned_ds_id auto_confirm_active auto_confirm_initiator "
    "auto_confirm_remark auto_confirm_activated_at")
ShownAction = collections.namedtuple(
    "ShownAction", "id target_id distribution_set_id action_type forced_time status active "
    "revision maintenance_schedule maintenance_duration maintenance_timezone")


def _columns(alias, names):
    return ", ".join('"%s"."%s"' % (alias, name) for name in names)


_DEVICE_TARGET = 'SELECT %s FROM "target" AS "t" WHERE "t"."controller_id" = ?' % _columns(
    "t", DeviceTarget._fields)
# A poll needs the target and the action it is shown: one statement instead of two.
_DEVICE_TARGET_AND_SHOWN_ACTION = (
    'SELECT %s, %s FROM "target" AS "t" LEFT JOIN "action" AS "a" ON "a"."id" = '
    '(SELECT "id" FROM "action" WHERE "target_id" = "t"."id" AND "active" = TRUE '
    'ORDER BY COALESCE("weight", 1000) DESC, "id" LIMIT 1) '
    'WHERE "t"."controller_id" = ?' % (_columns("t", DeviceTarget._fields),
                                        _columns("a", ShownAction._fields)))
_TARGET_WIDTH = len(DeviceTarget._fields)


def device_target(controller_id):
    """The DeviceTarget of `controller_id`, or None."""
    row = database.execute_sql(_DEVICE_TARGET, (controller_id,)).fetchone()
    return None if row is None else DeviceTarget._make(row)


def device_target_and_shown_action(controller_id):
    """(DeviceTarget, the ShownAction or None); (None, None) for an unknown controller."""
    row = database.execute_sql(_DEVICE_TARGET_AND_SHOWN_ACTION, (controller_id,)).fetchone()
    if row is None:
        return None, None
    action = None if row[_TARGET_WIDTH] is None else ShownAction._make(row[_TARGET_WIDTH:])
    return DeviceTarget._make(row[:_TARGET_WIDTH]), action


def require_target(target, controller_id):
    if target is None:
        raise EntityNotFound("Target", controller_id)
    return target


def validate_controller_id(controller_id):
    if not controller_id or len(controller_id) > MAX_CONTROLLER_ID or any(
            ch.isspace() for ch in controller_id):
        raise ConstraintViolation(
            "The controller id must have 1 to %d characters and no whitespace."
            % MAX_CONTROLLER_ID)


class PollLog:
    """Last-poll times waiting to be written.

    A poll that changes nothing but the time is not worth a write of its own: times are
    collected here and written in one transaction at most once a second (hawkBit does the
    same every ~10 s), or whenever someone is about to read them. By default the request
    that finds the interval over writes them; a server starts a writer thread instead
    (`start_writer`), so that no device waits for that write or the checkpoint after it.
    """

    interval_ms = 1000

    def __init__(self):
        self._pending = {}
        self._lock = threading.Lock()
        self._last_flush = 0
        self._writer = None
        self._stop = threading.Event()

    def record(self, target_id, when):
        with self._lock:
            self._pending[target_id] = when
            due = self._writer is None and when - self._last_flush >= self.interval_ms
        if due:
            self.flush(when)

    def start_writer(self):
        if self._writer is None:
            self._stop.clear()
            self._writer = threading.Thread(target=self._write_forever, name="poll-log",
                                            daemon=True)
            self._writer.start()

    def stop_writer(self):
        """End the writer thread, then write what is left. A flush alone could return while
        the thread still writes the times it took, and the process could end before them."""
        if self._writer is not None:
            self._stop.set()
            self._writer.join()
            self._writer = None
        self.flush()

    def _write_forever(self):
        while not self._stop.wait(self.interval_ms / 1000):
            try:
                self.flush()
            except Exception:  # a failed write must not end the writer; it retries next time
                logging.getLogger("ddi-lite").exception("writing poll times failed")

    def flush(self, when=None):
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = when or now_ms()
        if pending:
            with write():
                execute_many(
                    'UPDATE "target" SET "last_target_query" = ? WHERE "id" = ? AND '
                    '("last_target_query" IS NULL OR "last_target_query" < ?)',
                    [(polled_at, target_id, polled_at) for target_id, polled_at in pending.items()])


poll_log = PollLog()


def register_poll(target, controller_id, address, now):
    """Find or create (plug and play) the polling target and note the poll (§4.1.2 step 1).

    A target that registers (created here, or polling for the first time) wakes the
    auto-assignment once the write has committed; other polls cost it nothing."""
    if target is None:
        validate_controller_id(controller_id)
        with write():
            target = find_target(controller_id)
            created = None
            if target is None:
                created = Target.create(
                    controller_id=controller_id, name=controller_id[:128],
                    description="Plug and Play target: %s" % controller_id[:400],
                    security_token=secrets.token_hex(16), address=address,
                    update_status="REGISTERED", last_target_query=now, request_attributes=True,
                    attributes={}, created_at=now, created_by=PLUG_AND_PLAY,
                    last_modified_at=now, last_modified_by=PLUG_AND_PLAY)
        if created is not None:
            autoassign.scheduler.wake()
        return device_target(controller_id)
    if target.address != address or target.update_status == "UNKNOWN":
        with write():
            changes = {Target.address: address, Target.last_target_query: now}
            if target.update_status == "UNKNOWN":
                changes[Target.update_status] = "REGISTERED"
            Target.update(changes).where(Target.id == target.id).execute()
        if target.update_status == "UNKNOWN":
            autoassign.scheduler.wake()
        return device_target(controller_id)
    poll_log.record(target.id, now)
    return target


# --- action selection and the `c` value ----------------------------------------------------

_CURRENT_ACTION = Prepared(
    'SELECT * FROM "action" WHERE "target_id" = ? AND "active" = TRUE '
    'ORDER BY COALESCE("weight", 1000) DESC, "id" LIMIT 1', Action)
_INSTALLED_ACTION = Prepared(
    'SELECT * FROM "action" WHERE "target_id" = ? AND "distribution_set_id" = ? '
    'AND "status" = ? ORDER BY "id" DESC LIMIT 1', Action)


def current_action(target):
    """The active action the device is shown: highest weight, then the oldest (§5.3)."""
    return _CURRENT_ACTION.first(target.id)


def installed_action(target):
    """The newest FINISHED action of the installed set (§4.1.2 step 3)."""
    if target.installed_ds_id is None:
        return None
    return _INSTALLED_ACTION.first(target.id, target.installed_ds_id, t.FINISHED)


def _int32(value):
    return ((value + 2 ** 31) % 2 ** 32) - 2 ** 31


def c_value(action, window_open, forced_hit):
    """An opaque number that changes whenever what the device is offered changes (§4.1.3)."""
    action_id = action.id
    h = _int32(31 * _int32(31 * (31 + (action_id ^ (action_id >> 32))) + action.revision)
               + 1454548395)
    offset = 1249 if window_open else (1231 if forced_hit else 1237)
    return _int32(31 * h + offset)


def _window(action, now):
    if not action.maintenance_schedule:
        return None
    return schedule.window_state(action.maintenance_schedule, action.maintenance_duration,
                                 action.maintenance_timezone, now)


def _forced_hit(action, now):
    return (action.action_type == t.TIMEFORCED and action.forced_time is not None
            and now >= action.forced_time)


def _cancel_if_window_lapsed(action, now):
    """An action whose maintenance schedule has no window left is cancelled (§4.1.2 step 4)."""
    window = _window(action, now)
    if window is not None and window.lapsed and action.active:
        with write():
            action = Action.get_by_id(action.id)
            apply_event(action, t.SERVER, "window_lapsed", now=now)
    return action


# --- root poll (§4.1) ----------------------------------------------------------------------

def root_poll(target, device_url, now, action):
    """The root poll document; `action` is `current_action(target)`, read with the target."""
    settings = tenant.settings()
    window = None
    if action is not None:
        action = _cancel_if_window_lapsed(action, now)
        window = _window(action, now)
    links = collections.OrderedDict()
    if action is not None:
        key = c_value(action, window is not None and window.is_open, _forced_hit(action, now))
        if action.status == t.WAIT_FOR_CONFIRMATION:
            links["confirmationBase"] = "%s/confirmationBase/%d?c=%d" % (
                device_url, action.id, key)
        elif action.status in t.CANCEL_STATUSES:
            links["cancelAction"] = "%s/cancelAction/%d" % (device_url, action.id)
        else:
            links["deploymentBase"] = "%s/deploymentBase/%d?c=%d" % (device_url, action.id, key)
    installed = installed_action(target)
    if installed is not None and not installed.active:
        links["installedBase"] = "%s/installedBase/%d" % (device_url, installed.id)
    if target.request_attributes:
        links["configData"] = "%s/configData" % device_url
    document = collections.OrderedDict()
    document["config"] = {"polling": {"sleep": schedule.format_duration(
        _sleep_seconds(settings, target, window, now))}}
    if links:
        document["_links"] = collections.OrderedDict(
            (rel, {"href": href}) for rel, href in links.items())
    return document


def _polling_seconds(settings, target):
    """The tenant's polling interval, or the first per-target override whose filter matches.

    hawkBit's `~NN%` deviation is not applied: a random sleep would change every poll's ETag,
    and devices are spread out by their own start times anyway.
    """
    polling = settings.polling
    for target_filter, seconds in polling.overrides:
        if Target.select().where(query.filter_expression("targets", target_filter)
                                 & (Target.id == target.id)).exists():
            return seconds
    return polling.seconds


def _sleep_seconds(settings, target, window, now):
    """The polling interval, shortened so that the device polls a few times before a
    maintenance window opens (§4.1.4)."""
    polling = _polling_seconds(settings, target)
    if window is None or window.is_open or window.start_ms is None or window.start_ms <= now:
        return polling
    count = max(1, settings["maintenanceWindowPollCount"])
    reduced = (window.start_ms - now) // 1000 // count
    return max(tenant.Bounds.min_polling_seconds, min(polling, reduced))


# --- configData (§4.2) ---------------------------------------------------------------------

MAX_ATTRIBUTE_LENGTH = 128


def update_attributes(target, data, mode, now):
    if mode not in (None, "merge", "replace", "remove"):
        raise BodyNotReadable()
    if not isinstance(data, dict) or not data:
        raise BodyNotReadable()
    cleaned = {}
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            if isinstance(value, (dict, list)):
                raise InvalidTargetAttributes("Attribute values must be strings.")
            # hawkbit-rs sends JSON booleans and numbers: kept as their JSON text.
            value = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if not key or len(key) > MAX_ATTRIBUTE_LENGTH or (
                value is not None and len(value) > MAX_ATTRIBUTE_LENGTH):
            raise InvalidTargetAttributes(
                "Attribute keys and values must have at most %d characters."
                % MAX_ATTRIBUTE_LENGTH)
        cleaned[key] = value
    writer.run(_write_attributes, target.id, cleaned, mode)
    autoassign.scheduler.wake()  # the new attributes may match a filter with auto-assignment


def _write_attributes(target_id, cleaned, mode):
    target = Target.get_by_id(target_id)
    current = target.attributes
    if mode == "replace":
        result = {k: v for k, v in cleaned.items() if v is not None}
    elif mode == "remove":
        result = {k: v for k, v in current.items() if k not in cleaned}
    else:
        result = dict(current)
        for key, value in cleaned.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
    quota = action_rules.limits.attributes_per_target
    if quota and len(result) > len(current) and len(result) > quota:
        raise QuotaExceeded(
            "Quota exceeded: Cannot assign %d more attributes to Target '%s'. "
            "The maximum is %d." % (len(result) - len(current), target.controller_id, quota))
    target.attributes = result
    target.request_attributes = False
    target.save()


# --- one action, as the device sees it -----------------------------------------------------

_ACTION_BY_ID = Prepared('SELECT * FROM "action" WHERE "id" = ?', Action)
# An action with what its documents need besides, in one statement: each statement gives up
# the GIL and waits to take it back behind the server's other threads, which under load costs
# more than the statement.
_ACTION_FOR_DOCUMENT = (
    'SELECT %s, (SELECT "status" FROM "action_status" WHERE "action_id" = "a"."id" '
    'ORDER BY "id" DESC LIMIT 1), (%s) FROM "action" AS "a" WHERE "a"."id" = ?'
    % (_columns("a", ShownAction._fields), chunks.GENERATION_QUERY))
_ACTION_WIDTH = len(ShownAction._fields)


def require_action(target, action_id):
    action = _ACTION_BY_ID.first(action_id)
    _require_of_target(target, action_id, action.target_id if action else None)
    return action


def _action_for_document(target, action_id):
    """The action (a ShownAction) of the target, with the status of its newest history entry
    and the software generation (`storage.chunks`): (action, status, generation)."""
    row = database.execute_sql(_ACTION_FOR_DOCUMENT, (action_id,)).fetchone()
    action = None if row is None else ShownAction._make(row[:_ACTION_WIDTH])
    _require_of_target(target, action_id, action.target_id if action else None)
    return (action,) + tuple(row[_ACTION_WIDTH:])


def _require_of_target(target, action_id, owner_id):
    """Refuse an action that does not exist (`owner_id` None) or is another target's."""
    if owner_id is None:
        raise EntityNotFound("Action", action_id)
    if owner_id != target.id:
        raise ActionNotOfTarget(action_id, target.controller_id)


def _handling(action, window, now):
    """The `download` and `update` values of a deployment (§4.3.2)."""
    forced = action.action_type == t.FORCED or _forced_hit(action, now)
    if action.action_type == t.DOWNLOAD_ONLY:
        download, update = "forced", "skip"
    elif forced:
        download, update = "forced", "forced"
    else:
        download, update = "attempt", "attempt"
    if window is not None and not window.is_open:
        update = "skip"
    return download, update


def _artifact_document(module_id, artifact, artifact_url):
    """An artifact (`chunks.ChunkArtifact`) as a device sees it, with its links."""
    href = "%s/softwaremodules/%d/artifacts/%s" % (
        artifact_url, module_id, urllib.parse.quote(artifact.filename, safe=""))
    md5_href = href + MD5SUM_SUFFIX
    doc = collections.OrderedDict()
    doc["filename"] = artifact.filename
    doc["hashes"] = collections.OrderedDict(
        (("sha1", artifact.sha1), ("md5", artifact.md5), ("sha256", artifact.sha256)))
    doc["size"] = artifact.size
    # Zephyr reads only download-http, esven only download: both always, same URL.
    doc["_links"] = collections.OrderedDict((
        ("download", {"href": href}), ("download-http", {"href": href}),
        ("md5sum", {"href": md5_href}), ("md5sum-http", {"href": md5_href})))
    return doc


def _chunk_documents(chunks, artifact_url):
    """The `chunks` of a deployment from a set's cached `chunks.Chunk` tuples (§4.3.3)."""
    documents = []
    for chunk in chunks:
        document = collections.OrderedDict()
        document["part"] = chunk.part
        document["version"] = chunk.version
        document["name"] = chunk.name
        if chunk.encrypted:
            document["encrypted"] = True
        document["artifacts"] = [_artifact_document(chunk.module_id, artifact, artifact_url)
                                 for artifact in chunk.artifacts]
        if chunk.metadata:
            document["metadata"] = [{"key": key, "value": value} for key, value in chunk.metadata]
        documents.append(document)
    return documents


def history_messages(action, count):
    """The newest `count` messages of an action that did not come from the server (§4.3.4)."""
    if count == 0:
        return []
    count = MAX_HISTORY if count < 0 else min(count, MAX_HISTORY)
    messages = []
    entries = (ActionStatus.select(ActionStatus.messages)
               .where(ActionStatus.action == action.id)
               .order_by(ActionStatus.timestamp.desc(), ActionStatus.id.desc()))
    for entry in entries.iterator():
        for message in entry.messages:
            if not message.startswith(SERVER_PREFIX):
                messages.append(message)
                if len(messages) == count:
                    return messages
    return messages


def _action_document(action, inner_name, history_count, artifact_url, now, window,
                     set_chunks):
    download, update = _handling(action, window, now)
    inner = collections.OrderedDict((("download", download), ("update", update)))
    if window is not None:
        inner["maintenanceWindow"] = "available" if window.is_open else "unavailable"
    inner["chunks"] = _chunk_documents(set_chunks, artifact_url)
    document = collections.OrderedDict((("id", str(action.id)), (inner_name, inner)))
    messages = history_messages(action, history_count)
    if messages:
        document["actionHistory"] = collections.OrderedDict(
            (("status", action.status), ("messages", messages)))
    return document


def _note_retrieved(action, newest_status, now):
    """Note that the device fetched its action, once per change (§4.3 step 4)."""
    if not action.active or newest_status == t.RETRIEVED:
        return
    writer.run(_note_server_event, action.id, "retrieved", now)


def _note_server_event(action_id, event, now, message_values=None):
    """What the server saw a device do (it fetched its action, downloaded a file), in the
    action's history; a device's read must not fail because that history is full."""
    try:
        apply_event(Action.get_by_id(action_id), t.SERVER, event, now=now,
                    message_values=message_values)
    except QuotaExceeded:
        pass


def deployment_base(target, action_id, history_count, artifact_url, now, chunk_cache):
    """The deployment of an action (§4.3); `chunk_cache` is the app's `chunks.ChunkCache`."""
    action, newest_status, generation = _action_for_document(target, action_id)
    # `newest_status` is used below only for an action this leaves as it is: a lapsed window
    # makes it CANCELING, an empty 404.
    action = _cancel_if_window_lapsed(action, now)
    if action.status in (t.CANCELING, t.CANCELED, t.WAIT_FOR_CONFIRMATION, t.SCHEDULED):
        raise EmptyNotFound()
    document = _action_document(action, "deployment", history_count, artifact_url, now,
                                _window(action, now),
                                chunk_cache.chunks(action.distribution_set_id, generation))
    _note_retrieved(action, newest_status, now)
    return document


def installed_base(target, action_id, history_count, artifact_url, now, chunk_cache):
    action, _, generation = _action_for_document(target, action_id)
    if action.active or action.status in (t.CANCELING, t.CANCELED, t.SCHEDULED):
        raise EmptyNotFound()
    return _action_document(action, "deployment", history_count, artifact_url, now,
                            _window(action, now),
                            chunk_cache.chunks(action.distribution_set_id, generation))


def confirmation_base_action(target, action_id, history_count, artifact_url, now,
                             chunk_cache):
    action, _, generation = _action_for_document(target, action_id)
    action = _cancel_if_window_lapsed(action, now)
    if action.status != t.WAIT_FOR_CONFIRMATION:
        raise EmptyNotFound()
    return _action_document(action, "confirmation", history_count, artifact_url, now,
                            _window(action, now),
                            chunk_cache.chunks(action.distribution_set_id, generation))


# What a cancelAction needs of its action, with the status of its newest history entry, as
# plain values in one statement: the target it belongs to, its status, whether it is active.
_ACTION_TO_CANCEL = (
    'SELECT "target_id", "status", "active", (SELECT "status" FROM "action_status" '
    'WHERE "action_id" = "action"."id" ORDER BY "id" DESC LIMIT 1) FROM "action" WHERE "id" = ?')


def cancel_action(target, action_id, now):
    row = database.execute_sql(_ACTION_TO_CANCEL, (action_id,)).fetchone()
    _require_of_target(target, action_id, row[0] if row else None)
    _, status, active, newest_status = row
    if status not in t.CANCEL_STATUSES:
        raise EmptyNotFound()
    if active and newest_status != t.RETRIEVED:
        writer.run(_note_server_event, action_id, "retrieved", now)
    stop_id = str(action_id)
    return collections.OrderedDict((("id", stop_id), ("cancelAction", {"stopId": stop_id})))


Feedback = collections.namedtuple("Feedback", "execution finished details code timestamp")


def _details(value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise BodyNotReadable()
    details = []
    for item in value:
        if isinstance(item, str):
            details.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            details.append(str(item))
        else:
            raise BodyNotReadable()
    return details


def _code(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BodyNotReadable()
    try:
        code = int(value)
    except ValueError:
        raise BodyNotReadable()
    if not -2 ** 31 <= code < 2 ** 31:
        raise BodyNotReadable()
    return code


def parse_feedback(body):
    """A deployment or cancel feedback body (§4.4.1), tolerant of what real clients add.

    Legacy `id` and `time`, any `progress` value and missing `details`/`code` are accepted;
    a missing `result.finished` or an unknown enum value is a 400, as in hawkBit.
    """
    status = body.get("status") if isinstance(body, dict) else None
    result = status.get("result") if isinstance(status, dict) else None
    if not isinstance(result, dict):
        raise BodyNotReadable()
    execution = status.get("execution")
    finished = result.get("finished")
    if not isinstance(execution, str) or not isinstance(finished, str):
        raise BodyNotReadable()
    execution, finished = execution.lower(), finished.lower()
    if execution not in t.EXECUTIONS or finished not in t.FINISHED_VALUES:
        raise BodyNotReadable()
    timestamp = body.get("timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)
                                  or not 0 <= timestamp < 2 ** 63):
        raise BodyNotReadable()
    return Feedback(execution=execution, finished=finished, details=_details(status.get("details")),
                    code=_code(status.get("code")), timestamp=timestamp)


def parse_confirmation(body):
    """A confirmation feedback body (§4.6): `confirmation` confirmed or denied, with optional
    `details` and `code` as in deployment feedback."""
    if not isinstance(body, dict) or body.get("confirmation") not in t.CONFIRMATIONS:
        raise BodyNotReadable()
    return Feedback(execution=body["confirmation"], finished=None,
                    details=_details(body.get("details")), code=_code(body.get("code")),
                    timestamp=None)



def feedback(target, action_id, channel, report, now):
    """Apply a device's report on `channel` (deployment, cancel or confirmation); returns
    once it is committed."""
    rollout_id, outcome = writer.run(_apply_feedback, target, action_id, channel, report, now)
    if rollout_id is not None:
        rollout_engine.scheduler.wake()  # its group may have reached a threshold
    return outcome


def _apply_feedback(target, action_id, channel, report, now):
    """The report applied; (the action's rollout, the Outcome)."""
    action = require_action(target, action_id)
    return action.rollout_id, apply_event(
        action, channel, report.execution, report.finished, details=report.details,
        code=report.code, timestamp=report.timestamp, now=now, by=target.controller_id)


# --- installedBase PUT (§4.8) --------------------------------------------------------------

def report_installed(target, name, version, now):
    """Record a set the device says it runs; True when a new offline assignment was made."""
    distribution_set = (DistributionSet.select()
                        .where((peewee.fn.LOWER(DistributionSet.name) == name.lower())
                               & (peewee.fn.LOWER(DistributionSet.version) == version.lower())
                               & (DistributionSet.deleted == False))  # noqa: E712
                        .first())
    if distribution_set is None:
        raise EntityNotFound("DistributionSet", "%s:%s" % (name, version))
    if not distribution_set.valid:
        raise InvalidDistributionSet("The distribution set is invalidated.")
    if not assignments.is_complete(distribution_set):
        raise IncompleteDistributionSet("The distribution set is incomplete.")
    assignments.check_target_types(distribution_set, [target])
    if target.update_status == "PENDING" or target.assigned_ds_id == distribution_set.id:
        return False
    with write():
        assignments.record_offline(distribution_set, Target.get_by_id(target.id),
                                   target.controller_id, now)
    return True


# --- confirmation and auto-confirm (§4.9, §4.12, §4.13) --------------------------------------

MAX_INITIATOR = 64
MAX_REMARK = 512
DEFAULT_REMARK = "Initiated using the Device Direct Integration API without providing a remark."


def confirmation_base(target, device_url, now, action):
    """The auto-confirmation state (§4.9); `action` is `current_action(target)`, read with
    the target."""
    auto = collections.OrderedDict((("active", bool(target.auto_confirm_active)),))
    links = collections.OrderedDict()
    if target.auto_confirm_active:
        if target.auto_confirm_initiator:
            auto["initiator"] = target.auto_confirm_initiator
        if target.auto_confirm_remark:
            auto["remark"] = target.auto_confirm_remark
        auto["activatedAt"] = target.auto_confirm_activated_at or 0
        links["deactivateAutoConfirm"] = device_url + "/confirmationBase/deactivateAutoConfirm"
    else:
        auto["activatedAt"] = 0
        links["activateAutoConfirm"] = device_url + "/confirmationBase/activateAutoConfirm"
    if action is not None:
        action = _cancel_if_window_lapsed(action, now)
        if action.status == t.WAIT_FOR_CONFIRMATION:
            window = _window(action, now)
            links["confirmationBase"] = "%s/confirmationBase/%d?c=%d" % (
                device_url, action.id,
                c_value(action, window is not None and window.is_open, _forced_hit(action, now)))
    return collections.OrderedDict((
        ("autoConfirm", auto),
        ("_links", collections.OrderedDict((rel, {"href": h}) for rel, h in links.items()))))


def activate_auto_confirm(target, initiator, remark, now, by):
    initiator = initiator or None
    remark = remark or None
    if initiator is not None and len(initiator) > MAX_INITIATOR:
        raise ConstraintViolation("The initiator must have at most %d characters." % MAX_INITIATOR)
    if remark is not None and len(remark) > MAX_REMARK:
        raise ConstraintViolation("The remark must have at most %d characters." % MAX_REMARK)
    with write():
        target = Target.get_by_id(target.id)
        if target.auto_confirm_active:
            raise AutoConfirmAlreadyActive(
                "Auto confirmation is already active for target '%s'." % target.controller_id)
        target.auto_confirm_active = True
        target.auto_confirm_initiator = initiator
        target.auto_confirm_remark = remark
        target.auto_confirm_activated_at = now
        target.save()
        waiting = Action.select().where((Action.target == target.id) & Action.active
                                        & (Action.status == t.WAIT_FOR_CONFIRMATION))
        for action in waiting:
            apply_event(action, t.SERVER, "auto_confirmed", now=now, by=by, message_values={
                "initiator": initiator or "n/a", "creator": by or "n/a",
                "remark": remark or "n/a"})


def deactivate_auto_confirm(target):
    with write():
        Target.update(auto_confirm_active=False, auto_confirm_initiator=None,
                      auto_confirm_remark=None, auto_confirm_activated_at=None).where(
            Target.id == target.id).execute()


# --- artifacts (§4.14 - §4.16) -------------------------------------------------------------

def _require_module(module_id):
    if scalar('SELECT 1 FROM "software_module" WHERE "id" = ?', module_id) is None:
        raise EntityNotFound("SoftwareModule", module_id)


# The shown-first active, non-cancelling action of the target that contains the module.
_OPEN_ACTION_WITH_MODULE = Prepared(
    'SELECT "action".* FROM "action" JOIN "distribution_set_module" AS "m" '
    'ON "m"."distribution_set_id" = "action"."distribution_set_id" '
    'WHERE "action"."target_id" = ? AND "action"."active" = TRUE '
    'AND "action"."status" NOT IN (\'%s\', \'%s\') AND "m"."module_id" = ? '
    'ORDER BY COALESCE("action"."weight", 1000) DESC, "action"."id" LIMIT 1'
    % (t.CANCELING, t.CANCELED), Action)
_SET_HOLDS_MODULE = ('SELECT 1 FROM "distribution_set_module" '
                     'WHERE "distribution_set_id" = ? AND "module_id" = ?')
_ARTIFACT_BY_NAME = Prepared(
    'SELECT * FROM "artifact" WHERE "module_id" = ? AND "filename" = ?', Artifact)


def _open_action_with_module(target, module_id):
    return _OPEN_ACTION_WITH_MODULE.first(target.id, module_id)


def artifact_list(target, module_id, artifact_url, chunk_cache):
    """The artifacts of a module of an open action of the target, or of its installed set."""
    _require_module(module_id)
    action = _open_action_with_module(target, module_id)
    if action is not None:
        distribution_set_id = action.distribution_set_id
    elif target.installed_ds_id is not None and scalar(
            _SET_HOLDS_MODULE, target.installed_ds_id, module_id) is not None:
        distribution_set_id = target.installed_ds_id
    else:
        raise ModuleNotAssigned(module_id, target.controller_id)
    chunk = chunk_cache.module(distribution_set_id, module_id)
    if chunk is None:  # taken out of the set since the line above
        raise ModuleNotAssigned(module_id, target.controller_id)
    return [_artifact_document(module_id, artifact, artifact_url)
            for artifact in chunk.artifacts]


def artifact_for_download(target, module_id, filename):
    """What a device asks for by file name (§4.15, §4.16): the artifact, the action it downloads
    for, and whether it wants the artifact's `.MD5SUM` checksum file rather than its bytes.

    An artifact is always served under its own name: one uploaded as `fw.bin.MD5SUM` is what its
    `download-http` link gives, even next to `fw.bin` (whose `.MD5SUM` link then gives it too).
    Only a name no artifact has is read as the checksum file of the artifact it names.
    """
    _require_module(module_id)
    artifact, md5sum = _artifact_named(module_id, filename), False
    if artifact is None and filename.endswith(MD5SUM_SUFFIX):
        artifact, md5sum = _artifact_named(module_id, filename[:-len(MD5SUM_SUFFIX)]), True
    if artifact is None:
        raise EmptyNotFound()
    action = _open_action_with_module(target, module_id)
    if action is None:
        raise ModuleNotAssigned(module_id, target.controller_id)
    return artifact, action, md5sum


def _artifact_named(module_id, filename):
    artifact = _ARTIFACT_BY_NAME.first(module_id, filename)
    if artifact is None and "+" in filename:
        # hawkBit form-encodes spaces as '+' in its links; accept those links too.
        artifact = _ARTIFACT_BY_NAME.first(module_id, filename.replace("+", " "))
    return artifact


def note_download(action, path, now):
    """Log a whole-file download on the action, once per run of identical downloads (§4.15.1)."""
    newest = (ActionStatus.select().where(ActionStatus.action == action.id)
              .order_by(ActionStatus.id.desc()).first())
    message = SERVER_PREFIX + "Target downloads %s" % path
    if newest is not None and newest.status == t.DOWNLOAD and newest.messages == [message]:
        return
    writer.run(_note_server_event, action.id, "download", now, {"path": path})
