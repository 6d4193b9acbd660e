"""Everything ddi-lite remembers: Peewee models on SQLite (or PostgreSQL), the action transition table, and the
rules of the device side (`storage.ddi`) and the operator side (`storage.catalog`,
`storage.assignments`, `storage.tenant`), target filters with the auto-assignment that
runs beside both (`storage.filters`, `storage.autoassign`), and staged rollouts with the
engine that drives them (`storage.rollouts`, `storage.rollout_engine`).

Nothing here knows about HTTP: callers hand in plain values and get plain values or documents
back, or one of the errors in `storage.errors`.
"""

import errno
import fcntl
import os

from storage import (actions, autoassign, blobs, catalog, chunks, ddi, once, rollout_engine,
                     tenant)
from storage.db import (CACHE_KIB, MMAP_MIB, database, open_database, open_postgres,
                        schema_version, set_schema_version, start_ids_at, writer)
from storage.models import ALL_MODELS, TAG_AND_TARGET_TYPE_MODELS, Action

SCHEMA_VERSION = 5
DATABASE_FILE = "ddi-lite.sqlite3"
LOCK_FILE = "ddi-lite.lock"
# Action ids start here: Zephyr's client drops the first digit of a cancelled action's id, so
# single-digit ids break it; SWUpdate holds ids as int32.
FIRST_ACTION_ID = 100


def _add_tags_and_target_types(db):
    """Schema 2 -> 3: the tables of tags and target types, and each target's type (none).
    Whatever of it is there already is kept, as `chunks.create_generation` does."""
    db.create_tables(TAG_AND_TARGET_TYPE_MODELS)
    columns = [column.name for column in db.get_columns("target")]
    if "target_type_id" not in columns:
        db.execute_sql('ALTER TABLE "target" ADD COLUMN "target_type_id" INTEGER '
                       'REFERENCES "target_type" ("id")')
    db.execute_sql('CREATE INDEX IF NOT EXISTS "target_target_type_id" '
                   'ON "target" ("target_type_id")')


# Each entry upgrades the schema from the version before it to its index + 1.
MIGRATIONS = (
    chunks.create_generation,  # 2: the software generation that says when cached sets are stale
    _add_tags_and_target_types,  # 3: tags and target types
    autoassign.add_target_filters,  # 4: target filters, and the target change numbers
    rollout_engine.add_rollouts,  # 5: rollouts, their groups, and the actions' rollout
)


def open_store(data_dir, now, limits=None, tenant_defaults=None, min_polling_seconds=None,
               max_polling_seconds=None, cache_kib=CACHE_KIB, mmap_mib=MMAP_MIB,
               database_url=""):
    """Open the database, creating or migrating its schema: the PostgreSQL database at
    `database_url`, or (empty) the SQLite file in `data_dir`, each of whose connections gets a
    page cache of `cache_kib` KiB and maps `mmap_mib` MiB of the file."""
    os.makedirs(data_dir, exist_ok=True)
    ddi.poll_log.flush()  # what the previous database still owes, before switching
    if database_url:
        db = open_postgres(database_url)
        where = database_url.rsplit("@", 1)[-1]  # never the password
    else:
        db = open_database(os.path.join(data_dir, DATABASE_FILE), cache_kib, mmap_mib)
        where = data_dir
    # One process at a time creates or migrates (several nodes may start together).
    with db.atomic("IMMEDIATE"):
        version = schema_version(db)
        if version == 0:
            db.create_tables(ALL_MODELS)
            chunks.create_generation(db)
            autoassign.create_triggers(db)
            start_ids_at(db, Action._meta.table_name, FIRST_ACTION_ID)
        elif version > SCHEMA_VERSION:
            raise RuntimeError("The database in %s was written by a newer ddi-lite (schema %d)."
                               % (where, version))
        else:
            for step in MIGRATIONS[version - 1:]:
                step(db)
        if version != SCHEMA_VERSION:
            set_schema_version(db, SCHEMA_VERSION)
    if limits is not None:
        actions.configure(limits)
    if min_polling_seconds is not None:
        tenant.Bounds.min_polling_seconds = min_polling_seconds
    if max_polling_seconds is not None:
        tenant.Bounds.max_polling_seconds = max_polling_seconds
    tenant.set_defaults(tenant_defaults or {})
    catalog.bootstrap(now)
    return db


def close_store():
    """Stop the auto-assignment and rollout threads, write what the store still holds in
    memory (device writes handed in, poll times) and close the database."""
    autoassign.scheduler.stop()
    rollout_engine.scheduler.stop()
    writer.stop()
    ddi.poll_log.stop_writer()
    if not database.is_closed():
        database.close()


class DataDirInUse(OSError):
    """Another live process serves from this data directory."""

    def __init__(self, data_dir, holder):
        OSError.__init__(self, errno.EBUSY, "the data directory %s is in use by ddi-lite process "
                         "%s; stop it first or choose another --data-dir" % (data_dir, holder))


def lock_data_dir(data_dir):
    """Take the data directory for this process; the returned file holds the lock until it
    is closed or the process ends (kill -9 included: the kernel releases it)."""
    os.makedirs(data_dir, exist_ok=True)
    handle = open(os.path.join(data_dir, LOCK_FILE), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUse(os.path.abspath(data_dir), holder)
    handle.seek(0)
    handle.truncate()
    handle.write("%d\n" % os.getpid())
    handle.flush()
    return handle
