"""A thread that does one kind of the server's own work on a beat: every `interval` seconds
after its last turn ended, and at once after `wake()`.

The auto-assignment scheduler (storage.autoassign) and the rollout engine (storage.
rollout_engine) are such threads; they differ only in what one turn does (`turn(now)`).
With a `storage.once.OnceLock`, a turn runs only in the process that holds the lock, so with
several worker processes the work runs in one of them and passes to another at its next
turn when that one dies. A wake in a process that does not hold the lock does nothing; the
holder finds the change at its next turn.
"""

import logging
import threading
import time

log = logging.getLogger("ddi-lite")


class Periodic:
    """Subclasses name the thread (`name`) and define `turn(now)`, now in epoch ms; a turn
    that raises is logged and the next one retries."""

    name = "periodic"

    def __init__(self):
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.interval = None
        self.once = None

    def turn(self, now):
        raise NotImplementedError

    def start(self, interval, once=None):
        if self._thread is not None:
            return
        self.interval, self.once = interval, once
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_forever, name=self.name,
                                        daemon=True)
        self._thread.start()

    def wake(self):
        """Take a turn soon (cheap: an Event; a no-op without the thread)."""
        self._wake.set()

    def stopping(self):
        """Whether `stop()` was asked: a long turn checks it between batches."""
        return self._stop.is_set()

    def stop(self):
        """End the thread after its current turn and wait for it; give up the lock."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._thread = None
        if self.once is not None:
            self.once.release()

    def _run_forever(self):
        while not self._stop.is_set():
            self._wake.clear()
            if self.once is None or self.once.take():
                try:
                    self.turn(int(time.time() * 1000))
                except Exception:  # a failed turn must not end the thread
                    log.exception("%s failed", self.name)
            self._wake.wait(self.interval)
