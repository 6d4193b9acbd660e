"""The same blob-store behaviour from every backend (artifacts.BlobStorage): the local
directory and S3-compatible object storage, the latter on Moto's server (tests/s3stand.py).
Upload with hashes and checks, dedupe, receive/keep/discard, trash/restore/empty, listing,
stale temp uploads (also another machine's), copies between backends, serving ranges from a
blob's source, and presigned URLs.

tests/test_artifacts_store.py holds the local directory's own details (paths, fsync order,
hard links); this module what any backend must do.
"""

import hashlib
import io
import os
import subprocess
import sys
import time
import urllib.request

import pytest

import s3stand
from artifacts import serve
from artifacts.store import (BlobStore, BlobTooLarge, ChecksumMismatch, EmptyBlob,
                             STALE_TEMP_SECONDS, temp_name)

MIB = 1024 * 1024


class SimulatedCrash(BaseException):
    """Not an Exception: stands in for KeyboardInterrupt, SystemExit and the like."""


class ChunkedStream:
    """Serves ``data`` like a request body; every read must be a bounded chunk."""

    def __init__(self, data, fail_after_reads=None, failure=OSError("client went away")):
        self._data = io.BytesIO(data)
        self.reads = 0
        self.bytes_served = 0
        self._fail_after_reads = fail_after_reads
        self._failure = failure

    def read(self, n):
        assert 0 < n <= MIB, f"read({n}) is not a bounded chunk"
        if self._fail_after_reads is not None and self.reads == self._fail_after_reads:
            raise self._failure
        self.reads += 1
        chunk = self._data.read(n)
        self.bytes_served += len(chunk)
        return chunk


class Backend:
    """A store of one kind and a way to see everything it holds."""

    def __init__(self, kind, tmp_path, request):
        self.kind = kind
        if kind == "local":
            self.store = BlobStore(str(tmp_path / "blobs"))
        else:
            self.moto = request.getfixturevalue("moto")
            self.bucket = self.moto.new_bucket()
            self.store = self.moto.store("s3://%s/shared/ddi" % self.bucket)

    def everything(self):
        """Every file or object the store holds, in place or not (temp, trash, uploads)."""
        if self.kind == "local":
            root = self.store.root
            return sorted(os.path.relpath(os.path.join(folder, name), root)
                          for folder, _, names in os.walk(root) for name in names)
        objects, uploads = s3stand.keys(self.moto, self.bucket)
        return objects + ["(upload) " + key for key in uploads]

    def leave_temp(self, name, age=0):
        """A temp upload called `name`, last written `age` seconds ago."""
        if self.kind == "local":
            path = os.path.join(self.store.root, "tmp", name)
            with open(path, "wb") as handle:
                handle.write(b"partial")
            os.utime(path, (time.time() - age, time.time() - age))
        else:
            assert age == 0, "S3 sets an object's time itself"
            self.moto.client().put_object(Bucket=self.bucket, Body=b"partial",
                                          Key=self.store.prefix + "tmp/" + name)

    def age_blob(self, sha1, seconds):
        path = self.store.path(sha1)
        os.utime(path, (time.time() - seconds, time.time() - seconds))


@pytest.fixture
def backend(store_kind, tmp_path, request):
    return Backend(store_kind, tmp_path, request)


@pytest.fixture
def store(backend):
    return backend.store


def read_all(store, sha1):
    stream = store.open(sha1)
    try:
        return stream.read()
    finally:
        stream.close()


def dead_pid():
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)


def test_put_hashes_stores_and_reads_back(store):
    data = os.urandom(3 * MIB + 123)
    stream = ChunkedStream(data)
    blob = store.put(stream)
    assert (blob.sha1, blob.md5, blob.sha256, blob.size) == (
        hashlib.sha1(data).hexdigest(), hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(), len(data))
    assert stream.reads >= 4
    assert store.exists(blob.sha1)
    assert read_all(store, blob.sha1) == data


def test_an_upload_of_several_parts_arrives_whole(backend, store):
    """Beyond one S3 part (8 MiB) the upload is multipart; the bytes and hashes are whole."""
    data = os.urandom(17 * MIB + 5)
    blob = store.put(ChunkedStream(data))
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, blob.sha1) == data
    assert len(backend.everything()) == 1


def test_same_content_is_stored_once(backend, store):
    first = store.put(ChunkedStream(b"same bytes"))
    second = store.put(ChunkedStream(b"same bytes"))
    assert first == second
    assert list(store.stored()) == [first.sha1]
    assert len(backend.everything()) == 1


@pytest.mark.parametrize("failure", [OSError("connection reset"), SimulatedCrash()])
def test_a_failing_stream_leaves_nothing(backend, store, failure):
    """Also after parts were sent (S3: the multipart upload is aborted)."""
    stream = ChunkedStream(os.urandom(10 * MIB), fail_after_reads=9, failure=failure)
    with pytest.raises(type(failure)):
        store.put(stream)
    assert stream.bytes_served == 9 * MIB
    assert backend.everything() == []


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_a_checksum_mismatch_names_the_kind_and_leaves_nothing(backend, store, kind):
    data = b"payload"
    expected = {name: hashlib.new(name, data).hexdigest().upper()
                for name in ("md5", "sha1", "sha256")}
    expected[kind] = hashlib.new(kind, b"something else").hexdigest()
    with pytest.raises(ChecksumMismatch) as caught:
        store.put(ChunkedStream(data), expected=expected)
    assert caught.value.kind == kind
    assert backend.everything() == []
    expected[kind] = hashlib.new(kind, data).hexdigest().upper()
    assert store.exists(store.put(ChunkedStream(data), expected=expected).sha1)


def test_an_upload_over_the_limit_is_refused_promptly_and_leaves_nothing(backend, store):
    stream = ChunkedStream(b"x" * (12 * MIB))
    with pytest.raises(BlobTooLarge):
        store.put(stream, max_size=9 * MIB + 10)
    assert stream.bytes_served == 9 * MIB + 11
    assert backend.everything() == []
    assert store.put(ChunkedStream(b"x" * 100), max_size=100).size == 100


def test_an_empty_upload_is_refused_and_leaves_nothing(backend, store):
    with pytest.raises(EmptyBlob):
        store.put(ChunkedStream(b""))
    assert backend.everything() == []


def test_a_received_upload_is_not_in_place_until_kept(backend, store):
    received = store.receive(ChunkedStream(b"not yet"))
    assert not store.exists(received.blob.sha1)
    assert list(store.stored()) == []
    assert store.keep(received) == received.blob
    assert store.exists(received.blob.sha1)
    assert len(backend.everything()) == 1  # the temp upload is gone


def test_a_staged_upload_is_kept_even_if_its_staged_copy_went_meanwhile(backend, store):
    """`stage` does the slow part before the write transaction (S3: the copy into place);
    a delete of the same bytes or a sweep may take that copy before `keep`, which then puts
    the bytes in place from the temp upload again."""
    received = store.receive(ChunkedStream(b"staged"))
    store.stage(received)
    assert store.exists(received.blob.sha1) == (backend.kind == "s3")
    store.delete(received.blob.sha1)
    assert store.keep(received) == received.blob
    assert read_all(store, received.blob.sha1) == b"staged"
    assert len(backend.everything()) == 1


def test_a_discarded_upload_leaves_nothing(backend, store):
    store.discard(store.receive(ChunkedStream(b"unwanted")))
    assert backend.everything() == []


def test_a_trashed_blob_is_gone_until_restored(store):
    blob = store.put(ChunkedStream(b"aside"))
    store.trash(blob.sha1)
    assert not store.exists(blob.sha1)
    assert list(store.trashed()) == [blob.sha1]
    store.restore(blob.sha1)
    assert store.exists(blob.sha1)
    assert list(store.trashed()) == []
    assert read_all(store, blob.sha1) == b"aside"


def test_an_emptied_trash_frees_the_bytes(backend, store):
    blob = store.put(ChunkedStream(b"free me"))
    store.trash(blob.sha1)
    store.empty_trash(blob.sha1)
    assert backend.everything() == []


def test_restore_when_the_same_bytes_came_back_keeps_one_copy(backend, store):
    blob = store.put(ChunkedStream(b"again"))
    store.trash(blob.sha1)
    store.put(ChunkedStream(b"again"))
    store.restore(blob.sha1)
    assert list(store.stored()) == [blob.sha1] and list(store.trashed()) == []
    assert len(backend.everything()) == 1


def test_steps_on_a_missing_blob_do_nothing(backend, store):
    sha1 = hashlib.sha1(b"never stored").hexdigest()
    for step in (store.trash, store.restore, store.empty_trash, store.delete):
        step(sha1)
    assert not store.exists(sha1) and backend.everything() == []


def test_stored_lists_every_blob_and_delete_removes_one(store):
    blobs = {store.put(ChunkedStream(data)).sha1 for data in (b"a", b"b", b"c")}
    assert set(store.stored()) == blobs
    store.delete(sorted(blobs)[0])
    assert set(store.stored()) == blobs - {sorted(blobs)[0]}


def test_stored_with_a_minimum_age_leaves_out_young_blobs(backend, store):
    blob = store.put(ChunkedStream(b"just kept"))
    assert list(store.stored(min_age=600)) == []
    assert list(store.stored(min_age=0)) == [blob.sha1]
    if backend.kind == "local":  # S3 sets an object's time itself
        backend.age_blob(blob.sha1, 601)
        assert list(store.stored(min_age=600)) == [blob.sha1]


@pytest.mark.parametrize("bad", ["../x", "/" + "a" * 39, "A" * 40, "a" * 39, "g" * 40, "", None])
def test_names_other_than_forty_lowercase_hex_digits_are_refused(store, bad):
    for step in (store.exists, store.delete, store.trash, store.source, store.open):
        with pytest.raises(ValueError):
            step(bad)


def test_stale_temp_uploads_go_and_live_ones_stay(backend, store):
    mine = temp_name(store.node)  # this process: alive
    gone = temp_name(store.node, pid=dead_pid())
    other_machine = temp_name("another-node", pid=dead_pid())
    for name in (mine, gone, other_machine):
        backend.leave_temp(name)
    backend.leave_temp("upload-not-ours")
    assert store.remove_stale_temp_files() == 2
    left = [os.path.basename(path) for path in backend.everything()]
    assert sorted(left) == sorted([mine, other_machine])


def test_another_machines_temp_upload_goes_once_it_is_stale(tmp_path):
    """In a directory only: S3 sets an object's time itself."""
    backend = Backend("local", tmp_path, None)
    name = temp_name("another-node", pid=dead_pid())
    backend.leave_temp(name, age=STALE_TEMP_SECONDS + 1)
    assert backend.store.remove_stale_temp_files() == 1
    assert backend.everything() == []


def test_an_unfinished_multipart_upload_of_a_gone_writer_is_aborted(tmp_path, request):
    """Only a gone writer's: Moto reports one fixed initiation time (2010) for every
    multipart upload, so a live one would look idle for years there; real S3 reports the
    true time."""
    backend = Backend("s3", tmp_path, request)
    store = backend.store
    backend.moto.client().create_multipart_upload(
        Bucket=backend.bucket, Key=store.prefix + "tmp/" + temp_name(store.node, dead_pid()))
    assert store.remove_stale_temp_files() == 1
    assert backend.everything() == []


def test_copies_go_both_ways_between_backends_and_take_trashed_blobs(backend, store, tmp_path):
    local = BlobStore(str(tmp_path / "elsewhere"))
    here = store.put(ChunkedStream(b"from the store under test"))
    trashed = store.put(ChunkedStream(b"being freed"))
    store.trash(trashed.sha1)
    assert local.copy_from(store, here.sha1) == here
    assert local.copy_from(store, trashed.sha1) == trashed
    there = local.put(ChunkedStream(b"from a local directory"))
    assert store.copy_from(local, there.sha1) == there
    assert read_all(store, there.sha1) == b"from a local directory"
    with pytest.raises(FileNotFoundError):
        local.copy_from(store, hashlib.sha1(b"never stored").hexdigest())


def test_a_copy_whose_bytes_do_not_hash_to_their_name_is_refused(backend, store, tmp_path):
    local = BlobStore(str(tmp_path / "elsewhere"))
    blob = local.put(ChunkedStream(b"original"))
    with open(local.path(blob.sha1), "wb") as damaged:
        damaged.write(b"bit rot")
    with pytest.raises(ChecksumMismatch):
        store.copy_from(local, blob.sha1)
    assert backend.everything() == []


def test_ranges_are_served_from_the_blobs_source(store):
    data = bytes(range(256)) * 40
    blob = store.put(ChunkedStream(data))
    response = serve.file_response(store.source(blob.sha1), len(data), blob.sha1, 0, "fw.bin",
                                   "GET", {"range": "bytes=10-19,-5"})
    body = b"".join(response.body)
    assert response.status == 206
    assert data[10:20] in body and data[-5:] in body
    whole = serve.file_response(store.source(blob.sha1), len(data), blob.sha1, 0, "fw.bin",
                                "GET", {})
    assert b"".join(whole.body) == data


def test_a_blob_gone_from_under_a_download_fails_loudly(store):
    """The length is promised already: the server must drop the connection, not send less."""
    blob = store.put(ChunkedStream(b"soon gone"))
    response = serve.file_response(store.source(blob.sha1), 9, blob.sha1, 0, "fw.bin", "GET",
                                   {})
    store.delete(blob.sha1)
    with pytest.raises(OSError):
        b"".join(response.body)


def test_a_presigned_url_fetches_the_blob_without_credentials(backend, store):
    blob = store.put(ChunkedStream(b"direct from the bucket"))
    url = store.presigned_url(blob.sha1, 60, "fw 1.bin")
    if backend.kind == "local":
        assert url is None
        return
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"direct from the bucket"
        assert answer.headers["Content-Disposition"] == 'attachment;filename="fw 1.bin"'
    # Its expiry is S3's to enforce; Moto's server does not check signatures.
    assert "X-Amz-Expires=60" in url


def test_every_backend_implements_the_whole_interface():
    from artifacts import BlobStorage
    from artifacts.s3 import S3BlobStore
    required = [name for name, member in vars(BlobStorage).items() if callable(member)
                and member.__code__.co_names[-1:] == ("NotImplementedError",)]
    assert "receive" in required and "remove_stale_temp_files" in required
    for backend in (BlobStore, S3BlobStore):
        assert [name for name in required
                if getattr(backend, name) is getattr(BlobStorage, name)] == [], backend
