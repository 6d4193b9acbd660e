"""Content-addressed storage for artifact bytes.

A blob lives at ``<root>/<sha1[:2]>/<sha1>``. Uploads are streamed into
``<root>/tmp/`` and moved into place only once they are complete, durable and
verified, so a blob path either holds the full, checked bytes or does not
exist at all.

This module only deals with bytes on disk. It does not know which software
module or artifact a blob belongs to, and it never decides when a blob is no
longer referenced: callers record the returned ``Blob`` and call ``delete``.
"""

import hashlib
import os
import re
import shutil
import tempfile
from typing import BinaryIO, Dict, NamedTuple, Optional

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


class BlobStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._tmp_dir = os.path.join(self.root, "tmp")
        os.makedirs(self._tmp_dir, exist_ok=True)

    def path(self, sha1: str) -> str:
        # The only place a caller-supplied string turns into a filesystem path.
        if not isinstance(sha1, str) or not _SHA1_HEX.fullmatch(sha1):
            raise ValueError(f"not a lowercase hex SHA-1: {sha1!r}")
        return os.path.join(self.root, sha1[:2], sha1)

    def exists(self, sha1: str) -> bool:
        return os.path.isfile(self.path(sha1))

    def delete(self, sha1: str) -> None:
        try:
            os.unlink(self.path(sha1))
        except FileNotFoundError:
            pass

    def remove_stale_temp_files(self) -> None:
        """Drop uploads left behind by a crash; only safe while no put() runs."""
        for entry in os.scandir(self._tmp_dir):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def put(
        self,
        stream: BinaryIO,
        max_size: Optional[int] = None,
        expected: Optional[Dict[str, Optional[str]]] = None,
    ) -> Blob:
        """Store everything ``stream.read(n)`` yields and return its digests.

        ``expected`` maps checksum kinds to hex digests the caller was promised;
        a kind that is missing or None is not checked.
        """
        expected = _normalised_expectations(expected)
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp_dir, prefix="upload-")
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

            final_path = self.path(blob.sha1)
            if not os.path.exists(final_path):
                shard_dir = os.path.dirname(final_path)
                shard_is_new = not os.path.isdir(shard_dir)
                os.makedirs(shard_dir, exist_ok=True)
                os.replace(tmp_path, final_path)
                tmp_path = None
                _fsync_directory(shard_dir)
                if shard_is_new:
                    _fsync_directory(self.root)
        finally:
            # Also runs for BaseException (client gone, worker shutdown), so a
            # half-written upload never outlives the request that made it.
            if tmp_path is not None:
                _unlink_if_present(tmp_path)
        return blob


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
