"""Worker processes: `[server] workers = N` serves one listening socket from N processes.

One Python process answers on one core at a time (the GIL). With N above 1, the process that
was started becomes the master: it has bound the port and prepared the data directory before
it calls `run()`, then forks N workers. Each worker serves the inherited listening socket with
its own threads and database connections (`serve_worker` is the whole of one worker's life).
A new connection goes to the worker holding the fewest (`AcceptShare`). The master serves
nothing and keeps no database connection and no thread: it only forks, watches and signals.

- Ready: a worker says so through a pipe once it serves; when all have, the master tells
  systemd READY=1. The master is the unit's main process; its workers never speak to
  systemd (NOTIFY_SOCKET is taken from their environment).
- Stop: SIGTERM or SIGINT to the master goes on to every worker as SIGTERM, and each stops
  gracefully as a single server does (a second signal: at once). The master closes its copy
  of the listening socket at once, so that new connections are refused as with one process.
  The master ends when the workers have; one still running `stop_timeout` + STOP_GRACE
  seconds later is killed. A worker still starting (it serves nothing yet) simply ends. The unit says KillMode=mixed, so that systemd's SIGTERM reaches
  the master only and each worker hears one stop, not two.
- SIGHUP to the master goes on to every worker (it re-reads the operator accounts).
- A worker that ends while the master is not stopping is started again: at once when it had
  served RESTART_AFTER_SECONDS or longer, else after a delay that doubles with each quick
  end (up to MAX_RESTART_DELAY), so that a worker crashing at start does not spin.
  `worker_gone()` runs in the master after each end (ddi-lite drops the dead worker's
  half-received uploads there).
- A worker whose master is gone (kill -9) stops gracefully by itself: it holds the read end
  of a pipe that only the master writes to, and sees its end.

Workers live in a process group of their own, so that Ctrl-C in a terminal (SIGINT to the
terminal's process group) reaches the master only, and the stop goes on as above.

Knows nothing of ddi-lite but `service.systemd`.
"""

import logging
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time

from service import systemd

log = logging.getLogger("ddi-lite")

STOP_GRACE = 5
RESTART_AFTER_SECONDS = 10
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30
# How often the master looks for ended workers and due restarts, at most.
TURN_SECONDS = 0.1


class AcceptShare:
    """How many connections each worker holds, in memory the master shares with them all
    (an anonymous shared mapping made before the first fork), so that a worker takes a new
    connection only while it holds no more than any other (connections.GatedServer.share).
    A worker writes its own count at every turn of its event loop, so it counts from its first
    turn, once it serves (a worker still starting is not waited for); the master marks a worker
    that ended as GONE, which the others leave out."""

    GONE = 0xFFFFFFFF
    _FIELD = struct.Struct("=I")

    def __init__(self, count):
        self._counts = mmap.mmap(-1, self._FIELD.size * count)
        self.count = count
        self.index = None  # this worker's place; None in the master
        for index in range(count):
            self.set(index, self.GONE)

    def set(self, index, value):
        self._FIELD.pack_into(self._counts, self._FIELD.size * index, value)

    def publish(self, open_connections):
        self.set(self.index, open_connections)

    def may_accept(self, open_connections):
        for index in range(self.count):
            if index != self.index:
                other = self._FIELD.unpack_from(self._counts, self._FIELD.size * index)[0]
                if other < open_connections:  # GONE is never below
                    return False
        return True


class _Slot:
    """One place for a worker: its process while it runs, and when to start the next."""

    def __init__(self, number):
        self.number = number
        self.pid = None
        self.started = 0.0
        self.delay = 0.0
        self.start_at = 0.0


class Master:
    def __init__(self, count, serve_worker, stop_timeout, status, listeners=(),
                 worker_gone=None):
        """`serve_worker(ready, share)`: one worker's whole life, in the forked process; it
        calls `ready()` once it serves, takes its share of new connections by `share` (an
        AcceptShare), and returns when it has stopped. `status`: what systemd's
        STATUS= says while all serve. `listeners`: the listening sockets the workers serve,
        which the master closes when a stop begins (a socket closes when the last process
        holding it does, and new connections must be refused from then on)."""
        self.slots = [_Slot(number) for number in range(1, count + 1)]
        self.share = AcceptShare(count)
        self.serve_worker = serve_worker
        self.listeners = listeners
        self.stop_timeout = stop_timeout
        self.status = status
        self.worker_gone = worker_gone or (lambda: None)
        self.stop_by = None
        self._ready_reader, self._ready_writer = os.pipe()
        os.set_blocking(self._ready_reader, False)
        self._lifeline_reader, self._lifeline_writer = os.pipe()
        self._ready_count = 0
        self._all_ready = False

    # --- the master ------------------------------------------------------------------------

    def run(self):
        """Start the workers and keep them running until a stop, then wait for them."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self._signal_all(signal.SIGHUP))
        try:
            while self.stop_by is None or self._running():
                self._reap()
                self._start_due()
                self._take_ready()
                if self.stop_by is not None and time.monotonic() > self.stop_by:
                    log.warning("stopping now: killing %d worker(s) still running",
                                len(self._running()))
                    self._signal_all(signal.SIGKILL)
                    self.stop_by = float("inf")
        finally:
            for descriptor in (self._ready_reader, self._ready_writer, self._lifeline_reader,
                               self._lifeline_writer):
                os.close(descriptor)

    def _running(self):
        return [slot for slot in self.slots if slot.pid is not None]

    def _stop(self, signum, frame):
        if self.stop_by is None:
            self.stop_by = time.monotonic() + self.stop_timeout + STOP_GRACE
            systemd.notify("STOPPING=1", "EXTEND_TIMEOUT_USEC=%d"
                           % ((self.stop_timeout + STOP_GRACE + 5) * 10 ** 6),
                           "STATUS=Stopping %d workers: requests in flight get %d s"
                           % (len(self._running()), self.stop_timeout))
            log.info("stopping %d workers", len(self._running()))
            for listener in self.listeners:
                listener.close()
        else:
            systemd.notify("STATUS=Stopping now: a second signal ends the requests in flight")
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum):
        for slot in self._running():
            try:
                os.kill(slot.pid, signum)
            except ProcessLookupError:
                pass  # ended; reaped at the next turn

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((slot for slot in self.slots if slot.pid == pid), None)
            if slot is None:
                continue
            slot.pid = None
            self.share.set(slot.number - 1, AcceptShare.GONE)
            self.worker_gone()
            if self.stop_by is not None:
                continue
            lived = time.monotonic() - slot.started
            if lived >= RESTART_AFTER_SECONDS:
                slot.delay = 0.0
            else:
                slot.delay = min(max(slot.delay * 2, FIRST_RESTART_DELAY), MAX_RESTART_DELAY)
            slot.start_at = time.monotonic() + slot.delay
            log.warning("worker %d (pid %d) ended (%s) after %.1f s; starting it again in "
                        "%.1f s", slot.number, pid, _how_it_ended(status), lived, slot.delay)

    def _start_due(self):
        if self.stop_by is not None:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.pid is None and slot.start_at <= now:
                slot.started = now
                slot.pid = self._fork(slot)
                log.info("worker %d started (pid %d)", slot.number, slot.pid)

    def _take_ready(self):
        """Count the workers that say they serve, waiting for that up to a turn."""
        readable, _, _ = select.select([self._ready_reader], [], [], TURN_SECONDS)
        if not readable:
            return
        try:
            self._ready_count += len(os.read(self._ready_reader, 4096))
        except BlockingIOError:
            return
        if not self._all_ready and self._ready_count >= len(self.slots):
            self._all_ready = True
            systemd.notify("READY=1", "STATUS=%s" % self.status)

    # --- a worker --------------------------------------------------------------------------

    def _fork(self, slot):
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            self._become_worker()
            self.share.index = slot.number - 1
            self.serve_worker(self._ready, self.share)
            code = 0
        except BaseException:
            log.exception("worker %d failed", slot.number)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _become_worker(self):
        os.setpgid(0, 0)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.environ.pop("NOTIFY_SOCKET", None)
        os.close(self._ready_reader)
        os.close(self._lifeline_writer)
        threading.Thread(target=self._watch_master, name="master-watch", daemon=True).start()

    def _ready(self):
        os.write(self._ready_writer, b"r")

    def _watch_master(self):
        """Stop this worker gracefully once the master is gone (the pipe's end: only the
        master held its writing end)."""
        while os.read(self._lifeline_reader, 1):
            pass
        log.warning("the master process is gone: stopping this worker (pid %d)", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)


def _how_it_ended(status):
    if os.WIFSIGNALED(status):
        return "signal %d" % os.WTERMSIG(status)
    return "exit code %d" % os.WEXITSTATUS(status)
