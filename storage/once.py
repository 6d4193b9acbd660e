"""Work that must run in one process at a time: a lock per kind of work, in the data directory
(SQLite) or in the database (PostgreSQL).

With `[server] workers` above 1 every worker process starts the same threads. Some of their
work is the server's, not the worker's: the auto-assignment scheduler (and any later one, such
as rollouts) must not run twice at once, and must go on in another worker when the one doing
it dies. `OnceLock(data_dir, name)` is that guard: a thread that would do such work asks
`take()` before each run, and runs only while it holds the lock.

Why a file lock (fcntl.flock on `<data_dir>/once-<name>.lock`):

- The kernel releases it when its holder ends, also after `kill -9` or a crash: nothing stale
  to detect, no lease to renew, no clock. The next `take()` of another process wins it.
- It costs one system call per try, made by a scheduler's thread between its runs, never by
  a request.
- It is private to the data directory, as SQLite's own locks are: two data directories never
  share a lock, and one data directory always shares it, whatever the process (a worker, or a
  tool run beside the server).

The pattern, as `storage.autoassign.Scheduler` follows it (a rollout scheduler would too):

    lock = OnceLock(data_dir, "rollouts")
    while not stopping:            # the scheduler's own thread
        if lock.take():            # one system call; True for as long as this process holds it
            run_one_turn()
        wait(interval)
    lock.release()                 # at stop: another process takes it at its next turn

On PostgreSQL, several nodes with data directories of their own share one database, so the
lock is the database's: a session advisory lock (pg_try_advisory_lock) on a connection the
`OnceLock` opens for itself. It has the flock's virtues: the server releases it when the
connection ends, also when its process is killed or its machine vanishes (once TCP notices),
and a try never waits. While it holds the lock, each `take()` asks the connection whether it
still answers (one round trip per scheduler turn), so a lost connection means a lost lock.

flock locks belong to an open file, not to a process: every `OnceLock` opens its own, so two
in one process exclude each other as two processes do; so do advisory locks, a connection
each. The lock is held from the first `take()`
that wins until `release()` (or the end of the process); a holder keeps it between runs, so
the work stays in one process while that process lives.
"""

import fcntl
import logging
import os

from storage import db

LOCK_PREFIX = "once-"

log = logging.getLogger("ddi-lite")


def holder_name(name, pid):
    """What pg_stat_activity shows as application_name for the holder of `name`'s lock."""
    return "ddi-lite %s%s pid %d" % (LOCK_PREFIX, name, pid)


class OnceLock:
    """The right to do the work called `name` for the data directory `data_dir`."""

    def __init__(self, data_dir, name):
        self.name = name
        self.path = os.path.join(data_dir, "%s%s.lock" % (LOCK_PREFIX, name))
        self._handle = None

    @property
    def held(self):
        return self._handle is not None

    def take(self):
        """Whether this holds the lock now: True at once when it already did, else one try
        that never waits (a win is logged, so the log tells where the work runs)."""
        if db.on_postgres():
            return self._take_in_database()
        if self._handle is not None:
            return True
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        # Who holds it, for a person looking at the directory; the lock is the flock, not this.
        handle.seek(0)
        handle.truncate()
        handle.write("%d\n" % os.getpid())
        handle.flush()
        self._handle = handle
        log.info("%s runs in this process (pid %d)", self.name, os.getpid())
        return True

    def _take_in_database(self):
        if self._handle is not None:
            if db.connection_alive(self._handle):
                return True
            log.warning("%s: the connection holding its lock was lost", self.name)
            self.release()
        try:
            self._handle = db.session_lock_connection(db.lock_key(self.name),
                                                      holder_name(self.name, os.getpid()))
        except Exception as error:  # the database is away: no lock, try again next turn
            log.warning("%s: cannot ask the database for its lock: %s", self.name, error)
            return False
        if self._handle is None:
            return False
        log.info("%s runs in this process (pid %d)", self.name, os.getpid())
        return True

    def release(self):
        """Let another process take the lock (nothing happens when this does not hold it)."""
        if self._handle is not None:
            try:
                self._handle.close()
            except Exception:  # a lost connection: the lock went with it
                pass
            self._handle = None
