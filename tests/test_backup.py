"""Backup and restore (storage/backup.py): a backup taken while artifacts are freed still holds
every blob its rows name, never appears half made, and a restore puts back only what it has
checked, into an empty data directory no server holds."""

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from clients.harness import Operator
from live import ADMIN, PROJECT_DIR, DdiLite, clean_environment, wait_until

import database
import storage
from artifacts import BlobStore
from storage import backup as backups
from storage import catalog, software
from storage.accounts import hash_password
from storage.ddi import now_ms
from storage.models import Artifact

pytestmark = database.sqlite_only("backup and restore copy the SQLite file (PostgreSQL: "
                                  "pg_dump, tests/test_postgres.py)")


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


# --- a real server under write load -----------------------------------------------------------

LOAD_TIMEOUT = 15.0
LOAD_AFTER_SECONDS = 0.5
DEVICES = 4


def ddi_lite_command(*arguments):
    return subprocess.run([sys.executable, "-m", "ddi_lite", *arguments], cwd=PROJECT_DIR,
                          env=clean_environment(), stdin=subprocess.DEVNULL,
                          capture_output=True, universal_newlines=True, timeout=60)


def cheap_accounts():
    """admin/admin with few PBKDF2 rounds: this test is about writes, not login cost."""
    return ["[accounts]", "admin = " + hash_password("admin", iterations=1000)]


def post_feedback(url, controller_id, action_id, message):
    body = json.dumps({"status": {"execution": "proceeding", "result": {"finished": "none"},
                                  "details": [message]}}).encode("utf-8")
    request = urllib.request.Request(
        "%s/DEFAULT/controller/v1/%s/deploymentBase/%d/feedback" % (url, controller_id,
                                                                    action_id),
        data=body, method="POST", headers={"Authorization": "TargetToken token-" + controller_id,
                                           "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def download(url, module_id, artifact_id):
    request = urllib.request.Request(
        "%s/rest/v1/softwaremodules/%d/artifacts/%d/download" % (url, module_id, artifact_id),
        headers={"Authorization": ADMIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def every(operator, path):
    """Every item of a paged Management API listing."""
    items = []
    while True:
        separator = "&" if "?" in path else "?"
        content = operator.call("GET", "%s%soffset=%d&limit=500" % (path, separator,
                                                                    len(items)))["content"]
        items += content
        if len(content) < 500:
            return items


class WriteLoad:
    """Devices posting feedback and an operator uploading and deleting artifacts, each write
    recorded with the monotonic time it was sent and acknowledged."""

    def __init__(self, url, operator, actions):
        self.url = url
        self.operator = operator
        self.actions = actions  # controller_id -> action id
        self.feedback = []  # (controller_id, action_id, message, acknowledged)
        self.uploads = []  # (module_id, artifact_id, filename, content, acknowledged)
        self.deletes = {}  # artifact_id -> (sent, acknowledged)
        self.errors = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._guarded, args=(work,), daemon=True)
                         for work in [self._devices] * 2 + [self._uploads, self._deletes]]

    def _guarded(self, work):
        try:
            work()
        except Exception as error:  # reported by stop(): a write the server refused
            self.errors.append(repr(error))

    def _devices(self):
        number = 0
        while not self._stop.is_set():
            controller_id = "dev-%d" % (number % DEVICES)
            message = "%s-%d-%d" % (controller_id, threading.get_ident(), number)
            post_feedback(self.url, controller_id, self.actions[controller_id], message)
            self.feedback.append((controller_id, self.actions[controller_id], message,
                                  time.monotonic()))
            number += 1

    def _uploads(self):
        number = 0
        while not self._stop.is_set():
            module_id = self.operator.call("POST", "/softwaremodules", [
                {"name": "load-%d" % number, "version": "1.0", "type": "os"}])[0]["id"]
            # Every third upload repeats the one before: two rows sharing one blob.
            content = (self.uploads[-1][3] if number % 3 == 2 else
                       os.urandom(32 * 1024) + b"%d" % number)
            filename = "load-%d.bin" % number
            artifact = self.operator.upload(module_id, filename, content)
            self.uploads.append((module_id, artifact["id"], filename, content,
                                 time.monotonic()))
            number += 1

    def _deletes(self):
        deleted = 0
        while not self._stop.is_set():
            if len(self.uploads) - deleted < 4:
                time.sleep(0.01)
                continue
            module_id, artifact_id = self.uploads[deleted][:2]
            sent = time.monotonic()
            self.operator.call("DELETE", "/softwaremodules/%d/artifacts/%d"
                               % (module_id, artifact_id))
            self.deletes[artifact_id] = (sent, time.monotonic())
            deleted += 2  # half of the uploads stay

    def under_way(self):
        """Whether every device has reported and some artifact has been deleted."""
        return len({entry[0] for entry in self.feedback}) == DEVICES and len(self.deletes) > 1

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(LOAD_TIMEOUT)
        if exc_info[0] is None:
            assert self.errors == []


def test_a_backup_under_write_load_restores_every_write_acknowledged_before_it(tmp_path):
    live_data = tmp_path / "live" / "data"
    server = DdiLite(tmp_path / "live", config_lines=["data_dir = %s" % live_data]
                     + cheap_accounts() + ["[limits]", "status_entries_per_action = 0"])
    try:
        operator = Operator(server.url)
        set_id = operator.distribution("fleet", {"fleet.swu": b"firmware" * 4096})
        actions = {}
        for number in range(DEVICES):
            controller_id = "dev-%d" % number
            operator.add_target(controller_id, token="token-" + controller_id)
            actions[controller_id] = operator.assign(set_id, controller_id)
        with WriteLoad(server.url, operator, actions) as load:
            wait_until(load.under_way, LOAD_TIMEOUT, "feedback from every device and deletes",
                       on_timeout=lambda: "\n".join(load.errors))
            began = time.monotonic()
            # As README says: the server's own --config names the data directory.
            made = ddi_lite_command("backup", "--config", str(server.config_path),
                                    str(tmp_path / "backup"))
            ended = time.monotonic()
            time.sleep(LOAD_AFTER_SECONDS)
        assert made.returncode == 0, made.stderr
        assert "backup of" in made.stdout
        refused = ddi_lite_command("restore", "--config", str(server.config_path),
                                   str(tmp_path / "backup"))
        assert refused.returncode == 1 and "in use by ddi-lite process" in refused.stderr
    finally:
        server.stop()

    restored = ddi_lite_command("restore", str(tmp_path / "backup"),
                                "--data-dir", str(tmp_path / "restored" / "data"))
    assert restored.returncode == 0, restored.stderr
    database = tmp_path / "restored" / "data" / "ddi-lite.sqlite3"
    with sqlite3.connect(str(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    server = DdiLite(tmp_path / "restored", config_lines=cheap_accounts())
    try:
        operator = Operator(server.url)
        for controller_id, action_id in actions.items():
            messages = {message for entry in every(operator, "/targets/%s/actions/%d/status"
                                                   % (controller_id, action_id))
                        for message in entry["messages"]}
            acknowledged = {message for device, _, message, at in load.feedback
                            if device == controller_id and at < began}
            assert acknowledged and acknowledged <= messages

        present = {artifact["id"]: (module["id"], artifact)
                   for module in every(operator, "/softwaremodules")
                   for artifact in operator.call("GET", "/softwaremodules/%d/artifacts"
                                                 % module["id"])}
        content_of = {artifact_id: content for _, artifact_id, _, content, _ in load.uploads}
        for _, artifact_id, filename, _, acknowledged in load.uploads:
            sent_delete, deleted = load.deletes.get(artifact_id, (float("inf"),) * 2)
            if acknowledged < began and sent_delete > ended:
                assert artifact_id in present, filename
            if deleted < began:
                assert artifact_id not in present, filename
        assert any(at < began for _, at in load.deletes.values())
        for artifact_id, (module_id, artifact) in present.items():
            data = download(server.url, module_id, artifact_id)
            assert hashlib.sha256(data).hexdigest() == artifact["hashes"]["sha256"]
            if artifact_id in content_of:
                assert data == content_of[artifact_id]
    finally:
        server.stop()
