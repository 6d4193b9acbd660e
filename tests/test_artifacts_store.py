import errno
import hashlib
import io
import os
import stat
import subprocess
import sys

import pytest

from artifacts.store import (
    Blob,
    BlobError,
    BlobStore,
    BlobTooLarge,
    ChecksumMismatch,
    EmptyBlob,
)

MIB = 1024 * 1024


class SimulatedCrash(BaseException):
    """Not an Exception: stands in for KeyboardInterrupt, SystemExit and the like."""


class ChunkedStream:
    """Serves ``data`` like a request body and records every read size."""

    def __init__(self, data, fail_after_reads=None, failure=OSError("client went away")):
        self._data = io.BytesIO(data)
        self.read_sizes = []
        self.bytes_served = 0
        self._fail_after_reads = fail_after_reads
        self._failure = failure

    def read(self, n):
        assert 0 < n <= MIB, f"read({n}) is not a bounded chunk"
        if self._fail_after_reads is not None and len(self.read_sizes) == self._fail_after_reads:
            raise self._failure
        self.read_sizes.append(n)
        chunk = self._data.read(n)
        self.bytes_served += len(chunk)
        return chunk


def files_under(root):
    return sorted(
        os.path.relpath(os.path.join(dirpath, name), root)
        for dirpath, _, names in os.walk(root)
        for name in names
    )


@pytest.fixture
def store(tmp_path):
    return BlobStore(str(tmp_path / "blobs"))


def test_root_and_tmp_dir_are_created_when_missing(tmp_path):
    root = tmp_path / "data" / "nested" / "blobs"
    BlobStore(str(root))
    assert (root / "tmp").is_dir()


def test_put_returns_all_three_digests_and_size(store):
    data = b"firmware image \x00\xff" * 1000
    blob = store.put(ChunkedStream(data))
    assert blob == Blob(
        sha1=hashlib.sha1(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def test_blob_is_immutable(store):
    blob = store.put(ChunkedStream(b"abc"))
    with pytest.raises(AttributeError):
        blob.size = 4


def test_put_stores_bytes_under_sha1_shard_path(store):
    data = b"hello device"
    sha1 = hashlib.sha1(data).hexdigest()
    store.put(ChunkedStream(data))
    expected_path = os.path.join(store.root, sha1[:2], sha1)
    assert store.path(sha1) == expected_path
    with open(expected_path, "rb") as stored:
        assert stored.read() == data
    assert files_under(store.root) == [os.path.join(sha1[:2], sha1)]


def test_put_reads_in_chunks_of_at_most_one_mib(store):
    data = os.urandom(3 * MIB + 123)
    stream = ChunkedStream(data)
    blob = store.put(stream)
    assert blob.size == len(data)
    # The stream itself asserts each size; also check that several reads happened.
    assert len(stream.read_sizes) >= 4
    assert max(stream.read_sizes) == MIB


def test_put_fsyncs_file_before_rename_and_directory_after(store, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def recording_replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    store.put(ChunkedStream(b"durable"))
    assert events[:3] == ["fsync file", "replace", "fsync dir"]


@pytest.mark.parametrize("failure", [OSError("connection reset"), SimulatedCrash()])
def test_failing_stream_leaves_no_temp_file_and_no_blob(store, failure):
    stream = ChunkedStream(os.urandom(3 * MIB), fail_after_reads=2, failure=failure)
    with pytest.raises(type(failure)):
        store.put(stream)
    assert stream.bytes_served == 2 * MIB
    assert files_under(store.root) == []
    assert sorted(os.listdir(store.root)) == ["tmp", "trash"]


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256"])
def test_checksum_mismatch_names_the_kind_and_stores_nothing(store, kind):
    data = b"payload"
    expected = {
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    expected[kind] = hashlib.new(kind, b"something else").hexdigest()
    with pytest.raises(ChecksumMismatch) as caught:
        store.put(ChunkedStream(data), expected=expected)
    assert caught.value.kind == kind
    assert files_under(store.root) == []
    assert not store.exists(hashlib.sha1(data).hexdigest())


def test_expected_checksums_are_compared_case_insensitively(store):
    data = b"payload"
    expected = {
        "md5": hashlib.md5(data).hexdigest().upper(),
        "sha256": hashlib.sha256(data).hexdigest().upper(),
    }
    blob = store.put(ChunkedStream(data), expected=expected)
    assert store.exists(blob.sha1)


def test_expected_kind_given_as_none_is_not_checked(store):
    data = b"payload"
    blob = store.put(
        ChunkedStream(data), expected={"md5": None, "sha1": hashlib.sha1(data).hexdigest()}
    )
    assert store.exists(blob.sha1)


def test_expected_with_unknown_kind_is_rejected_before_reading(store):
    stream = ChunkedStream(b"payload")
    with pytest.raises(ValueError):
        store.put(stream, expected={"sha512": "00"})
    assert stream.read_sizes == []
    assert files_under(store.root) == []


def test_same_content_is_stored_once(store):
    first = store.put(ChunkedStream(b"same bytes"))
    second = store.put(ChunkedStream(b"same bytes"))
    assert first == second
    assert files_under(store.root) == [os.path.join(first.sha1[:2], first.sha1)]


def test_upload_exactly_at_max_size_is_accepted(store):
    blob = store.put(ChunkedStream(b"x" * 100), max_size=100)
    assert blob.size == 100


def test_upload_over_max_size_is_refused_promptly_and_leaves_nothing(store):
    stream = ChunkedStream(b"x" * (5 * MIB))
    with pytest.raises(BlobTooLarge):
        store.put(stream, max_size=MIB + 10)
    assert stream.bytes_served == MIB + 11
    assert files_under(store.root) == []


def test_empty_upload_is_refused_and_leaves_nothing(store):
    with pytest.raises(EmptyBlob):
        store.put(ChunkedStream(b""))
    assert files_under(store.root) == []


def test_refusals_share_a_common_base_class():
    for refusal in (BlobTooLarge, EmptyBlob, ChecksumMismatch):
        assert issubclass(refusal, BlobError)
    assert issubclass(BlobError, Exception)


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "../" + "a" * 37,
        "/etc/passwd",
        "/" + "a" * 39,
        "a" * 39 + "\x00",
        "A" * 40,
        "a" * 39,
        "a" * 41,
        "a" * 40 + "\n",
        "g" * 40,
        "",
        None,
        b"a" * 40,
    ],
)
def test_path_rejects_anything_but_forty_lowercase_hex_chars(store, bad):
    with pytest.raises(ValueError):
        store.path(bad)


def test_exists_and_delete_also_validate_the_name(store):
    with pytest.raises(ValueError):
        store.exists("../tmp")
    with pytest.raises(ValueError):
        store.delete("../tmp")


def test_delete_removes_blob_and_tolerates_missing(store):
    blob = store.put(ChunkedStream(b"to be deleted"))
    assert store.exists(blob.sha1)
    store.delete(blob.sha1)
    assert not store.exists(blob.sha1)
    store.delete(blob.sha1)


def test_remove_stale_temp_files_empties_tmp_but_keeps_blobs(store):
    blob = store.put(ChunkedStream(b"keep me"))
    tmp_dir = os.path.join(store.root, "tmp")
    with open(os.path.join(tmp_dir, "upload-crashed"), "wb") as leftover:
        leftover.write(b"partial")
    os.makedirs(os.path.join(tmp_dir, "stray", "deeper"))
    store.remove_stale_temp_files()
    assert os.listdir(tmp_dir) == []
    assert store.exists(blob.sha1)


def test_received_upload_is_not_downloadable_until_kept(store):
    received = store.receive(ChunkedStream(b"not yet"))
    assert not store.exists(received.blob.sha1)
    assert store.keep(received) == received.blob
    assert store.exists(received.blob.sha1)
    assert os.listdir(os.path.join(store.root, "tmp")) == []


def test_discarded_upload_leaves_nothing(store):
    received = store.receive(ChunkedStream(b"unwanted"))
    store.discard(received)
    assert files_under(store.root) == []


def test_keeping_bytes_already_in_place_keeps_one_copy(store):
    first = store.put(ChunkedStream(b"twice"))
    second = store.keep(store.receive(ChunkedStream(b"twice")))
    assert first == second
    assert files_under(store.root) == [os.path.join(first.sha1[:2], first.sha1)]


def test_trashed_blob_is_gone_until_restored(store):
    blob = store.put(ChunkedStream(b"aside"))
    store.trash(blob.sha1)
    assert not store.exists(blob.sha1)
    assert list(store.trashed()) == [blob.sha1]
    store.restore(blob.sha1)
    assert store.exists(blob.sha1)
    assert list(store.trashed()) == []


def test_emptied_trash_frees_the_bytes(store):
    blob = store.put(ChunkedStream(b"free me"))
    store.trash(blob.sha1)
    store.empty_trash(blob.sha1)
    assert files_under(store.root) == []
    assert list(store.stored()) == []


def test_restore_when_the_same_bytes_came_back_keeps_one_copy(store):
    blob = store.put(ChunkedStream(b"again"))
    store.trash(blob.sha1)
    store.put(ChunkedStream(b"again"))
    store.restore(blob.sha1)
    assert files_under(store.root) == [os.path.join(blob.sha1[:2], blob.sha1)]


def test_stored_lists_every_blob(store):
    blobs = {store.put(ChunkedStream(data)).sha1 for data in (b"a", b"b", b"c")}
    assert set(store.stored()) == blobs


def test_stale_temp_files_of_a_live_process_are_kept(store):
    tmp_dir = os.path.join(store.root, "tmp")
    mine = os.path.join(tmp_dir, "upload-%d-inflight" % os.getpid())
    with open(mine, "wb") as handle:
        handle.write(b"still coming")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    gone = os.path.join(tmp_dir, "upload-%s-crashed" % dead)
    with open(gone, "wb") as handle:
        handle.write(b"left behind")
    assert store.remove_stale_temp_files() == 1
    assert os.listdir(tmp_dir) == [os.path.basename(mine)]


@pytest.fixture
def other(tmp_path):
    return BlobStore(str(tmp_path / "other"))


def no_hard_links(source, target):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_copy_from_links_a_blob_on_the_same_filesystem(store, other):
    blob = store.put(ChunkedStream(b"shared bytes"))
    assert other.copy_from(store, blob.sha1) == blob
    assert os.stat(other.path(blob.sha1)).st_ino == os.stat(store.path(blob.sha1)).st_ino
    assert os.listdir(os.path.join(other.root, "tmp")) == []


def test_copy_from_copies_where_a_hard_link_is_impossible(store, other, monkeypatch):
    blob = store.put(ChunkedStream(b"across filesystems"))
    monkeypatch.setattr(os, "link", no_hard_links)
    assert other.copy_from(store, blob.sha1) == blob
    assert os.stat(other.path(blob.sha1)).st_ino != os.stat(store.path(blob.sha1)).st_ino
    with open(other.path(blob.sha1), "rb") as copied:
        assert copied.read() == b"across filesystems"


def test_copy_from_takes_a_blob_from_the_trash(store, other):
    blob = store.put(ChunkedStream(b"being freed"))
    store.trash(blob.sha1)
    assert other.copy_from(store, blob.sha1) == blob
    assert other.exists(blob.sha1)


def test_copy_from_a_blob_the_source_lacks_is_file_not_found(store, other):
    with pytest.raises(FileNotFoundError):
        other.copy_from(store, hashlib.sha1(b"never stored").hexdigest())
    assert files_under(other.root) == []


@pytest.mark.parametrize("link", [True, False])
def test_copy_from_refuses_bytes_that_do_not_hash_to_their_name(store, other, monkeypatch, link):
    blob = store.put(ChunkedStream(b"original"))
    with open(store.path(blob.sha1), "wb") as damaged:
        damaged.write(b"bit rot")
    if not link:
        monkeypatch.setattr(os, "link", no_hard_links)
    with pytest.raises(ChecksumMismatch):
        other.copy_from(store, blob.sha1)
    assert files_under(other.root) == []
