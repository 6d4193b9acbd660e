"""PostgreSQL as the database ([database] url, storage/db.py): what differs from SQLite for the
person running the server. Everything else is the whole suite run again on PostgreSQL
(README: Tests)."""

import subprocess
import sys

import pytest
from live import PROJECT_DIR, clean_environment

import ddi_lite
from service.configuration import ConfigError

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
