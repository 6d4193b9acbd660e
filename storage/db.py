"""The database handle: one SQLite file in WAL mode, a connection per thread, one writer at a time.

Readers never wait for each other (WAL). Writers are serialised by a process-wide lock *before*
SQLite is asked for its write lock, so concurrent devices queue in Python instead of seeing
"database is locked". Every connection is opened once per worker thread and then kept, so its
page cache and memory map are paid once per thread: the server's `[storage] cache_kib` and
`mmap_mib` size them.

The device writes, many small ones at once, go to `writer`: a server starts its thread, which
owns a connection of its own and commits what arrived together in one transaction.
"""

import contextlib
import queue
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


class _Job:
    """One write handed to the writer, and its answer; `wait` returns once it is committed."""

    __slots__ = ("function", "args", "result", "error", "_done")

    def __init__(self, function, args):
        self.function = function
        self.args = args
        self.result = self.error = None
        # A lock taken now and released when answered: the cheapest one-shot signal.
        self._done = threading.Lock()
        self._done.acquire()

    def answer(self, result=None, error=None):
        self.result, self.error = result, error
        self._done.release()

    def wait(self):
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.result


class _Undo(Exception):
    """Ends a batch's transaction after one of its writes failed."""


class Writer:
    """Device writes on one thread that owns the write connection, batched.

    `run(function, *args)` calls `function(*args)` in a write transaction and returns its
    result (or raises its error) once that transaction is committed: nothing is acknowledged
    before it is on disk. With the thread started (`start`), what the server's threads hand
    in while a batch commits becomes the next batch: one transaction, one commit, and no
    request thread waiting in line for the write lock and the interpreter around each
    statement of another's write. A write that fails is answered its error alone: the batch
    is rolled back and the others are run again without it, so each write is all or nothing
    as if it had been alone. Functions must therefore only read and write the database (they
    may run twice) and must not call `write()` themselves.

    Without the thread (tests in-process, the command line), `run` writes at once in the
    caller's thread; inside a write transaction already, it joins that transaction.
    """

    def __init__(self):
        self._jobs = queue.SimpleQueue()
        self._thread = None
        self._state = threading.Lock()

    def start(self):
        with self._state:
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_forever, name="writer",
                                                daemon=True)
                self._thread.start()

    def stop(self):
        """Write what was handed in, then end the thread; later writes are made at once."""
        with self._state:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._jobs.put(None)
        if thread is not None:
            thread.join()

    def run(self, function, *args):
        if database.in_transaction():
            return function(*args)
        with self._state:
            running = self._thread is not None
            if running:
                job = _Job(function, args)
                self._jobs.put(job)
        if not running:
            with write():
                return function(*args)
        return job.wait()

    def _write_forever(self):
        while True:
            batch = [self._jobs.get()]
            while True:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            last = batch[-1] is None
            self._commit([job for job in batch if job is not None])
            if last:
                return

    def _commit(self, jobs):
        with _write_lock:
            while jobs:
                failed, results = None, []
                try:
                    with database.atomic("IMMEDIATE"):
                        for job in jobs:
                            try:
                                results.append(job.function(*job.args))
                            except Exception as error:
                                failed = (job, error)
                                raise _Undo()
                except _Undo:
                    job, error = failed
                    job.answer(error=error)
                    jobs = [other for other in jobs if other is not job]
                    continue
                except Exception as error:  # the commit itself (disk full, I/O error)
                    for job in jobs:
                        job.answer(error=error)
                    return
                for job, result in zip(jobs, results):
                    job.answer(result)
                return


writer = Writer()


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
