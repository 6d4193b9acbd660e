"""Blob files follow the artifact rows (storage/blobs.py): kept and freed inside the write
transaction, undone with it, and brought back in line by the start-up sweep after a crash.
Each test runs on the local directory and on S3 (Moto's server, tests/s3stand.py); a store
that other nodes share keeps young blobs without a row from the sweep."""

import hashlib
import io
import os
import time

import pytest

import storage
from artifacts import BlobStore
from storage import blobs as blob_rules
from storage import catalog
from storage.ddi import now_ms
from storage.models import Artifact


@pytest.fixture
def blobs(tmp_path, store_kind, request):
    storage.open_store(str(tmp_path), now_ms())
    if store_kind == "local":
        yield BlobStore(str(tmp_path / "artifacts"))
    else:
        moto = request.getfixturevalue("moto")
        yield moto.store("s3://%s/artifacts" % moto.new_bucket())
    storage.close_store()


def temp_upload_exists(blobs, received):
    if isinstance(blobs, BlobStore):
        return os.path.exists(received.temp_path)
    return blobs._exists(received.temp_path)


@pytest.fixture
def settled(blobs, monkeypatch):
    """Blobs count as settled at once, as on a store of one node (S3 is always shared)."""
    monkeypatch.setattr(blob_rules, "SHARED_SETTLE_SECONDS", 0)


def sha1(content):
    return hashlib.sha1(content).hexdigest()


def artifact_row(module, content, filename="fw.bin"):
    return Artifact.create(module=module, filename=filename, size=len(content),
                           sha1=sha1(content), md5=hashlib.md5(content).hexdigest(),
                           sha256=hashlib.sha256(content).hexdigest(),
                           created_at=0, created_by="t", last_modified_at=0,
                           last_modified_by="t")


@pytest.fixture
def module(blobs):
    return catalog.create_module("os", "fw", "1.0", now_ms(), "admin")


def test_a_kept_upload_is_in_place_after_the_commit(blobs, module):
    received = blobs.receive(io.BytesIO(b"image"))
    with blob_rules.changing(blobs) as changes:
        artifact_row(module, b"image")
        changes.keep(received)
        assert not blobs.exists(sha1(b"image"))  # not before the transaction ends
    assert blobs.exists(sha1(b"image"))


def test_a_failed_transaction_discards_what_it_would_have_kept(blobs, module):
    received = blobs.receive(io.BytesIO(b"image"))
    with pytest.raises(RuntimeError):
        with blob_rules.changing(blobs) as changes:
            changes.keep(received)
            raise RuntimeError("refused")
    assert list(blobs.stored()) == []
    assert not temp_upload_exists(blobs, received)


def test_a_failed_transaction_puts_back_what_it_would_have_freed(blobs, module):
    blobs.put(io.BytesIO(b"image"))
    row = artifact_row(module, b"image")
    with pytest.raises(RuntimeError):
        with blob_rules.changing(blobs) as changes:
            row.delete_instance()
            changes.free_unreferenced([row.sha1])
            changes._apply()  # the file is in the trash when the commit fails
            assert not blobs.exists(row.sha1)
            raise RuntimeError("commit failed")
    assert Artifact.get_or_none(Artifact.id == row.id) is not None
    assert blobs.exists(row.sha1)
    assert list(blobs.trashed()) == []


def test_a_blob_another_row_still_uses_is_not_freed(blobs, module):
    blobs.put(io.BytesIO(b"shared"))
    first = artifact_row(module, b"shared", "a.bin")
    artifact_row(module, b"shared", "b.bin")
    with blob_rules.changing(blobs) as changes:
        first.delete_instance()
        changes.free_unreferenced([first.sha1])
    assert blobs.exists(first.sha1)


def test_sweep_removes_blobs_no_row_refers_to(blobs, module, settled):
    kept = blobs.put(io.BytesIO(b"recorded"))
    artifact_row(module, b"recorded")
    orphan = blobs.put(io.BytesIO(b"renamed, never committed"))
    result = blob_rules.sweep(blobs)
    assert sorted(blobs.stored()) == [kept.sha1]
    assert result["freed"] == 1 and not blobs.exists(orphan.sha1)


def test_sweep_puts_back_a_trashed_blob_whose_rows_were_not_committed(blobs, module, settled):
    blobs.put(io.BytesIO(b"still used"))
    row = artifact_row(module, b"still used")
    blobs.trash(row.sha1)  # a delete crashed before its commit
    unused = blobs.put(io.BytesIO(b"really freed"))
    blobs.trash(unused.sha1)  # a delete crashed after its commit
    result = blob_rules.sweep(blobs)
    assert result["restored"] == 1
    assert sorted(blobs.stored()) == [row.sha1]
    assert list(blobs.trashed()) == []


def test_the_sweep_of_a_shared_store_leaves_a_young_blob_whose_row_may_be_committing(
        blobs, module, tmp_path):
    """Another node kept the blob and is about to commit its row (nodes that share a bucket or
    an NFS directory and PostgreSQL share no write lock): it stays until it is settled."""
    if isinstance(blobs, BlobStore):
        blobs = BlobStore(blobs.root, shared=True)
    in_flight = blobs.put(io.BytesIO(b"kept by another node"))
    assert blob_rules.sweep(blobs)["freed"] == 0
    artifact_row(module, b"kept by another node")  # its commit
    assert blobs.exists(in_flight.sha1)


def test_a_shared_directorys_sweep_frees_a_settled_blob_without_a_row(tmp_path):
    storage.open_store(str(tmp_path), now_ms())
    try:
        shared = BlobStore(str(tmp_path / "nfs"), shared=True)
        orphan = shared.put(io.BytesIO(b"crashed before its commit"))
        assert blob_rules.sweep(shared)["freed"] == 0
        old = time.time() - blob_rules.SHARED_SETTLE_SECONDS - 1
        os.utime(shared.path(orphan.sha1), (old, old))
        assert blob_rules.sweep(shared)["freed"] == 1
        assert not shared.exists(orphan.sha1)
    finally:
        storage.close_store()


def test_a_shared_directory_gives_a_kept_blob_a_fresh_time(tmp_path):
    """A blob already in place, or one hard-linked from an old file, looks young once kept."""
    shared = BlobStore(str(tmp_path / "nfs"), shared=True)
    blob = shared.put(io.BytesIO(b"again"))
    old = time.time() - 7200
    os.utime(shared.path(blob.sha1), (old, old))
    shared.put(io.BytesIO(b"again"))
    assert time.time() - os.stat(shared.path(blob.sha1)).st_mtime < 60


def test_an_upload_staged_before_a_refused_transaction_is_left_for_the_sweep(
        blobs, module, settled):
    """S3 copies an upload into place before the write lock (storage.blobs.stage); when the
    transaction is then refused, the copy is a blob no row names, as after a crash."""
    received = blobs.receive(io.BytesIO(b"refused"))
    blob_rules.stage(blobs, received)
    with pytest.raises(RuntimeError):
        with blob_rules.changing(blobs) as changes:
            changes.keep(received)
            raise RuntimeError("409: the file name is taken")
    assert blob_rules.sweep(blobs)["freed"] == (0 if isinstance(blobs, BlobStore) else 1)
    assert list(blobs.stored()) == []
