"""Blob files follow the artifact rows (storage/blobs.py): kept and freed inside the write
transaction, undone with it, and brought back in line by the start-up sweep after a crash."""

import hashlib
import io
import os

import pytest

import storage
from artifacts import BlobStore
from storage import blobs as blob_rules
from storage import catalog
from storage.ddi import now_ms
from storage.models import Artifact


@pytest.fixture
def blobs(tmp_path):
    storage.open_store(str(tmp_path), now_ms())
    yield BlobStore(str(tmp_path / "artifacts"))
    storage.close_store()


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
    assert not os.path.exists(received.temp_path)


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


def test_sweep_removes_blobs_no_row_refers_to(blobs, module):
    kept = blobs.put(io.BytesIO(b"recorded"))
    artifact_row(module, b"recorded")
    orphan = blobs.put(io.BytesIO(b"renamed, never committed"))
    result = blob_rules.sweep(blobs)
    assert sorted(blobs.stored()) == [kept.sha1]
    assert result["freed"] == 1 and not blobs.exists(orphan.sha1)


def test_sweep_puts_back_a_trashed_blob_whose_rows_were_not_committed(blobs, module):
    blobs.put(io.BytesIO(b"still used"))
    row = artifact_row(module, b"still used")
    blobs.trash(row.sha1)  # a delete crashed before its commit
    unused = blobs.put(io.BytesIO(b"really freed"))
    blobs.trash(unused.sha1)  # a delete crashed after its commit
    result = blob_rules.sweep(blobs)
    assert result["restored"] == 1
    assert sorted(blobs.stored()) == [row.sha1]
    assert list(blobs.trashed()) == []
