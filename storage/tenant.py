"""Tenant configuration: hawkBit's configuration keys, their types, defaults and validation.

A key's value is the one stored for the tenant (via the Management API), else the server-wide
default from `config.ini`, else hawkBit's own default. Reads come from an in-process snapshot,
because every device poll consults it (several times).

How the snapshot follows a change made through another process (a worker beside this one,
`[server] workers`): it is read again at most FOLLOW_SECONDS after it was read, and at once
after a write through this process. Why a time limit rather than a sign of change:

- Reading the snapshot is the cheapest check there is: the keys are a handful of rows of one
  table, read in a few tens of microseconds, at most twice a second per process. Every poll
  pays one monotonic clock read. A change counter (a row bumped by triggers, as
  `storage.chunks` has for software) would cost a query per check and a schema step, to save
  a read that costs about as much.
- It is right for every writer: another worker, the sqlite3 shell, a restored database; no
  write path has to remember to signal.
- `PRAGMA data_version` would say "something changed" after every commit of every other
  connection, poll times and feedback included, so under load it would read the rows as
  often, and it counts per connection, so each thread would keep its own.
"""

import collections
import threading
import time

from storage import schedule
from storage.db import write
from storage.errors import StoreError
from storage.models import TenantConfig

BOOLEAN = "boolean"
INTEGER = "integer"
STRING = "string"
DURATION = "duration"

Key = collections.namedtuple("Key", "name kind default")

KEYS = collections.OrderedDict((k.name, k) for k in (
    Key("pollingTime", DURATION, "00:05:00"),
    Key("pollingOverdueTime", DURATION, "00:05:00"),
    Key("maintenanceWindowPollCount", INTEGER, 3),
    Key("authentication.targettoken.enabled", BOOLEAN, False),
    Key("authentication.gatewaytoken.enabled", BOOLEAN, False),
    Key("authentication.gatewaytoken.key", STRING, ""),
    Key("authentication.header.enabled", BOOLEAN, False),
    Key("authentication.header.authority", STRING, ""),
    Key("repository.actions.autoclose.enabled", BOOLEAN, False),
    Key("user.confirmation.flow.enabled", BOOLEAN, False),
    Key("implicit.lock.enabled", BOOLEAN, True),
    Key("rollout.approval.enabled", BOOLEAN, False),
    Key("batch.assignments.enabled", BOOLEAN, False),
    Key("action.cleanup.auto.expiry", INTEGER, -1),
    Key("action.cleanup.auto.status", STRING, "CANCELED,ERROR"),
    Key("action.cleanup.onQuotaHit.percent", INTEGER, 0),
    Key("auto.assignment.approval.enabled", BOOLEAN, False),
    Key("action.delete.allowed.statuses", STRING, "CANCELED,ERROR,FINISHED"),
))


class InvalidConfigKey(StoreError):
    error_code = "hawkbit.server.error.configKeyInvalid"
    exception_class = ("org.eclipse.hawkbit.repository.exception."
                       "InvalidTenantConfigurationKeyException")


class InvalidConfigValue(StoreError):
    error_code = "hawkbit.server.error.configValueInvalid"
    exception_class = ("org.eclipse.hawkbit.repository.exception."
                       "TenantConfigurationValidatorException")


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Bounds:
    """Server-wide limits a duration value must respect (hawkBit's min/max polling time)."""

    min_polling_seconds = 30
    max_polling_seconds = 23 * 3600 + 59 * 60 + 59


def convert(name, value):
    """Validate `value` for key `name` and return it in its stored form."""
    key = KEYS.get(name)
    if key is None:
        raise InvalidConfigKey("The given configuration key '%s' is not known." % name)
    if value is None:
        raise InvalidConfigValue("The configuration value of '%s' must not be null." % name)
    if key.kind == BOOLEAN:
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidConfigValue("The value of '%s' must be a boolean." % name)
    if key.kind == INTEGER:
        if isinstance(value, bool):
            raise InvalidConfigValue("The value of '%s' must be a number." % name)
        try:
            return int(str(value).strip())
        except ValueError:
            raise InvalidConfigValue("The value of '%s' must be a number." % name)
    text = value if isinstance(value, str) else _as_text(value)
    if key.kind == DURATION:
        _check_duration(name, text)
    return text


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise InvalidConfigValue("The value must be a string, a number or a boolean.")


def _check_duration(name, text):
    try:
        if name == "pollingTime":
            polling = schedule.parse_polling_time(text)
            intervals = [polling.seconds] + [seconds for _, seconds in polling.overrides]
        else:
            intervals = [schedule.parse_duration(text)]
    except ValueError as error:
        raise InvalidConfigValue("The value of '%s' is not a duration: %s" % (name, error))
    if name == "pollingTime" and not all(
            Bounds.min_polling_seconds <= seconds <= Bounds.max_polling_seconds
            for seconds in intervals):
        raise InvalidConfigValue(
            "The polling time must lie between %s and %s." % (
                schedule.format_duration(Bounds.min_polling_seconds),
                schedule.format_duration(Bounds.max_polling_seconds)))


# How old a snapshot may be before it is read again: a change through another process is seen
# within this.
FOLLOW_SECONDS = 0.5


class _Snapshot:
    def __init__(self, defaults, stored):
        self.defaults = defaults
        self.stored = stored
        self.polling = schedule.parse_polling_time(self["pollingTime"])
        self.read_until = time.monotonic() + FOLLOW_SECONDS

    def __getitem__(self, name):
        if name in self.stored:
            return self.stored[name].value
        return self.defaults[name]


_defaults = {key.name: key.default for key in KEYS.values()}
_snapshot = None
# Bumped by every write, so that a snapshot read while a write commits is never kept.
_generation = 0
_snapshot_lock = threading.Lock()


def invalidate():
    """Forget the snapshot: the next read sees what is stored now."""
    global _snapshot, _generation
    with _snapshot_lock:
        _generation += 1
        _snapshot = None


def set_defaults(overrides):
    """Install the server-wide defaults (from config.ini) for some keys."""
    for name, value in overrides.items():
        _defaults[name] = convert(name, value)
    invalidate()


def settings():
    """The tenant's effective configuration; cheap to call on every request."""
    global _snapshot
    snapshot = _snapshot
    if snapshot is None or snapshot.read_until <= time.monotonic():
        generation = _generation
        stored = {row.key: row for row in TenantConfig.select()}
        snapshot = _Snapshot(dict(_defaults), stored)
        with _snapshot_lock:
            if generation == _generation:
                _snapshot = snapshot
    return snapshot


def stored_row(name):
    """The stored row of a key, or None when the default applies."""
    if name not in KEYS:
        raise InvalidConfigKey("The given configuration key '%s' is not known." % name)
    return settings().stored.get(name)


def store(values, user, now=None):
    """Store several key/value pairs at once: all are validated before any is written."""
    write_values(collections.OrderedDict(
        (name, convert(name, value)) for name, value in values.items()), user, now)


def write_values(values, user, now=None):
    """Write already validated values in one transaction, keeping their audit fields."""
    now = now or int(time.time() * 1000)
    with write():
        for name, value in values.items():
            row = TenantConfig.get_or_none(TenantConfig.key == name)
            if row is None:
                TenantConfig.create(key=name, value=value, created_at=now, created_by=user,
                                    last_modified_at=now, last_modified_by=user)
            else:
                row.value = value
                row.last_modified_at = now
                row.last_modified_by = user
                row.save()
    invalidate()


def reset(name):
    """Forget a stored value, so the default applies again."""
    with write():
        TenantConfig.delete().where(TenantConfig.key == name).execute()
    invalidate()
