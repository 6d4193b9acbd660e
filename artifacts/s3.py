"""Blobs in S3-compatible object storage (`[artifacts] store = s3://bucket/prefix`).

The keys under the prefix mirror the local directory of `artifacts.store`: a blob in place at
`<sha1[:2]>/<sha1>`, one moved aside at `trash/<sha1>`, an upload not kept yet at
`tmp/upload-<pid>-<random>@<host>`. S3 has no rename, so each move of `storage.blobs`'
crash-recoverable order (keep, trash, restore) is a server-side copy followed by a delete of
the original. An object appears whole or not at all, so a blob key still either holds the
full, checked bytes or does not exist, and every crash leaves what the sweep already handles:
a blob no row names, a trashed blob, or a temp object. A blob may stay in two places for a
moment (the copy done, the delete not), which the sweep tidies as well.

Uploads stream: the bytes are hashed as they arrive and go out in parts of PART_SIZE
(S3's multipart upload), so one part is all this process holds of an upload; an upload
smaller than one part is a single PUT. An upload about to be kept is copied into place
(`stage`) before its write transaction, since a copy takes time in proportion to the size;
`keep` then only checks that it is still there. Deleting still copies to the trash inside the
transaction (rare, an operator's step).

boto3 (the `s3` extra, `pip install ddi-lite[s3]`) does the request signing (SigV4),
retries and multipart calls; it is imported when a store is made, so a server on the local
directory never loads it.
"""

import os
import threading
import time
import urllib.parse
from typing import BinaryIO, Dict, Iterator, Optional

from .serve import content_disposition
from .store import (CHECKSUM_KINDS, BlobStorage, Blob, ChecksumMismatch, EmptyBlob, Received,
                    _SHA1_HEX, _copy_and_hash, _normalised_expectations, temp_is_stale,
                    temp_name, this_node)

# Each part but the last must be at least 5 MiB (S3's rule); 8 MiB keeps an upload's memory
# at about two parts while a 1 GiB artifact takes 128 requests, far below the 10,000 allowed.
PART_SIZE = 8 * 1024 * 1024
# The largest object one CopyObject call copies; beyond, boto3 copies it in parts.
COPY_OBJECT_LIMIT = 5 * 1024 ** 3
_MISSING = ("NoSuchKey", "404", "NotFound", "NoSuchUpload")

# One boto3 session for every store of the process: a session loads S3's service description
# once (a tenth of a second), and making clients from it is then quick. A session is not
# thread-safe, its clients are; clients are made under the lock.
_session = None
_session_lock = threading.Lock()


def _client(**options):
    global _session
    import boto3
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **options)


class StoreUnreachable(OSError):
    """The bucket cannot be reached or used with the settings given."""


def parse_url(url: str):
    """(bucket, key prefix ending in '/' or empty) of an s3://bucket/prefix URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise ValueError("not an s3://bucket/prefix URL: %r" % url)
    prefix = parsed.path.strip("/")
    return parsed.netloc, prefix + "/" if prefix else ""


def _missing(error) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING


class S3BlobStore(BlobStorage):
    """Blobs as objects of one bucket under one prefix; other nodes may share them."""

    shared = True

    def __init__(self, url: str, endpoint: str = "", region: str = "", access_key: str = "",
                 secret_key: str = "", node: Optional[str] = None):
        import botocore.config
        import botocore.exceptions
        self._errors = botocore.exceptions
        self.bucket, self.prefix = parse_url(url)
        self.root = url
        self.node = node or this_node()
        self._client = _client(
            endpoint_url=endpoint or None, region_name=region or None,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=botocore.config.Config(
                signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"},
                # Beyond the default 10: one per request thread of a busy server, and more.
                max_pool_connections=64,
                # A custom endpoint (MinIO, Ceph, Moto) seldom has a DNS name per bucket.
                s3={"addressing_style": "path"} if endpoint else {}))
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (self._errors.BotoCoreError, self._errors.ClientError) as error:
            raise StoreUnreachable("cannot use the artifact store %s%s: %s" % (
                url, " at " + endpoint if endpoint else "", error))

    # --- names ---------------------------------------------------------------------------

    def key(self, sha1: str) -> str:
        # The only place a caller-supplied string turns into an object key.
        if not isinstance(sha1, str) or not _SHA1_HEX.fullmatch(sha1):
            raise ValueError(f"not a lowercase hex SHA-1: {sha1!r}")
        return "%s%s/%s" % (self.prefix, sha1[:2], sha1)

    def _trash_key(self, sha1: str) -> str:
        return "%strash/%s" % (self.prefix, os.path.basename(self.key(sha1)))

    def _list(self, prefix: str):
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", ())

    # --- reading -------------------------------------------------------------------------

    def exists(self, sha1: str) -> bool:
        return self._exists(self.key(sha1))

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except self._errors.ClientError as error:
            if _missing(error):
                return False
            raise
        return True

    def source(self, sha1: str) -> "ObjectSource":
        return ObjectSource(self, self.key(sha1))

    def open(self, sha1: str) -> BinaryIO:
        return self._open(self.key(sha1))

    def open_trashed(self, sha1: str) -> BinaryIO:
        return self._open(self._trash_key(sha1))

    def _open(self, key: str, byte_range: Optional[str] = None) -> BinaryIO:
        """The object's bytes as a stream (read(n), close()); FileNotFoundError if missing."""
        extra = {"Range": byte_range} if byte_range else {}
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
        except self._errors.ClientError as error:
            if _missing(error):
                raise FileNotFoundError("no object %s in %s" % (key, self.root))
            raise

    def presigned_url(self, sha1: str, seconds: int, filename: str) -> Optional[str]:
        """A URL that GETs the blob without other credentials for `seconds`, answered with
        the artifact's file name as ddi-lite's own download would name it."""
        return self._client.generate_presigned_url("get_object", ExpiresIn=seconds, Params={
            "Bucket": self.bucket, "Key": self.key(sha1),
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": "application/octet-stream"})

    def stored(self, min_age: float = 0) -> Iterator[str]:
        """The sha1 of every blob in place (put in place at least `min_age` seconds ago)."""
        now = time.time()
        for entry in self._list(self.prefix):
            shard, _, name = entry["Key"][len(self.prefix):].partition("/")
            if _SHA1_HEX.fullmatch(name) and name[:2] == shard:
                if min_age > 0 and now - entry["LastModified"].timestamp() < min_age:
                    continue
                yield name

    def trashed(self) -> Iterator[str]:
        for entry in self._list(self.prefix + "trash/"):
            name = entry["Key"].rpartition("/")[2]
            if _SHA1_HEX.fullmatch(name):
                yield name

    # --- receiving and keeping -----------------------------------------------------------

    def receive(
        self,
        stream: BinaryIO,
        max_size: Optional[int] = None,
        expected: Optional[Dict[str, Optional[str]]] = None,
    ) -> Received:
        """Stream everything `stream.read(n)` yields into a temp object, hashing it, and
        check it; nothing is left behind when this raises (as BlobStore.receive)."""
        expected = _normalised_expectations(expected)
        parts = _PartWriter(self._client, self.bucket,
                            self.prefix + "tmp/" + temp_name(self.node))
        try:
            blob = _copy_and_hash(stream, parts, max_size)
            if blob.size == 0:
                raise EmptyBlob("refusing to store an empty artifact")
            for kind in CHECKSUM_KINDS:
                if kind in expected and expected[kind] != getattr(blob, kind):
                    raise ChecksumMismatch(kind)
            parts.finish()
        except BaseException:
            parts.abandon()
            raise
        return Received(blob, parts.key)

    def stage(self, received: Received) -> None:
        """Copy a received upload into place before the write transaction that keeps it: a
        copy takes as long as the object store needs for the size, and that transaction
        holds the database's write lock. No row names the blob yet, so no device can ask for
        it; the copy's fresh time keeps another node's sweep from taking it for a leftover
        while its row is being committed. A transaction that then fails leaves it for a
        sweep (other rows may name the same bytes)."""
        self._copy(received.temp_path, self.key(received.blob.sha1), received.blob.size)

    def keep(self, received: Received) -> Blob:
        """Make sure a received upload is in place, then drop the temp object. `stage` put
        it there, unless a delete of the same bytes or a sweep took it meanwhile, or it was
        not staged: then it is copied from the temp object now (under the write lock, so
        nothing takes it away before the row commits)."""
        if not self.exists(received.blob.sha1):
            self._copy(received.temp_path, self.key(received.blob.sha1), received.blob.size)
        self._delete(received.temp_path)
        return received.blob

    def discard(self, received: Received) -> None:
        self._delete(received.temp_path)

    # --- freeing -------------------------------------------------------------------------

    def trash(self, sha1: str) -> None:
        if self._copy(self.key(sha1), self._trash_key(sha1)):
            self._delete(self.key(sha1))

    def restore(self, sha1: str) -> None:
        """Put a trashed blob back, unless the same bytes are in place again."""
        if not self.exists(sha1) and not self._copy(self._trash_key(sha1), self.key(sha1)):
            return
        self._delete(self._trash_key(sha1))

    def empty_trash(self, sha1: str) -> None:
        self._delete(self._trash_key(sha1))

    def delete(self, sha1: str) -> None:
        self._delete(self.key(sha1))

    def remove_stale_temp_files(self) -> int:
        """Drop temp objects and unfinished multipart uploads whose writer is gone (as
        BlobStore's: another machine's are left alone until STALE_TEMP_SECONDS idle)."""
        removed = 0
        now = time.time()
        tmp = self.prefix + "tmp/"
        for entry in list(self._list(tmp)):
            name = entry["Key"][len(tmp):]
            if temp_is_stale(name, now - entry["LastModified"].timestamp(), self.node):
                self._delete(entry["Key"])
                removed += 1
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=tmp)
        for upload in [upload for page in pages for upload in page.get("Uploads", ())]:
            name = upload["Key"][len(tmp):]
            if temp_is_stale(name, now - upload["Initiated"].timestamp(), self.node):
                _abort(self._client, self.bucket, upload["Key"], upload["UploadId"])
                removed += 1
        return removed

    # --- moving --------------------------------------------------------------------------

    def _copy(self, source_key: str, key: str, size: Optional[int] = None) -> bool:
        """Server-side copy; False when the source does not exist."""
        source = {"Bucket": self.bucket, "Key": source_key}
        try:
            if size is not None and size > COPY_OBJECT_LIMIT:
                self._client.copy(source, self.bucket, key)
            else:
                self._client.copy_object(Bucket=self.bucket, Key=key, CopySource=source)
        except self._errors.ClientError as error:
            if _missing(error):
                return False
            if size is None and error.response.get("Error", {}).get("Code") in (
                    "InvalidRequest", "EntityTooLarge"):
                return self._copy(source_key, key, COPY_OBJECT_LIMIT + 1)
            raise
        return True

    def _delete(self, key: str) -> None:
        # Deleting a key that does not exist succeeds in S3, as unlinking if present.
        self._client.delete_object(Bucket=self.bucket, Key=key)


class ObjectSource:
    """One blob's bytes for `artifacts.serve`: each range is one ranged GET."""

    def __init__(self, store: S3BlobStore, key: str):
        self._store = store
        self._key = key

    def open_range(self, first: int, last: int) -> BinaryIO:
        try:
            return self._store._open(self._key, "bytes=%d-%d" % (first, last))
        except FileNotFoundError as missing:
            raise OSError(str(missing))

    def __str__(self):
        return "s3://%s/%s" % (self._store.bucket, self._key)


class _PartWriter:
    """A file-like `write` that sends what it is given to one key, part by part."""

    def __init__(self, client, bucket: str, key: str):
        self._client = client
        self._bucket = bucket
        self.key = key
        self._pending = []
        self._pending_bytes = 0
        self._upload_id = None
        self._parts = []
        self._finished = False

    def write(self, chunk: bytes) -> None:
        self._pending.append(bytes(chunk))
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= PART_SIZE:
            self._send_part()

    def _take_pending(self) -> bytes:
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        return data

    def _send_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self.key)["UploadId"]
        number = len(self._parts) + 1
        answer = self._client.upload_part(Bucket=self._bucket, Key=self.key,
                                          UploadId=self._upload_id, PartNumber=number,
                                          Body=self._take_pending())
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def finish(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self.key,
                                    Body=self._take_pending())
        else:
            if self._pending_bytes:
                self._send_part()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self.key, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
        self._finished = True

    def abandon(self) -> None:
        """Leave nothing behind: the parts sent, or the object if it was finished."""
        self._pending = []
        try:
            if self._finished:
                self._client.delete_object(Bucket=self._bucket, Key=self.key)
            elif self._upload_id is not None:
                _abort(self._client, self._bucket, self.key, self._upload_id)
        except Exception:
            pass  # the start-up sweep removes what is left once this process is gone


def _abort(client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as error:
        if not (hasattr(error, "response") and _missing(error)):
            raise
