"""Content-addressed storage for artifact bytes.

A blob lives at ``<root>/<sha1[:2]>/<sha1>``. Uploads are streamed into ``<root>/tmp/``
(``receive``) and moved into place (``keep``) only once they are complete, durable and
verified, so a blob path either holds the full, checked bytes or does not exist at all.
Freeing a blob is two steps too: ``trash`` moves it aside, where ``restore`` can bring it
back if the rows that were to forget it are not committed after all, and ``empty_trash``
removes it for good. ``copy_from`` gives a blob of one store to another (backups): a hard
link where both are on one filesystem, a copy elsewhere, checked against its name either way.

`BlobStorage` is the interface every backend keeps (this local directory, which is also right
on a directory that several nodes share over NFS, and `artifacts.s3`'s bucket): the steps
above, listing what is stored and trashed, tidying temp uploads, and a way to read a blob's
bytes for serving (`source`) or copying (`open`).

This module only deals with bytes on disk. It does not know which software module or
artifact a blob belongs to, and it never decides when a blob is kept or freed:
`storage.blobs` calls these steps inside the database transaction that changes the rows.
"""

import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from typing import BinaryIO, Dict, Iterator, NamedTuple, Optional

READ_CHUNK_SIZE = 1024 * 1024
CHECKSUM_KINDS = ("md5", "sha1", "sha256")

_SHA1_HEX = re.compile(r"[0-9a-f]{40}")


class Blob(NamedTuple):
    sha1: str
    md5: str
    sha256: str
    size: int


class BlobError(Exception):
    """An upload was refused; nothing was stored."""


class BlobTooLarge(BlobError):
    pass


class EmptyBlob(BlobError):
    pass


class ChecksumMismatch(BlobError):
    def __init__(self, kind: str):
        super().__init__(f"{kind} checksum does not match the uploaded bytes")
        self.kind = kind


class Received(NamedTuple):
    """A verified upload still in the temp folder: ``keep`` it or ``discard`` it."""
    blob: Blob
    temp_path: str


# Temp files carry their writer's PID and host (`upload-<pid>-<random>@<host>`), so that a
# start-up sweep removes only those whose writer is gone, never a live peer's upload in
# progress: on this machine the PID tells, and an upload of another machine sharing the
# directory (NFS) or bucket is left alone until it is stale. Older names lack the host.
TEMP_PREFIX = "upload-"
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-[^@]*(?:@(.+))?$")
# A temp file untouched this long is stale even if a process with its PID exists (the PID
# may have been reused after a reboot); a live upload writes to it every second or so.
STALE_TEMP_SECONDS = 24 * 3600


def this_node() -> str:
    """The name temp uploads carry to tell this machine's from another's."""
    return socket.gethostname() or "localhost"


def temp_name(node: str, pid: Optional[int] = None) -> str:
    return "%s%d-%s@%s" % (TEMP_PREFIX, os.getpid() if pid is None else pid,
                           secrets.token_hex(8), node)


def temp_is_stale(name: str, idle_seconds: float, node: str) -> bool:
    """Whether a temp upload called `name`, untouched for `idle_seconds`, may be removed by a
    process on `node`: its writer is gone, or it has been idle too long to be alive."""
    if idle_seconds >= STALE_TEMP_SECONDS:
        return True
    match = _TEMP_NAME.match(name)
    if match is None:
        return True  # never named by an upload
    if match.group(2) not in (None, node):
        return False  # another machine's: its PID means nothing here
    return not _pid_alive(int(match.group(1)))


class BlobStorage:
    """What the rest of ddi-lite asks of a blob store, whichever backend holds the bytes.

    Bytes arrive with ``receive`` (streamed, hashed, checked; not downloadable yet) and become
    a blob with ``keep`` (after ``stage``, outside the write transaction) or go with
    ``discard``; a blob is freed with ``trash``, then ``empty_trash`` or ``restore``;
    ``stored``, ``trashed``, ``delete`` and ``remove_stale_temp_files`` let the sweep of
    `storage.blobs` tidy up after a crash.
    ``source(sha1)`` is what `artifacts.serve` streams (a path, or an object with
    ``open_range``); ``presigned_url`` a link a device may fetch the blob from directly
    (None where the backend has none). ``shared`` says whether other machines may write the
    store too (then a blob without a row may be one whose row another node is committing).
    """

    root = ""
    shared = False

    # --- what every backend does ---------------------------------------------------------

    def receive(self, stream: BinaryIO, max_size: Optional[int] = None,
                expected: Optional[Dict[str, Optional[str]]] = None) -> Received:
        raise NotImplementedError

    def keep(self, received: Received) -> Blob:
        raise NotImplementedError

    def discard(self, received: Received) -> None:
        raise NotImplementedError

    def exists(self, sha1: str) -> bool:
        raise NotImplementedError

    def source(self, sha1: str):
        raise NotImplementedError

    def open(self, sha1: str) -> BinaryIO:
        """The blob's bytes as a stream; FileNotFoundError when it is not in place."""
        raise NotImplementedError

    def open_trashed(self, sha1: str) -> BinaryIO:
        raise NotImplementedError

    def stored(self, min_age: float = 0) -> Iterator[str]:
        raise NotImplementedError

    def trashed(self) -> Iterator[str]:
        raise NotImplementedError

    def trash(self, sha1: str) -> None:
        raise NotImplementedError

    def restore(self, sha1: str) -> None:
        raise NotImplementedError

    def empty_trash(self, sha1: str) -> None:
        raise NotImplementedError

    def delete(self, sha1: str) -> None:
        raise NotImplementedError

    def remove_stale_temp_files(self) -> int:
        raise NotImplementedError

    # --- what they share, or may leave as it is ------------------------------------------

    def put(
        self,
        stream: BinaryIO,
        max_size: Optional[int] = None,
        expected: Optional[Dict[str, Optional[str]]] = None,
    ) -> Blob:
        """``receive`` and ``keep`` at once, for callers that record no rows (tools, tests)."""
        return self.keep(self.receive(stream, max_size, expected))

    def copy_from(self, source: "BlobStorage", sha1: str) -> Blob:
        """Put a blob of ``source`` in place here too, its bytes checked against ``sha1``.

        A blob ``source`` has in its trash counts (the bytes are the same, and checked).
        Raises FileNotFoundError when ``source`` has it nowhere, ChecksumMismatch when its
        bytes do not hash to its name; nothing is left here then.
        """
        for opener in (source.open, source.open_trashed):
            try:
                stream = opener(sha1)
            except FileNotFoundError:
                continue
            try:
                received = self.receive(stream)
            finally:
                stream.close()
            return self._keep_checked(received, sha1)
        raise FileNotFoundError("no blob %s in %s" % (sha1, source.root))

    def _keep_checked(self, received: Received, sha1: str) -> Blob:
        if received.blob.sha1 != sha1:
            self.discard(received)
            raise ChecksumMismatch("sha1")
        return self.keep(received)

    def stage(self, received: Received) -> None:
        """Do before the write transaction what `keep` would otherwise do slowly inside it
        (nothing here: a rename is instant)."""

    def presigned_url(self, sha1: str, seconds: int, filename: str) -> Optional[str]:
        return None


class BlobStore(BlobStorage):
    """Blobs in a local directory (``<data dir>/artifacts``), or one several nodes share."""

    def __init__(self, root: str, shared: bool = False, node: Optional[str] = None):
        self.root = os.path.abspath(root)
        self.shared = shared
        self.node = node or this_node()
        self._tmp_dir = os.path.join(self.root, "tmp")
        self._trash_dir = os.path.join(self.root, "trash")
        os.makedirs(self._tmp_dir, exist_ok=True)
        os.makedirs(self._trash_dir, exist_ok=True)

    def path(self, sha1: str) -> str:
        # The only place a caller-supplied string turns into a filesystem path.
        if not isinstance(sha1, str) or not _SHA1_HEX.fullmatch(sha1):
            raise ValueError(f"not a lowercase hex SHA-1: {sha1!r}")
        return os.path.join(self.root, sha1[:2], sha1)

    def _trash_path(self, sha1: str) -> str:
        return os.path.join(self._trash_dir, os.path.basename(self.path(sha1)))

    def exists(self, sha1: str) -> bool:
        return os.path.isfile(self.path(sha1))

    def source(self, sha1: str) -> str:
        """What `artifacts.serve` streams the blob from: its path."""
        return self.path(sha1)

    def open(self, sha1: str) -> BinaryIO:
        return open(self.path(sha1), "rb")

    def open_trashed(self, sha1: str) -> BinaryIO:
        return open(self._trash_path(sha1), "rb")

    def stored(self, min_age: float = 0) -> Iterator[str]:
        """The sha1 of every blob in place (put in place at least ``min_age`` seconds ago)."""
        now = time.time()
        for shard in os.scandir(self.root):
            if len(shard.name) == 2 and shard.is_dir(follow_symlinks=False):
                for entry in os.scandir(shard.path):
                    if _SHA1_HEX.fullmatch(entry.name) and entry.name[:2] == shard.name:
                        if min_age > 0 and not _older_than(entry, now, min_age):
                            continue
                        yield entry.name

    def trashed(self) -> Iterator[str]:
        """The sha1 of every blob moved aside and not yet removed."""
        for entry in os.scandir(self._trash_dir):
            if _SHA1_HEX.fullmatch(entry.name):
                yield entry.name

    def trash(self, sha1: str) -> None:
        """Move a blob aside; from now on it cannot be downloaded (an open download goes on)."""
        try:
            os.replace(self.path(sha1), self._trash_path(sha1))
        except FileNotFoundError:
            return
        fsync_directory(os.path.dirname(self.path(sha1)))

    def restore(self, sha1: str) -> None:
        """Put a trashed blob back, unless the same bytes are in place again."""
        try:
            if os.path.exists(self.path(sha1)):
                os.unlink(self._trash_path(sha1))
                return
            os.makedirs(os.path.dirname(self.path(sha1)), exist_ok=True)
            os.replace(self._trash_path(sha1), self.path(sha1))
        except FileNotFoundError:
            return
        fsync_directory(os.path.dirname(self.path(sha1)))

    def empty_trash(self, sha1: str) -> None:
        unlink_if_present(self._trash_path(sha1))

    def delete(self, sha1: str) -> None:
        unlink_if_present(self.path(sha1))

    def copy_from(self, source: BlobStorage, sha1: str) -> Blob:
        """As BlobStorage's, with a hard link where both stores are local and on one
        filesystem: blobs are never changed in place, only moved and unlinked, so two stores
        can share the bytes. A copy elsewhere."""
        if not isinstance(source, BlobStore):
            return super().copy_from(source, sha1)
        for path in (source.path(sha1), source._trash_path(sha1)):
            try:
                received = self._receive_file(path)
            except FileNotFoundError:
                continue
            return self._keep_checked(received, sha1)
        raise FileNotFoundError("no blob %s in %s" % (sha1, source.root))

    def _receive_file(self, path: str) -> Received:
        """A hard link to (else a copy of) the file at ``path`` in the temp folder, hashed."""
        temp_path = os.path.join(self._tmp_dir, temp_name(self.node))
        try:
            os.link(path, temp_path)
        except FileNotFoundError:
            raise
        except OSError:  # another filesystem, or one without hard links: copy the bytes
            with open(path, "rb") as original:
                return self.receive(original)
        try:
            with open(temp_path, "rb") as linked, open(os.devnull, "wb") as nowhere:
                blob = _copy_and_hash(linked, nowhere, None)
        except BaseException:
            unlink_if_present(temp_path)
            raise
        return Received(blob, temp_path)

    def remove_stale_temp_files(self) -> int:
        """Drop uploads left behind by a process that is gone; returns how many.

        A temp file of a live process (another server on the same directory, or this one)
        is left alone, and so is one of another machine sharing the directory until it has
        been idle for STALE_TEMP_SECONDS.
        """
        removed = 0
        now = time.time()
        for entry in os.scandir(self._tmp_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)  # never made by an upload
                removed += 1
                continue
            try:
                idle = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if not temp_is_stale(entry.name, idle, self.node):
                continue
            unlink_if_present(entry.path)
            removed += 1
        return removed

    def receive(
        self,
        stream: BinaryIO,
        max_size: Optional[int] = None,
        expected: Optional[Dict[str, Optional[str]]] = None,
    ) -> Received:
        """Stream everything ``stream.read(n)`` yields into a durable temp file and check it.

        ``expected`` maps checksum kinds to hex digests the caller was promised; a kind
        that is missing or None is not checked. Nothing is left behind when this raises.
        """
        expected = _normalised_expectations(expected)
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp_dir, prefix="%s%d-" % (TEMP_PREFIX,
                                                                             os.getpid()),
                                        suffix="@" + self.node)
        try:
            with os.fdopen(fd, "wb") as tmp_file:
                blob = _copy_and_hash(stream, tmp_file, max_size)
                tmp_file.flush()
                os.fsync(tmp_file.fileno())
            if blob.size == 0:
                raise EmptyBlob("refusing to store an empty artifact")
            for kind in CHECKSUM_KINDS:
                if kind in expected and expected[kind] != getattr(blob, kind):
                    raise ChecksumMismatch(kind)
        except BaseException:
            # Also for a client gone or a worker shut down: a half-written upload never
            # outlives the request that made it.
            unlink_if_present(tmp_path)
            raise
        return Received(blob, tmp_path)

    def keep(self, received: Received) -> Blob:
        """Move a received upload into place (the same bytes may already be there)."""
        final_path = self.path(received.blob.sha1)
        shard_dir = os.path.dirname(final_path)
        shard_is_new = not os.path.isdir(shard_dir)
        os.makedirs(shard_dir, exist_ok=True)
        os.replace(received.temp_path, final_path)
        if self.shared:
            # Another node's sweep leaves young blobs alone (their rows may be committing):
            # a hard-linked file, or one that waited long for the write lock, looks old.
            os.utime(final_path)
        fsync_directory(shard_dir)
        if shard_is_new:
            fsync_directory(self.root)
        return received.blob

    def discard(self, received: Received) -> None:
        """Forget a received upload that is not kept (nothing happens if it was)."""
        unlink_if_present(received.temp_path)


def _older_than(entry: os.DirEntry, now: float, seconds: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime >= seconds
    except FileNotFoundError:
        return False


def _pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this machine."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


def _normalised_expectations(expected: Optional[Dict[str, Optional[str]]]) -> Dict[str, str]:
    if not expected:
        return {}
    unknown = set(expected) - set(CHECKSUM_KINDS)
    if unknown:
        # A misspelt kind would otherwise silently skip verification.
        raise ValueError(f"unknown checksum kinds: {sorted(unknown)}")
    return {kind: value.lower() for kind, value in expected.items() if value is not None}


def _copy_and_hash(stream: BinaryIO, out: BinaryIO, max_size: Optional[int]) -> Blob:
    md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
    size = 0
    while True:
        want = READ_CHUNK_SIZE
        if max_size is not None:
            # Ask for at most one byte past the limit: enough to detect an
            # oversized upload without pulling more of it off the network.
            want = min(want, max_size - size + 1)
        chunk = stream.read(want)
        if not chunk:
            break
        size += len(chunk)
        if max_size is not None and size > max_size:
            raise BlobTooLarge(f"artifact exceeds the limit of {max_size} bytes")
        md5.update(chunk)
        sha1.update(chunk)
        sha256.update(chunk)
        out.write(chunk)
    return Blob(sha1=sha1.hexdigest(), md5=md5.hexdigest(), sha256=sha256.hexdigest(), size=size)


def fsync_directory(path: str) -> None:
    # Makes the rename itself durable, not just the file's contents.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
