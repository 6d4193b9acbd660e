"""Once-only work (storage/once.py): one holder of a OnceLock per data directory (SQLite) or
database (PostgreSQL) and name, and the lock passes on when its holder releases it or dies."""

import os
import signal
import subprocess
import sys

import pytest

import database
from live import PROJECT_DIR, clean_environment, wait_until

from storage.once import OnceLock

# The file lock is SQLite's once-lock; on PostgreSQL it is the database's advisory lock.
file_lock = database.sqlite_only("the once-lock is a file in the data directory")
postgres_only = pytest.mark.skipif(not database.ON_POSTGRES,
                                   reason="about PostgreSQL's advisory once-lock")

HOLD_AND_SLEEP = """
import sys, time
from storage.once import OnceLock
lock = OnceLock(sys.argv[1], "work")
assert lock.take()
print("held", flush=True)
time.sleep(60)
"""


@file_lock
def test_a_second_lock_of_the_same_work_is_refused_while_the_first_holds_it(tmp_path):
    first, second = OnceLock(str(tmp_path), "work"), OnceLock(str(tmp_path), "work")
    assert first.take() and first.take()
    assert not second.take()
    assert not second.held


@file_lock
def test_locks_of_other_work_or_another_data_directory_do_not_interfere(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert OnceLock(str(tmp_path / "a"), "work").take()
    assert OnceLock(str(tmp_path / "a"), "other").take()
    assert OnceLock(str(tmp_path / "b"), "work").take()


@file_lock
def test_a_released_lock_passes_to_the_next_taker(tmp_path):
    first, second = OnceLock(str(tmp_path), "work"), OnceLock(str(tmp_path), "work")
    assert first.take()
    first.release()
    assert second.take()
    assert not first.take()


@file_lock
def test_the_lock_of_a_killed_holder_passes_and_names_its_new_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_SLEEP, str(tmp_path)],
                              cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        mine = OnceLock(str(tmp_path), "work")
        assert not mine.take()
        assert (tmp_path / "once-work.lock").read_text().strip() == str(holder.pid)
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        wait_until(mine.take, 2, "the lock's passing")
        assert (tmp_path / "once-work.lock").read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait(5)


HOLD_IN_DATABASE_AND_SLEEP = """
import sys, time
import storage
from storage.once import OnceLock
storage.open_store(sys.argv[1], 0, database_url=sys.argv[2])
lock = OnceLock(sys.argv[1], "work")
assert lock.take()
print("held", flush=True)
time.sleep(60)
"""


@postgres_only
def test_on_postgresql_one_holder_per_database_whatever_the_data_directory(server, tmp_path):
    first, second = OnceLock(str(tmp_path / "a"), "work"), OnceLock(str(tmp_path / "b"), "work")
    try:
        assert first.take() and first.take()
        assert not second.take()
        assert OnceLock(str(tmp_path / "b"), "other").take()
        first.release()
        assert second.take()
    finally:
        first.release()
        second.release()


@postgres_only
def test_on_postgresql_the_lock_of_a_killed_holder_passes(server, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_IN_DATABASE_AND_SLEEP, str(tmp_path / "holder"),
         server.config["database", "url"]],
        cwd=PROJECT_DIR, env=clean_environment(), stdout=subprocess.PIPE, text=True)
    mine = OnceLock(str(tmp_path), "work")
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not mine.take()
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        wait_until(mine.take, 5, "the lock's passing")
    finally:
        mine.release()
        holder.kill()
        holder.wait(5)
