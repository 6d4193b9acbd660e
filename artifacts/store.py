"""Content-addressed storage for artifact bytes.

A blob lives at ``<root>/<sha1[:2]>/<sha1>``. Uploads are streamed into ``<root>/tmp/``
(``receive``) and moved into place (``keep``) only once they are complete, durable and
verified, so a blob path either holds the full, checked bytes or does not exist at all.
Freeing a blob is two steps too: ``trash`` moves it aside, where ``restore`` can bring it
back if the rows that were to forget it are not committed after all, and ``empty_trash``
removes it for good. ``copy_from`` gives a blob of one store to another (backups): a hard
link where both are on one filesystem, a copy elsewhere, checked against its name either way.

This module only deals with bytes on disk. It does not know which software module or
artifact a blob belongs to, and it never decides when a blob is kept or freed:
`storage.blobs` calls these steps inside the database transaction that changes the rows.
"""

import hashlib
import os
import re
import secrets
import shutil
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


# Temp files carry their writer's PID, so that a start-up sweep removes only those whose
# writer is gone, never a live peer's upload in progress.
TEMP_PREFIX = "upload-"
# A temp file untouched this long is stale even if a process with its PID exists (the PID
# may have been reused after a reboot); a live upload writes to it every second or so.
STALE_TEMP_SECONDS = 24 * 3600


class BlobStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
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

    def stored(self) -> Iterator[str]:
        """The sha1 of every blob in place."""
        for shard in os.scandir(self.root):
            if len(shard.name) == 2 and shard.is_dir(follow_symlinks=False):
                for entry in os.scandir(shard.path):
                    if _SHA1_HEX.fullmatch(entry.name) and entry.name[:2] == shard.name:
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
        _fsync_directory(os.path.dirname(self.path(sha1)))

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
        _fsync_directory(os.path.dirname(self.path(sha1)))

    def empty_trash(self, sha1: str) -> None:
        _unlink_if_present(self._trash_path(sha1))

    def delete(self, sha1: str) -> None:
        _unlink_if_present(self.path(sha1))

    def copy_from(self, source: "BlobStore", sha1: str) -> Blob:
        """Put a blob of ``source`` in place here too, its bytes checked against ``sha1``.

        A hard link where both stores are on one filesystem: blobs are never changed in place,
        only moved and unlinked, so two stores can share the bytes. A copy elsewhere. A blob
        ``source`` has in its trash counts (the bytes are the same, and checked). Raises
        FileNotFoundError when ``source`` has it nowhere, ChecksumMismatch when its bytes do
        not hash to its name; nothing is left here then.
        """
        for path in (source.path(sha1), source._trash_path(sha1)):
            try:
                received = self._receive_file(path)
            except FileNotFoundError:
                continue
            if received.blob.sha1 != sha1:
                self.discard(received)
                raise ChecksumMismatch("sha1")
            return self.keep(received)
        raise FileNotFoundError("no blob %s in %s" % (sha1, source.root))

    def _receive_file(self, path: str) -> Received:
        """A hard link to (else a copy of) the file at ``path`` in the temp folder, hashed."""
        temp_path = os.path.join(self._tmp_dir, "%s%d-%s" % (TEMP_PREFIX, os.getpid(),
                                                             secrets.token_hex(8)))
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
            _unlink_if_present(temp_path)
            raise
        return Received(blob, temp_path)

    def remove_stale_temp_files(self) -> int:
        """Drop uploads left behind by a process that is gone; returns how many.

        A temp file of a live process (another server on the same directory, or this one)
        is left alone.
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
            if _writer_alive(entry.name) and idle < STALE_TEMP_SECONDS:
                continue
            _unlink_if_present(entry.path)
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
                                                                             os.getpid()))
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
            _unlink_if_present(tmp_path)
            raise
        return Received(blob, tmp_path)

    def keep(self, received: Received) -> Blob:
        """Move a received upload into place (the same bytes may already be there)."""
        final_path = self.path(received.blob.sha1)
        shard_dir = os.path.dirname(final_path)
        shard_is_new = not os.path.isdir(shard_dir)
        os.makedirs(shard_dir, exist_ok=True)
        os.replace(received.temp_path, final_path)
        _fsync_directory(shard_dir)
        if shard_is_new:
            _fsync_directory(self.root)
        return received.blob

    def discard(self, received: Received) -> None:
        """Forget a received upload that is not kept (nothing happens if it was)."""
        _unlink_if_present(received.temp_path)

    def put(
        self,
        stream: BinaryIO,
        max_size: Optional[int] = None,
        expected: Optional[Dict[str, Optional[str]]] = None,
    ) -> Blob:
        """``receive`` and ``keep`` at once, for callers that record no rows (tools, tests)."""
        return self.keep(self.receive(stream, max_size, expected))


def _writer_alive(temp_name: str) -> bool:
    """Whether the process that named this temp file still runs (on this machine)."""
    match = re.match(re.escape(TEMP_PREFIX) + r"(\d+)-", temp_name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
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


def _fsync_directory(path: str) -> None:
    # Makes the rename itself durable, not just the file's contents.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
