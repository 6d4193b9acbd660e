"""The database handle: one SQLite file in WAL mode, a connection per thread, one writer at a time.

Readers never wait for each other (WAL). Writers are serialised by a process-wide lock *before*
SQLite is asked for its write lock, so concurrent devices queue in Python instead of seeing
"database is locked". Every connection is opened once per worker thread and then kept, so its
page cache and memory map are paid once per thread: the server's `[storage] cache_kib` and
`mmap_mib` size them.
"""

import contextlib
import threading

import peewee

database = peewee.DatabaseProxy()

_write_lock = threading.RLock()

PRAGMAS = (
    ("journal_mode", "wal"),
    # NORMAL in WAL mode never corrupts the database; a power cut may lose the last commits.
    ("synchronous", "normal"),
    ("foreign_keys", 1),
    ("busy_timeout", 10000),
)
# What a connection gets when the caller does not say (the server's settings do): see the
# reasons beside [storage] cache_kib and mmap_mib in config.ini.
CACHE_KIB = 256
MMAP_MIB = 0


def open_database(path, cache_kib=CACHE_KIB, mmap_mib=MMAP_MIB):
    """Open (creating if needed) the SQLite file at `path` and bind the models to it. Each
    connection, one per thread, gets a page cache of `cache_kib` KiB and maps at most
    `mmap_mib` MiB of the file (0: reads go through the page cache only)."""
    pragmas = PRAGMAS + (("cache_size", -cache_kib),
                         ("mmap_size", mmap_mib * 1024 * 1024))
    db = peewee.SqliteDatabase(path, pragmas=pragmas, check_same_thread=False)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


@contextlib.contextmanager
def write():
    """One write transaction: all or nothing, never two at once."""
    with _write_lock:
        with database.atomic("IMMEDIATE"):
            yield


class Prepared:
    """A hand-written SELECT of whole rows, run with new parameters each time.

    Generating SQL is most of what Peewee spends on a small query, and the device poll path
    asks the same few questions thousands of times a second. The SELECT lists all columns of
    each of `models`, in that order (`SELECT "a".*, "b".* ...`); columns it lists after those
    (scalar subqueries, say) come back as they are, after the instances.
    """

    def __init__(self, sql, *models):
        self.sql = sql
        self.models = models
        self._fields = None

    def first(self, *params):
        """The first row as an instance of the (single) model, or None."""
        row = self.first_joined(*params)
        return None if row is None else row[0]

    def first_joined(self, *params):
        """The first row as one instance per model (None for a model whose columns are all
        NULL, as after a LEFT JOIN that found nothing) and any further columns' values, or
        None when there is no row."""
        cursor = database.execute_sql(self.sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        if self._fields is None:
            self._fields = self._resolve(cursor.description)
        instances = []
        start = 0
        for model, fields in zip(self.models, self._fields):
            values = row[start:start + len(fields)]
            start += len(fields)
            if all(value is None for value in values):
                instances.append(None)
                continue
            instance = model(__no_default__=1)
            instance.__data__ = {field.name: field.python_value(value)
                                 for field, value in zip(fields, values)}
            instances.append(instance)
        return tuple(instances) + tuple(row[start:])

    def _resolve(self, description):
        groups, start = [], 0
        for model in self.models:
            by_column = model._meta.columns
            count = len(by_column)
            groups.append([by_column[column[0]] for column in description[start:start + count]])
            start += count
        return groups


def scalar(sql, *params):
    """The first column of the first row of a hand-written query, or None."""
    row = database.execute_sql(sql, params).fetchone()
    return row[0] if row else None


def answers():
    """Whether the database answers a trivial query that reads its file (readiness)."""
    try:
        database.execute_sql("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except (peewee.DatabaseError, peewee.InterfaceError):
        return False
    return True
