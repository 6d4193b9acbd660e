"""The database handle: one SQLite file in WAL mode (or a PostgreSQL database), a connection
per thread, one writer at a time.

Readers never wait for each other (WAL). Writers are serialised by a process-wide lock *before*
SQLite is asked for its write lock, so concurrent devices queue in Python instead of seeing
"database is locked". Every connection is opened once per worker thread and then kept, so its
page cache and memory map are paid once per thread: the server's `[storage] cache_kib` and
`mmap_mib` size them.

The device writes, many small ones at once, go to `writer`: a server starts its thread, which
owns a connection of its own and commits what arrived together in one transaction.

PostgreSQL (`[database] url`) gets the same models and the same hand-written SQL. Where the
two engines must differ, the difference is one function in the section "Engine differences"
below, and nowhere else: the rules in storage/ do not ask which engine they run on. A write
transaction there takes a transaction-scoped advisory lock first, so that writers of every
process and node sharing the database queue as SQLite's BEGIN IMMEDIATE makes them queue:
the conditional UPDATEs of the transition rules see every earlier write, and two writers never
deadlock. The driver (psycopg2) is imported by Peewee only when it is installed: a SQLite
installation never needs it.
"""

import contextlib
import queue
import threading
import urllib.parse
import zlib

import peewee

from storage.errors import ConcurrentModification, ConstraintViolation

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


def open_postgres(url):
    """Connect to the PostgreSQL database at `url` (postgresql://user:pass@host:port/db) and
    bind the models to it; each thread gets its own connection."""
    db = PostgresDatabase(url)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def is_database_url(url):
    """Whether `url` names a PostgreSQL database ([database] url accepts nothing else)."""
    return urllib.parse.urlsplit(url).scheme in ("postgresql", "postgres")


@contextlib.contextmanager
def write():
    """One write transaction: all or nothing, never two at once. A conflict the database
    resolved by giving this write up (only across processes on PostgreSQL, whose writers
    queue on one lock otherwise) is ConcurrentModification, hawkBit's 409, not a 500."""
    try:
        with _write_lock:
            with database.atomic("IMMEDIATE"):
                yield
    except peewee.DatabaseError as error:
        if retryable(error):
            raise ConcurrentModification()
        raise


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
        retries = RETRIES
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
                    if retryable(error) and retries:  # not the job's fault: all again
                        retries -= 1
                        continue
                    job.answer(error=_for_client(error))
                    jobs = [other for other in jobs if other is not job]
                    continue
                except Exception as error:  # the commit itself (disk full, I/O error)
                    if retryable(error) and retries:
                        retries -= 1
                        continue
                    for job in jobs:
                        job.answer(error=_for_client(error))
                    return
                for job, result in zip(jobs, results):
                    job.answer(result)
                return


writer = Writer()

# How often the writer makes a batch again that the database gave up in a conflict.
RETRIES = 3


def _for_client(error):
    return ConcurrentModification() if retryable(error) else error


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


SNAPSHOT = "SNAPSHOT"


def snapshot():
    """A read transaction whose statements all see one state of the database: any SQLite
    transaction does; PostgreSQL's (READ COMMITTED) needs REPEATABLE READ for it."""
    return database.atomic(SNAPSHOT if on_postgres() else None)


def execute_many(sql, rows):
    """Run one hand-written statement (with `?` placeholders) once per row of parameters."""
    if on_postgres():
        sql = _postgres_placeholders(sql)
    database.cursor().executemany(sql, rows)


def answers():
    """Whether the database answers a trivial query that reads its file (readiness)."""
    try:
        database.execute_sql(_PROBE[on_postgres()]).fetchone()
    except (peewee.DatabaseError, peewee.InterfaceError):
        return False
    return True


# --- Engine differences ----------------------------------------------------------------------
#
# One function per thing SQLite and PostgreSQL say differently. Hand-written SQL elsewhere is
# written once, in what both understand, with `?` placeholders (translated for psycopg2 below).

_PROBE = {False: "SELECT COUNT(*) FROM sqlite_master", True: "SELECT 1"}
# Advisory lock keys are two int4: this namespace, then the lock's own number.
LOCK_NAMESPACE = 0x0dd1
WRITE_LOCK = 1
_SCHEMA_VERSION_TABLE = "ddi_lite_schema"


# SQLSTATEs of "give up and try again": serialization failure, deadlock detected.
_RETRYABLE = ("40001", "40P01")


def retryable(error):
    """Whether the database gave the write `error` up in a conflict with another, so that
    the same write may succeed when made again (PostgreSQL; SQLite's writers queue)."""
    # Peewee keeps the driver's error as `orig`.
    return getattr(getattr(error, "orig", None), "pgcode", None) in _RETRYABLE


def on_postgres():
    return isinstance(database.obj, peewee.PostgresqlDatabase)


class PostgresDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL as ddi-lite uses it: `?` placeholders in hand-written SQL, and a write
    transaction (`atomic("IMMEDIATE")`, as on SQLite) that waits for every other writer."""

    def __init__(self, url, **kwargs):
        # libpq reads a whole URI given as the database name; the URL is kept for once-locks.
        self.url = url
        peewee.PostgresqlDatabase.__init__(self, url, **kwargs)

    def execute_sql(self, sql, params=None):
        # Peewee's own SQL has %s placeholders and parameters; SQL written here has `?`, or
        # no parameters, and then psycopg2 would still read a literal `%` as a placeholder.
        if "?" in sql or not params:
            sql = _postgres_placeholders(sql)
        try:
            return self._again_if_dropped(peewee.PostgresqlDatabase.execute_sql, sql, params)
        except peewee.DataError as error:
            # A CharField's max_length binds on PostgreSQL (SQLite stores any length): what
            # the rules did not check already is the client's too-long value, not a 500.
            if getattr(getattr(error, "orig", None), "pgcode", None) != "22001":
                raise
            raise ConstraintViolation("A value is longer than its field allows (%s)."
                                      % str(error.orig).splitlines()[0])
        except ValueError as error:
            # PostgreSQL text cannot hold U+0000 (SQLite's can): none can be stored, and a
            # read asks again with a noncharacter in its place, which equals or contains
            # nothing stored either (a count is then 0, not an error).
            if "NUL" not in str(error):
                raise
            if sql.lstrip()[:6].upper() != "SELECT":
                raise ConstraintViolation("Text may not contain the character U+0000.")
            params = [value.replace("\x00", "\ufffe") if isinstance(value, str) else value
                      for value in params]
            return self._again_if_dropped(peewee.PostgresqlDatabase.execute_sql, sql, params)

    def _again_if_dropped(self, call, *args):
        """`call(self, *args)`, once more on a new connection if the server had dropped this
        thread's (a restart, a failover, an idle timeout): a connection is kept per thread
        for the life of the server. Never inside a transaction, whose work went with it."""
        try:
            return call(self, *args)
        except (peewee.OperationalError, peewee.InterfaceError):
            connection = self._state.conn
            if self.transaction_depth() or connection is None or not connection.closed:
                raise
            self._state.reset()
            self.connect()
            return call(self, *args)

    def begin(self, lock_type=None):
        self._again_if_dropped(PostgresDatabase._begin_now, lock_type)

    def _begin_now(self, lock_type):
        if lock_type == SNAPSHOT:
            with peewee.__exception_wrapper__:
                self.cursor().execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return
        peewee.PostgresqlDatabase.begin(self)
        if lock_type == "IMMEDIATE":
            self.cursor().execute("SELECT pg_advisory_xact_lock(%s, %s)",
                                  (LOCK_NAMESPACE, WRITE_LOCK))


_translated = {}


def _postgres_placeholders(sql):
    """`?` -> `%s` (and a literal `%` -> `%%`), as psycopg2 wants; hand-written SQL puts no
    `?` inside string literals."""
    translated = _translated.get(sql)
    if translated is None:
        translated = _translated[sql] = sql.replace("%", "%%").replace("?", "%s")
    return translated


class IdField(peewee.AutoField):
    """An id never handed out twice, even after a delete: SQLite's AUTOINCREMENT; a
    PostgreSQL sequence never goes back anyway."""

    def ddl(self, ctx):
        node = peewee.AutoField.ddl(self, ctx)
        if on_postgres():
            return node
        return peewee.NodeList((node, peewee.SQL("AUTOINCREMENT")))


def start_ids_at(db, table, first):
    """Make the next id of `table` (an IdField) `first`, in a new database."""
    if on_postgres():
        db.execute_sql("SELECT setval(pg_get_serial_sequence(?, 'id'), ?, false)",
                       ('"%s"' % table, first))
    else:
        db.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                       (table, first - 1))


def schema_version(db):
    """The schema version the database was written with (0: a new database)."""
    if not on_postgres():
        return db.execute_sql("PRAGMA user_version").fetchone()[0]
    if not db.table_exists(_SCHEMA_VERSION_TABLE):
        return 0
    return db.execute_sql('SELECT "version" FROM "%s"' % _SCHEMA_VERSION_TABLE).fetchone()[0]


def set_schema_version(db, version):
    if not on_postgres():
        db.execute_sql("PRAGMA user_version = %d" % version)
        return
    db.execute_sql('CREATE TABLE IF NOT EXISTS "%s" ("version" INTEGER NOT NULL)'
                   % _SCHEMA_VERSION_TABLE)
    db.execute_sql('DELETE FROM "%s"' % _SCHEMA_VERSION_TABLE)
    db.execute_sql('INSERT INTO "%s" ("version") VALUES (?)' % _SCHEMA_VERSION_TABLE,
                   (version,))


def create_trigger(db, name, event, table, body, when=None):
    """An AFTER `event` trigger FOR EACH ROW on `table` running the statements `body` (each
    ending in `;`; NEW and OLD as usual) when the condition `when` holds. Created only if
    missing (SQLite) or replaced (PostgreSQL, where it is a function and a trigger)."""
    if not on_postgres():
        db.execute_sql('CREATE TRIGGER IF NOT EXISTS "%s" AFTER %s ON "%s" %sBEGIN %s END'
                       % (name, event, table, "WHEN %s " % when if when else "", body))
        return
    if when:
        body = "IF %s THEN %s END IF;" % (when, body)
    db.execute_sql('CREATE OR REPLACE FUNCTION "%s"() RETURNS trigger LANGUAGE plpgsql AS '
                   '$$ BEGIN %s RETURN NULL; END $$' % (name, body))
    db.execute_sql('CREATE OR REPLACE TRIGGER "%s" AFTER %s ON "%s" FOR EACH ROW '
                   'EXECUTE FUNCTION "%s"()' % (name, event, table, name))


def differs(left, right):
    """SQL for "`left` and `right` differ", NULL being a value like any other."""
    if on_postgres():
        return "%s IS DISTINCT FROM %s" % (left, right)
    return "%s IS NOT %s" % (left, right)


def json_value(column, key):
    """The value of `key` in the JSON object held (as text) in `column`, as text."""
    if on_postgres():
        return peewee.NodeList((peewee.fn.CAST(peewee.NodeList((column, peewee.SQL("AS json")))),
                                peewee.SQL("->>"), key), parens=True)
    return peewee.fn.json_extract(column, '$."%s"' % key)


def json_entries(column):
    """A table function listing the (key, value) pairs of the JSON object in `column`."""
    if on_postgres():
        return peewee.NodeList((peewee.SQL("json_each_text(CAST("), column,
                                peewee.SQL("AS json))")), glue="")
    return peewee.NodeList((peewee.SQL("json_each("), column, peewee.SQL(")")), glue="")


def ascending(column, descending=False):
    """An ORDER BY term; NULL comes first going up and last going down, as SQLite sorts it."""
    if not on_postgres():
        return column.desc() if descending else column.asc()
    if descending:
        return column.desc(nulls="LAST")
    return column.asc(nulls="FIRST")


def lock_key(name):
    """The advisory lock number of the once-only work called `name`."""
    return zlib.crc32(name.encode()) & 0x7fffffff


def session_lock_connection(key, holder):
    """A new connection of its own holding the session advisory lock `key`, or None when
    another session holds it. Closing the connection (or its process ending) releases it.
    `holder` names the connection in pg_stat_activity, for a person asking who holds it."""
    import psycopg2  # only here: SQLite never gets this far
    connection = psycopg2.connect(database.obj.url, application_name=holder)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))
        if cursor.fetchone()[0]:
            return connection
    connection.close()
    return None


def connection_alive(connection):
    """Whether a lock connection still answers (its lock is then still held)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
