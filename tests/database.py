"""The database the tests run on: SQLite files by default; PostgreSQL when the variable
DDI_TEST_DATABASE_URL names a server database to start from, such as
postgresql://postgres@127.0.0.1:5432/test (README: Run the tests). Not DDI_LITE_*: the server
refuses DDI_LITE_ variables that are not its settings, and tests run it in this process.

On PostgreSQL a run gets a database of its own, `ddi_lite_test_<pid>`, created from that one
and dropped when the run ends, so that runs never see each other's rows. In it:

- in-process tests (the `config` fixture) share the public schema: the first test creates the
  tables, every later one empties them and starts the ids again, a few milliseconds where
  creating the schema would cost a tenth of a second, 4,000 times. The software generation
  is kept: it only grows, so a chunk one test cached never looks current in the next;
- real server processes (tests/live.py) get a schema per data directory, as they would get a
  file each on SQLite: two servers with two data directories share nothing, and a server
  restarted on one data directory finds its rows again; one on the data directory of the
  in-process test shares its database, as it would share its file.

The run's database uses the C collation, so text sorts by code point as SQLite sorts it.
"""

import contextlib
import hashlib
import os
import urllib.parse

import pytest

BASE_URL = os.environ.get("DDI_TEST_DATABASE_URL", "")
ON_POSTGRES = bool(BASE_URL)

_run = {}


def sqlite_only(reason):
    """Skip a test on PostgreSQL; `reason` says what of SQLite it is about."""
    return pytest.mark.skipif(ON_POSTGRES, reason="about SQLite: " + reason)


def _connect(url):
    import psycopg2
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def _with_database(url, name):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def run_url():
    """The URL of this run's database (created at the first call)."""
    if "url" not in _run:
        name = "ddi_lite_test_%d" % os.getpid()
        connection = _connect(BASE_URL)
        with connection.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            cursor.execute('CREATE DATABASE "%s" TEMPLATE template0 ENCODING \'UTF8\' '
                           'LC_COLLATE \'C\' LC_CTYPE \'C\'' % name)
        connection.close()
        _run["name"] = name
        _run["url"] = _with_database(BASE_URL, name)
    return _run["url"]


def fresh_url(data_dir):
    """The run's database with every row of the previous in-process test deleted and the ids
    starting again, for the in-process test on `data_dir`."""
    import peewee
    import storage
    from storage.models import ALL_MODELS
    url = run_url()
    _run["in_process_dir"] = os.path.abspath(str(data_dir))
    connection = _run.get("connection")
    if connection is None:
        connection = _run["connection"] = _connect(url)
    with connection.cursor() as cursor:
        if "empty" not in _run:
            cursor.execute("SELECT 1 FROM pg_tables WHERE schemaname = 'public'")
            if cursor.fetchone() is None:
                return url  # the first test creates the tables
            # DELETE, children first: TRUNCATE makes new files, 0.7 s a time, DELETE 4 ms.
            tables = [model._meta.table_name
                      for model in reversed(peewee.sort_models(ALL_MODELS))]
            _run["empty"] = "".join('DELETE FROM "%s"; ' % table for table in tables) + (
                "SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S' "
                "AND relnamespace = 'public'::regnamespace; "
                "SELECT setval(pg_get_serial_sequence('\"action\"', 'id'), %d, false);"
                % storage.FIRST_ACTION_ID)
        cursor.execute("BEGIN; " + _run["empty"] + " COMMIT;")
    return url


def url_for_directory(data_dir):
    """The URL of the schema that stands for the data directory `data_dir` (created when
    missing): a server process's own database, as its SQLite file would be."""
    schema = _schema_of(data_dir)
    if schema == "public":
        return run_url()  # a server process on the in-process test's own data directory
    connection = _connect(run_url())
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA IF NOT EXISTS "%s"' % schema)
    connection.close()
    return "%s?options=%s" % (run_url(), urllib.parse.quote("-c search_path=" + schema))


def _schema_of(data_dir):
    data_dir = os.path.abspath(str(data_dir))
    if data_dir == _run.get("in_process_dir"):
        return "public"
    return "dir_" + hashlib.sha1(data_dir.encode()).hexdigest()[:16]


def copy_rows(source_dir, data_dir):
    """Make the database of `data_dir` (opened once already) hold what that of `source_dir`
    holds, as copying its SQLite file does (nothing to do on SQLite: the caller copies the
    directory). Triggers and foreign keys wait meanwhile: the rows are a finished state."""
    if not ON_POSTGRES:
        return
    source, target = _schema_of(source_dir), _schema_of(data_dir)
    connection = _connect(run_url())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (target,))
            tables = [name for (name,) in cursor.fetchall()]
            cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = %s",
                           (target,))
            sequences = [name for (name,) in cursor.fetchall()]
            statements = ["BEGIN", "SET LOCAL session_replication_role = replica"]
            statements += ['DELETE FROM "%s"."%s"' % (target, table) for table in tables]
            statements += ['INSERT INTO "%s"."%s" SELECT * FROM "%s"."%s"'
                           % (target, table, source, table) for table in tables]
            statements += ["SELECT setval('\"%s\".\"%s\"', last_value, is_called) FROM "
                           '"%s"."%s"' % (target, name, source, name) for name in sequences]
            cursor.execute("; ".join(statements + ["COMMIT"]))
    finally:
        connection.close()


def rows_of(data_dir, sql, params=()):
    """The rows a hand-written query (`?` placeholders) finds in the database of a server's
    data directory, read as another program would: the SQLite file, or the schema."""
    if not ON_POSTGRES:
        import sqlite3
        import storage
        path = os.path.join(str(data_dir), storage.DATABASE_FILE)
        with contextlib.closing(sqlite3.connect(path)) as connection:
            return connection.execute(sql, params).fetchall()
    connection = _connect(url_for_directory(data_dir))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall()
    finally:
        connection.close()


def drop():
    """Drop this run's database (at the end of the run)."""
    if "name" not in _run:
        return
    if "connection" in _run:
        _run.pop("connection").close()
    connection = _connect(BASE_URL)
    with connection.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % _run.pop("name"))
    connection.close()
    _run.clear()
