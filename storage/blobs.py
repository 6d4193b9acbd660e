"""When artifact bytes are kept and freed: blob files change only together with the artifact
rows that refer to them, inside one write transaction.

A blob is shared by every artifact row with its SHA-1 (any module, deleted or not); it is freed
exactly when the last such row goes. Both steps happen under the database write lock, so an
upload of some content and the delete of another module holding the same content can never
interleave. The order of the steps makes every crash recoverable by `sweep` at the next start:

- keeping: the row is written, then the received file is moved into place, then the commit.
  A crash before the commit leaves a blob no row refers to, which `sweep` removes. A store
  whose move is slow (an object store copies) puts it in place before the transaction
  (`stage`) and only checks it is still there inside; a crash or a refusal between leaves a
  blob no row refers to as well.
- freeing: the rows are deleted, then the blob is moved to the trash, then the commit, then
  the trash is emptied. A crash before the commit leaves a referenced blob in the trash, which
  `sweep` puts back; a crash after it leaves an unreferenced one, which `sweep` removes.

Several nodes may share one blob store (a directory on NFS, an S3 bucket) and one database
(PostgreSQL) without sharing a write lock. Then a blob that no committed row names may be one
another node has just kept and is about to commit the row of: the sweep of a shared store
(`blobs.shared`) leaves blobs younger than SHARED_SETTLE_SECONDS for a later sweep. A trashed
blob it puts back because another node's delete has not committed yet is freed by a later
sweep too.

The blob store (an `artifacts.BlobStorage`) is handed in by the caller; nothing here reads
bytes.
"""

import contextlib

from storage.db import write
from storage.models import Artifact

# Longer than any keep-to-commit of a row takes, however long its write waits for the lock.
SHARED_SETTLE_SECONDS = 3600


class BlobChanges:
    """What one write transaction does to the blob store, applied just before its commit."""

    def __init__(self, blobs):
        self.blobs = blobs
        self._received = []
        self._candidates = set()
        self._trashed = []

    def keep(self, received):
        """Keep a received upload if the transaction commits (the caller writes its row)."""
        self._received.append(received)

    def free_unreferenced(self, sha1s):
        """Free those of these blobs that no artifact row refers to when the transaction ends."""
        self._candidates.update(sha1 for sha1 in sha1s if sha1)

    def _apply(self):
        for received in self._received:
            self.blobs.keep(received)
        for sha1 in unreferenced(self._candidates):
            self.blobs.trash(sha1)
            self._trashed.append(sha1)

    def _undo(self):
        for sha1 in self._trashed:
            self.blobs.restore(sha1)
        for received in self._received:
            self.blobs.discard(received)

    def _finish(self):
        for sha1 in self._trashed:
            self.blobs.empty_trash(sha1)


def stage(blobs, received):
    """Before the write transaction that keeps `received`: what the store's keep would do
    slowly under the write lock (`artifacts.BlobStorage.stage`). The upload is discarded if
    this fails."""
    try:
        blobs.stage(received)
    except BaseException:
        blobs.discard(received)
        raise


@contextlib.contextmanager
def changing(blobs):
    """A write transaction (`storage.db.write`) that may keep and free blobs."""
    changes = BlobChanges(blobs)
    try:
        with write():
            yield changes
            changes._apply()
    except BaseException:
        changes._undo()
        raise
    changes._finish()


def unreferenced(sha1s):
    """Those of `sha1s` that no artifact row (of any module, deleted or not) refers to."""
    wanted = {sha1 for sha1 in sha1s if sha1}
    if not wanted:
        return []
    used = {row.sha1 for row in Artifact.select(Artifact.sha1).where(Artifact.sha1.in_(wanted))}
    return sorted(wanted - used)


def sweep(blobs):
    """Bring the blob store in line with the rows after a crash; returns what was done.

    Runs under the write lock, so an upload or delete in flight in another process (which
    holds that lock from moving its file to its commit) is never cut in two.
    """
    with write():
        referenced = {row.sha1 for row in Artifact.select(Artifact.sha1).distinct()}
        restored = freed = 0
        for sha1 in list(blobs.trashed()):
            if sha1 in referenced:
                blobs.restore(sha1)
                restored += 1
            else:
                blobs.empty_trash(sha1)
                freed += 1
        settle = SHARED_SETTLE_SECONDS if blobs.shared else 0
        for sha1 in list(blobs.stored(min_age=settle)):
            if sha1 not in referenced:
                blobs.delete(sha1)
                freed += 1
    temp_files = blobs.remove_stale_temp_files()
    return {"restored": restored, "freed": freed, "temp_files": temp_files}
