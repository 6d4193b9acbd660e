"""The database handle: one SQLite file in WAL mode, a connection per thread, one writer at a time.

Readers never wait for each other (WAL). Writers are serialised by a process-wide lock *before*
SQLite is asked for its write lock, so concurrent devices queue in Python instead of seeing
"database is locked". Every connection is opened once per worker thread and then kept.
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
    # Per connection, and Waitress keeps one per worker thread: 4 MiB each bounds the RSS.
    ("cache_size", -4000),
)


def open_database(path):
    """Open (creating if needed) the SQLite file at `path` and bind the models to it."""
    db = peewee.SqliteDatabase(path, pragmas=PRAGMAS, check_same_thread=False)
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
    """A hand-written SELECT of whole rows of one model, run with new parameters each time.

    Generating SQL is most of what Peewee spends on a small query, and the device poll path
    asks the same few questions thousands of times a second.
    """

    def __init__(self, model, sql):
        self.model = model
        self.sql = sql
        self._fields = None

    def first(self, *params):
        cursor = database.execute_sql(self.sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        if self._fields is None:
            by_column = self.model._meta.columns
            self._fields = [by_column[column[0]] for column in cursor.description]
        instance = self.model(__no_default__=1)
        instance.__data__ = {field.name: field.python_value(value)
                             for field, value in zip(self._fields, row)}
        return instance


def scalar(sql, *params):
    """The first column of the first row of a hand-written query, or None."""
    row = database.execute_sql(sql, params).fetchone()
    return row[0] if row else None
