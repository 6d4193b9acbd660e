"""Run `ddi-lite` with a trap that kills the process (SIGKILL, as a power cut would) at one
step of keeping or freeing a blob, of an auto-assignment run, of a rollout group's start or of
a batch of device writes: `python crash_at.py STEP serve ...`.

The trap wraps the real step; nothing in the server knows about it.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import ddi_lite  # noqa: E402
from artifacts import store  # noqa: E402
from storage import assignments, autoassign, db, rollout_engine  # noqa: E402
from storage import blobs as blob_rules  # noqa: E402


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def before(method):
    def trapped(*args, **kwargs):
        die()
    return trapped


def after(method):
    def trapped(*args, **kwargs):
        method(*args, **kwargs)
        die()
    return trapped


def in_the_middle_of_receiving():
    copy = store._copy_and_hash

    class Dying:
        def __init__(self, stream):
            self.stream, self.reads = stream, 0

        def read(self, size):
            self.reads += 1
            if self.reads == 2:
                die()
            return self.stream.read(size)

    store._copy_and_hash = lambda stream, out, max_size: copy(Dying(stream), out, max_size)


def in_a_batch_of_writes(number=20, pause=0.2):
    """The writer's batch `number` of two writes or more kills the process at its last write,
    after the others of the batch were written and `pause` seconds in which the server's
    other threads go on (and send whatever they were told to answer)."""
    commit = db.Writer._commit
    batches = []

    def dying(*args):
        time.sleep(pause)
        die()

    def trapped(writer, jobs):
        if len(jobs) >= 2:
            batches.append(1)
            if len(batches) == number:
                jobs[-1].function = dying
        return commit(writer, jobs)
    db.Writer._commit = trapped


def halfway(function):
    """`function(ids, ...)`, except that it does the first half of `ids` and kills the
    process (within the transaction of its caller)."""
    def trapped(ids, *args, **kwargs):
        if ids:
            function(ids[:len(ids) // 2], *args, **kwargs)
            die()
        return function(ids, *args, **kwargs)
    return trapped


def on_call(number, function):
    """`function`, except that its call `number` kills the process instead."""
    calls = []

    def trapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            die()
        return function(*args, **kwargs)
    return trapped


STEPS = {
    # keeping an upload
    "while-receiving": in_the_middle_of_receiving,
    "before-rename": lambda: setattr(store.BlobStore, "keep", before(store.BlobStore.keep)),
    "after-rename": lambda: setattr(store.BlobStore, "keep", after(store.BlobStore.keep)),
    # freeing a blob
    "after-trash": lambda: setattr(store.BlobStore, "trash", after(store.BlobStore.trash)),
    # either, once the rows are committed and before anything else happens
    "after-commit": lambda: setattr(blob_rules.BlobChanges, "_finish",
                                    before(blob_rules.BlobChanges._finish)),
    # auto-assignment: within the first batch's transaction, and once it has committed (the
    # second batch asks where it ends)
    "auto-assign-mid-batch": lambda: setattr(assignments, "assign",
                                             on_call(50, assignments.assign)),
    "auto-assign-after-batch": lambda: setattr(autoassign, "_batch_end",
                                               on_call(2, autoassign._batch_end)),
    # a rollout: within the transaction that starts a group, half of its actions opened
    "rollout-mid-group-start": lambda: setattr(rollout_engine, "apply_event_to_many",
                                               halfway(rollout_engine.apply_event_to_many)),
    # device writes: within a batch of the writer thread, after others were written in it
    "writes-mid-batch": in_a_batch_of_writes,
}

if __name__ == "__main__":
    STEPS[sys.argv[1]]()
    sys.exit(ddi_lite.main(sys.argv[2:]))
