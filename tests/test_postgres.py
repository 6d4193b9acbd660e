"""PostgreSQL as the database ([database] url, storage/db.py): what differs from SQLite for the
person running the server. Everything else is the whole suite run again on PostgreSQL
(README: Tests)."""

import subprocess
import sys
import time

import pytest
from live import PROJECT_DIR, clean_environment

import database
import ddi_lite
import storage
from service.configuration import ConfigError
from storage.db import write
from storage.errors import ConstraintViolation
from storage.models import TenantConfig

# Nothing listens there: these answers come before any connection.
NOWHERE = "postgresql://ddi@127.0.0.1:1/ddi"


def run_ddi_lite(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "ddi_lite", *args, "--config", "/dev/null",
         "--data-dir", str(tmp_path / "data")],
        cwd=PROJECT_DIR, env=clean_environment(DDI_LITE_DATABASE_URL=NOWHERE),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=60)


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_backup_and_restore_on_postgresql_point_to_pg_dump(tmp_path, command):
    result = run_ddi_lite(tmp_path, command, str(tmp_path / "copy"))
    assert result.returncode == 1, result.stderr
    assert "pg_dump" in result.stderr and "[database] url" in result.stderr
    assert not (tmp_path / "copy").exists()


def test_a_database_url_that_is_not_postgresql_is_refused_at_start():
    with pytest.raises(ConfigError, match=r"\[database\] url"):
        ddi_lite.load_config(path=None, environ={}, overrides={
            "database.url": "mysql://root@localhost/ddi"})


@pytest.mark.skipif(not database.ON_POSTGRES, reason="needs PostgreSQL (DDI_TEST_DATABASE_URL)")
def test_a_connection_the_server_dropped_is_opened_again_for_the_next_request(api):
    """A PostgreSQL restart or failover ends every kept connection; the next request on that
    thread must not fail for ever."""
    api.target("dev-1", "token-1")
    own = storage.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    import psycopg2
    with psycopg2.connect(api.config["database", "url"]) as other:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (own,))
    time.sleep(0.3)  # the backend ends just after pg_terminate_backend answers
    api.http.get("/rest/v1/targets/dev-1", status=200)
    api.http.put_json("/rest/v1/targets/dev-1", {"description": "after"}, status=200)
    assert storage.database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != own


@pytest.mark.skipif(not database.ON_POSTGRES, reason="needs PostgreSQL (DDI_TEST_DATABASE_URL)")
def test_a_value_longer_than_its_column_is_a_constraint_violation_and_stores_nothing(server):
    """PostgreSQL enforces VARCHAR lengths that SQLite ignores; the rules check every length a
    client can send, and one they missed must still be a 400, never a 500."""
    with pytest.raises(ConstraintViolation, match="longer than its field"):
        with write():
            TenantConfig.create(key="k" * 200, value=1, created_at=0, created_by="t",
                                last_modified_at=0, last_modified_by="t")
    assert TenantConfig.select().where(TenantConfig.created_by == "t").count() == 0
