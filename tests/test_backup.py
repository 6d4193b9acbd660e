"""Backup and restore (storage/backup.py): a backup taken while artifacts are freed still holds
every blob its rows name, never appears half made, and a restore puts back only what it has
checked, into an empty data directory no server holds."""

import hashlib
import io
import json
import os
import sqlite3

import pytest

import storage
from artifacts import BlobStore
from storage import backup as backups
from storage import catalog, software
from storage.ddi import now_ms
from storage.models import Artifact


def blob_store(directory):
    return BlobStore(os.path.join(str(directory), "artifacts"))


@pytest.fixture
def data_dir(tmp_path):
    directory = tmp_path / "data"
    storage.open_store(str(directory), now_ms())
    yield directory
    storage.close_store()


@pytest.fixture
def live(data_dir):
    return blob_store(data_dir)


def add_artifact(live, content, name="fw", filename="fw.bin"):
    module = catalog.create_module("os", name, "1.0", now_ms(), "admin")
    return catalog.add_artifact(module, filename, live.put(io.BytesIO(content)), now_ms(),
                                "admin")


def rows(database_path, table="artifact", column="filename"):
    with sqlite3.connect(str(database_path)) as db:
        return sorted(row[0] for row in db.execute("SELECT %s FROM %s" % (column, table)))


def read_blob(store, content):
    with open(store.path(hashlib.sha1(content).hexdigest()), "rb") as handle:
        return handle.read()


def test_a_backup_holds_the_database_every_named_blob_and_a_manifest(data_dir, live, tmp_path):
    add_artifact(live, b"one" * 1000, "a")
    add_artifact(live, b"two", "b")
    manifest = backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    copy = tmp_path / "backup"
    assert sorted(os.listdir(str(copy))) == ["artifacts", "ddi-lite.sqlite3", "manifest.json"]
    assert rows(copy / "ddi-lite.sqlite3") == ["fw.bin", "fw.bin"]
    assert read_blob(blob_store(copy), b"two") == b"two"
    assert json.loads((copy / "manifest.json").read_text()) == manifest
    assert manifest["schema_version"] == storage.SCHEMA_VERSION
    assert manifest["artifacts"] == {"blobs": 2, "bytes": 3003}
    assert manifest["rows"]["artifact"] == 2 and manifest["rows"]["software_module"] == 2
    assert manifest["database_bytes"] == os.path.getsize(str(copy / "ddi-lite.sqlite3"))
    assert manifest["ddi_lite_version"] and manifest["created_at"].endswith("+00:00")


def test_the_backup_database_is_one_self_contained_file(data_dir, live, tmp_path):
    backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    database = tmp_path / "backup" / "ddi-lite.sqlite3"
    assert not os.path.exists(str(database) + "-wal")
    with sqlite3.connect(str(database)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_blobs_are_hard_links_on_the_same_filesystem(data_dir, live, tmp_path):
    artifact = add_artifact(live, b"linked")
    backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    copy = blob_store(tmp_path / "backup")
    assert os.stat(copy.path(artifact.sha1)).st_ino == os.stat(live.path(artifact.sha1)).st_ino


def test_a_blob_freed_after_the_snapshot_means_a_new_snapshot_without_its_row(
        data_dir, live, tmp_path, monkeypatch):
    monkeypatch.setattr(backups, "SNAPSHOT_PAUSE_SECONDS", 0)
    kept = add_artifact(live, b"kept", "kept", "kept.bin")
    doomed = add_artifact(live, b"doomed", "doomed", "doomed.bin")
    deleted = []

    class DeleteCommitsMeanwhile(BlobStore):
        """The server deletes an artifact (row, commit, blob) just after the first snapshot."""

        def copy_from(self, source, sha1):
            if not deleted:
                software.delete_artifact(doomed.module_id, doomed.id, live)
                deleted.append(doomed.sha1)
            return BlobStore.copy_from(self, source, sha1)

    def stores(directory):
        if str(directory) == str(data_dir):
            return live
        return DeleteCommitsMeanwhile(os.path.join(str(directory), "artifacts"))

    manifest = backups.backup(str(data_dir), str(tmp_path / "backup"), stores)
    copy = blob_store(tmp_path / "backup")
    assert deleted == [doomed.sha1] and not live.exists(doomed.sha1)
    assert rows(tmp_path / "backup" / "ddi-lite.sqlite3") == ["kept.bin"]
    assert sorted(copy.stored()) == [kept.sha1]
    assert manifest["artifacts"] == {"blobs": 1, "bytes": 4}


def test_a_blob_in_the_trash_of_a_delete_in_flight_is_backed_up(data_dir, live, tmp_path):
    artifact = add_artifact(live, b"being deleted")
    live.trash(artifact.sha1)  # moved aside; its row's deletion is not committed yet
    backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    assert read_blob(blob_store(tmp_path / "backup"), b"being deleted") == b"being deleted"


def test_a_blob_lost_for_good_fails_the_backup_and_leaves_nothing(
        data_dir, live, tmp_path, monkeypatch):
    monkeypatch.setattr(backups, "SNAPSHOT_PAUSE_SECONDS", 0)
    artifact = add_artifact(live, b"lost")
    live.delete(artifact.sha1)
    with pytest.raises(backups.BackupError, match=artifact.sha1):
        backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    assert sorted(os.listdir(str(tmp_path))) == ["data"]


def test_a_damaged_blob_fails_the_backup(data_dir, live, tmp_path):
    artifact = add_artifact(live, b"original")
    with open(live.path(artifact.sha1), "wb") as damaged:
        damaged.write(b"bit rot")
    with pytest.raises(backups.BackupError, match="damaged"):
        backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    assert sorted(os.listdir(str(tmp_path))) == ["data"]


def test_a_blob_that_does_not_match_its_row_fails_the_backup(data_dir, live, tmp_path):
    artifact = add_artifact(live, b"content")
    Artifact.update(size=1).where(Artifact.id == artifact.id).execute()
    with pytest.raises(backups.BackupError, match="does not match its artifact row"):
        backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)


def test_a_backup_never_overwrites(data_dir, tmp_path):
    (tmp_path / "backup").mkdir()
    with pytest.raises(backups.BackupError, match="exists already"):
        backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    assert os.listdir(str(tmp_path / "backup")) == []


def test_a_backup_of_a_directory_without_a_database_is_refused(tmp_path):
    with pytest.raises(backups.BackupError, match="no ddi-lite database"):
        backups.backup(str(tmp_path / "nothing"), str(tmp_path / "backup"), blob_store)
    assert not (tmp_path / "backup").exists()


def test_a_backup_creates_missing_parent_folders(data_dir, tmp_path):
    backups.backup(str(data_dir), str(tmp_path / "backups" / "monday"), blob_store)
    assert (tmp_path / "backups" / "monday" / "manifest.json").exists()


# --- restore ----------------------------------------------------------------------------------

@pytest.fixture
def backup(data_dir, live, tmp_path):
    """A backup of a data directory with two artifacts sharing one blob, and one more."""
    add_artifact(live, b"shared", "a", "a.bin")
    add_artifact(live, b"shared", "b", "b.bin")
    add_artifact(live, b"alone", "c", "c.bin")
    backups.backup(str(data_dir), str(tmp_path / "backup"), blob_store)
    return tmp_path / "backup"


def test_a_restore_puts_back_every_row_and_blob(backup, tmp_path):
    target = tmp_path / "restored"
    manifest = backups.restore(str(backup), str(target), blob_store)
    assert rows(target / "ddi-lite.sqlite3") == ["a.bin", "b.bin", "c.bin"]
    assert read_blob(blob_store(target), b"shared") == b"shared"
    assert read_blob(blob_store(target), b"alone") == b"alone"
    assert manifest["artifacts"] == {"blobs": 2, "bytes": 11}
    assert sorted(os.listdir(str(target))) == ["artifacts", "ddi-lite.lock", "ddi-lite.sqlite3"]


def test_a_restored_directory_opens_as_a_store(backup, tmp_path):
    storage.close_store()
    backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    storage.open_store(str(tmp_path / "restored"), now_ms())
    assert sorted(a.filename for a in Artifact.select()) == ["a.bin", "b.bin", "c.bin"]


def test_a_restore_into_an_empty_existing_directory_is_fine(backup, tmp_path):
    (tmp_path / "restored").mkdir()
    backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert (tmp_path / "restored" / "ddi-lite.sqlite3").exists()


def test_a_restore_into_a_non_empty_directory_is_refused(backup, tmp_path):
    (tmp_path / "restored").mkdir()
    (tmp_path / "restored" / "notes.txt").write_text("mine")
    with pytest.raises(backups.BackupError, match="not empty.*notes.txt"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert sorted(os.listdir(str(tmp_path / "restored"))) == ["ddi-lite.lock", "notes.txt"]


def test_a_restore_while_a_server_holds_the_directory_is_refused(backup, tmp_path):
    held = storage.lock_data_dir(str(tmp_path / "restored"))
    try:
        with pytest.raises(storage.DataDirInUse, match="in use by ddi-lite process"):
            backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    finally:
        held.close()
    assert os.listdir(str(tmp_path / "restored")) == ["ddi-lite.lock"]


def test_a_folder_without_a_manifest_is_not_restored(backup, tmp_path):
    os.unlink(str(backup / "manifest.json"))
    with pytest.raises(backups.BackupError, match="not a complete ddi-lite backup"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)


def test_a_backup_of_a_newer_schema_is_not_restored(backup, tmp_path):
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["schema_version"] = storage.SCHEMA_VERSION + 1
    (backup / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backups.BackupError, match="newer ddi-lite"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)


def assert_left_empty(directory):
    assert os.listdir(str(directory)) == ["ddi-lite.lock"]


def test_a_damaged_blob_in_the_backup_fails_the_restore_and_leaves_it_empty(backup, tmp_path):
    copy = blob_store(backup)
    path = copy.path(hashlib.sha1(b"alone").hexdigest())
    os.unlink(path)  # a hard link to the live blob: damage the backup's own copy only
    with open(path, "wb") as damaged:
        damaged.write(b"alonE")
    with pytest.raises(backups.BackupError, match="damaged"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert_left_empty(tmp_path / "restored")


def test_a_missing_blob_in_the_backup_fails_the_restore(backup, tmp_path):
    blob_store(backup).delete(hashlib.sha1(b"alone").hexdigest())
    with pytest.raises(backups.BackupError, match="lacks blobs"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert_left_empty(tmp_path / "restored")


def test_a_database_failing_its_integrity_check_is_not_restored(backup, tmp_path):
    with sqlite3.connect(str(backup / "ddi-lite.sqlite3")) as db:
        # The index on sha1 now claims to index md5: every entry is out of place.
        db.execute("PRAGMA writable_schema = 1")
        db.execute("UPDATE sqlite_master SET sql = replace(sql, '\"sha1\"', '\"md5\"') "
                   "WHERE type = 'index' AND tbl_name = 'artifact' AND sql LIKE '%\"sha1\"%'")
    with pytest.raises(backups.BackupError, match="integrity_check"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert_left_empty(tmp_path / "restored")


def test_a_database_that_does_not_match_the_manifest_is_not_restored(backup, tmp_path):
    with sqlite3.connect(str(backup / "ddi-lite.sqlite3")) as db:
        db.execute("DELETE FROM artifact WHERE filename = 'c.bin'")
    with pytest.raises(backups.BackupError, match="does not match its manifest"):
        backups.restore(str(backup), str(tmp_path / "restored"), blob_store)
    assert_left_empty(tmp_path / "restored")
