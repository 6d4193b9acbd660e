"""Once-only work (storage/once.py): one holder of a OnceLock per data directory and name, and
the lock passes on when its holder releases it or dies."""

import os
import signal
import subprocess
import sys

from live import PROJECT_DIR, wait_until

from storage.once import OnceLock

HOLD_AND_SLEEP = """
import sys, time
from storage.once import OnceLock
lock = OnceLock(sys.argv[1], "work")
assert lock.take()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_lock_of_the_same_work_is_refused_while_the_first_holds_it(tmp_path):
    first, second = OnceLock(str(tmp_path), "work"), OnceLock(str(tmp_path), "work")
    assert first.take() and first.take()
    assert not second.take()
    assert not second.held


def test_locks_of_other_work_or_another_data_directory_do_not_interfere(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert OnceLock(str(tmp_path / "a"), "work").take()
    assert OnceLock(str(tmp_path / "a"), "other").take()
    assert OnceLock(str(tmp_path / "b"), "work").take()


def test_a_released_lock_passes_to_the_next_taker(tmp_path):
    first, second = OnceLock(str(tmp_path), "work"), OnceLock(str(tmp_path), "work")
    assert first.take()
    first.release()
    assert second.take()
    assert not first.take()


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
