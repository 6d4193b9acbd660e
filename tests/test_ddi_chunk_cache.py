"""What a device is offered follows every change of the software (storage/chunks.py).

deploymentBase, installedBase, confirmationBase/{actionId} and the artifact list are served
from a per-app cache of each set's chunks. A stale document sends a device a hash or a file
that no longer exists, so each way the cached facts can change is tested here: the next
answer must show the change, and must be byte for byte what a server started afresh on the
same data directory answers. Sets and modules lock on assignment, but an operator may unlock
them, and module metadata may change on a locked module.
"""

import io
import json
import os
import sqlite3
import urllib.request

import pytest
import webtest
from live import DdiLite, api

import database
import ddi_lite
import storage
from artifacts import BlobStore
from conftest import DEVICE, Server, now_ms, token
from storage import backup as backups
from storage import catalog, chunks, software
from storage.db import write
from storage.models import Artifact

CID = "dev-1"
API = "/rest/v1"
ADMIN = ("Basic", ("admin", "admin"))
SOFTWARE_TABLES = ("software_module", "artifact", "distribution_set_module")


class World:
    """dev-1 with an action of a set holding one module (`rootfs.swu`), the module locked by
    the assignment, and a second module outside the set. The action's document (`resource`,
    whose inner part is `inner`) has been fetched once, so the app's cache holds the set."""

    def __init__(self, server, resource="deploymentBase", inner="deployment"):
        self.server = server
        self.resource = resource
        self.inner = inner
        server.target(CID, "token-1")
        self.module = server.module(name="rootfs", files={"rootfs.swu": b"rootfs 1"})
        self.other = server.module(name="agent", type_key="application",
                                   files={"agent.bin": b"agent 1"})
        self.distribution_set = server.distribution_set([self.module])
        self.action = server.assign(self.distribution_set, CID)
        self.admin = operator(server.wsgi)
        self.deployment()

    def url(self, resource=None):
        return "%s/%s/%s/%d" % (DEVICE, CID, resource or self.resource, self.action.id)

    def list_url(self, module_id=None):
        return "%s/%s/softwaremodules/%d/artifacts" % (
            DEVICE, CID, self.module.id if module_id is None else module_id)

    def deployment(self, url=None):
        """The next answer of the cached app, checked against a fresh app's; its document."""
        return fresh(self.server, url or self.url())

    def chunks(self):
        return self.deployment()[self.inner]["chunks"]

    def filenames(self):
        return [[a["filename"] for a in chunk["artifacts"]] for chunk in self.chunks()]

    def metadata(self):
        return self.chunks()[0].get("metadata")

    def unlock_module(self):
        """Unlock the module, and fetch the document again: the change that follows must be
        seen on its own, not thanks to the unlock."""
        self.admin.put_json("%s/softwaremodules/%d" % (API, self.module.id), {"locked": False},
                            status=200)
        self.deployment()

    def unlock_set(self):
        self.admin.put_json("%s/distributionsets/%d" % (API, self.distribution_set.id),
                            {"locked": False}, status=200)
        self.deployment()

    def upload(self, filename, content):
        return self.admin.post("%s/softwaremodules/%d/artifacts" % (API, self.module.id),
                               upload_files=[("file", filename, content)], status=201).json

    def put_metadata(self, key, **fields):
        self.admin.put_json("%s/softwaremodules/%d/metadata/%s" % (API, self.module.id, key),
                            fields, status=204)


def operator(wsgi):
    admin = webtest.TestApp(wsgi)
    admin.set_authorization(ADMIN)
    return admin


def fresh(server, url, tok="token-1"):
    """GET `url` from the server's app, and from an app started now on the same data
    directory (nothing cached): the bodies must be the same bytes. The document."""
    cached = server.http.get(url, headers=token(tok), status=200)
    started = webtest.TestApp(ddi_lite.create_app(server.config),
                              extra_environ={"REMOTE_ADDR": "192.0.2.10"})
    built = started.get(url, headers=token(tok), status=200)
    assert cached.body == built.body
    return json.loads(cached.body)


@pytest.fixture
def world(server):
    return World(server)


# --- artifacts ---------------------------------------------------------------------------------

def test_an_artifact_uploaded_to_an_unlocked_module_is_in_the_next_deployment_base(world):
    world.unlock_module()
    world.upload("extra.bin", b"extra")
    assert world.filenames() == [["rootfs.swu", "extra.bin"]]


def test_a_deleted_artifact_is_gone_from_the_next_deployment_base(world):
    world.unlock_module()
    extra = world.upload("extra.bin", b"extra")
    assert world.filenames() == [["rootfs.swu", "extra.bin"]]
    world.admin.delete("%s/softwaremodules/%d/artifacts/%d" % (API, world.module.id, extra["id"]),
                       status=204)
    assert world.filenames() == [["rootfs.swu"]]


def test_an_artifact_replaced_under_the_same_name_shows_its_new_hashes(world):
    world.unlock_module()
    old = Artifact.get(Artifact.module == world.module.id)
    world.admin.delete("%s/softwaremodules/%d/artifacts/%d" % (API, world.module.id, old.id),
                       status=204)
    new = world.upload("rootfs.swu", b"rootfs 2, a different file")
    artifact = world.chunks()[0]["artifacts"][0]
    assert artifact["hashes"]["sha1"] == new["hashes"]["sha1"] != old.sha1
    assert artifact["size"] == len(b"rootfs 2, a different file")


def test_the_artifact_list_follows_an_upload(world):
    assert [a["filename"] for a in fresh(world.server, world.list_url())] == ["rootfs.swu"]
    world.unlock_module()
    world.upload("extra.bin", b"extra")
    assert [a["filename"] for a in fresh(world.server, world.list_url())] == [
        "rootfs.swu", "extra.bin"]


# --- module metadata -------------------------------------------------------------------------

def test_metadata_created_on_a_locked_module_is_in_the_next_deployment_base(world):
    assert world.metadata() is None
    world.admin.post_json("%s/softwaremodules/%d/metadata" % (API, world.module.id),
                          [{"key": "channel", "value": "beta", "targetVisible": True}],
                          status=201)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]


def test_a_changed_metadata_value_is_in_the_next_deployment_base(world):
    world.put_metadata("channel", value="beta", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]
    world.put_metadata("channel", value="stable")
    assert world.metadata() == [{"key": "channel", "value": "stable"}]


def test_turning_target_visible_off_and_on_hides_and_shows_the_entry(world):
    world.put_metadata("channel", value="beta", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]
    world.put_metadata("channel", targetVisible=False)
    assert world.metadata() is None
    world.put_metadata("channel", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]


def test_deleted_metadata_is_gone_from_the_next_deployment_base(world):
    world.put_metadata("channel", value="beta", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]
    world.admin.delete("%s/softwaremodules/%d/metadata/channel" % (API, world.module.id),
                       status=204)
    assert world.metadata() is None


# --- the modules of a set --------------------------------------------------------------------

def test_a_module_added_to_an_unlocked_assigned_set_is_a_chunk_of_the_next_deployment_base(
        world):
    world.unlock_set()
    world.admin.post_json("%s/distributionsets/%d/assignedSM" % (API, world.distribution_set.id),
                          [{"id": world.other.id}], status=204)
    assert [(c["part"], c["name"]) for c in world.chunks()] == [("os", "rootfs"),
                                                                ("bApp", "agent")]


def test_a_module_removed_from_an_unlocked_assigned_set_is_no_chunk_of_the_next_one(world):
    world.unlock_set()
    world.admin.post_json("%s/distributionsets/%d/assignedSM" % (API, world.distribution_set.id),
                          [{"id": world.other.id}], status=204)
    assert len(world.chunks()) == 2
    world.admin.delete("%s/distributionsets/%d/assignedSM/%d"
                       % (API, world.distribution_set.id, world.other.id), status=204)
    assert [c["name"] for c in world.chunks()] == ["rootfs"]


def test_a_module_soft_deleted_then_purged_from_its_set_leaves_with_its_artifacts(world):
    world.unlock_set()
    world.admin.delete("%s/softwaremodules/%d" % (API, world.module.id), status=204)
    assert world.filenames() == [["rootfs.swu"]]  # only marked deleted: still offered
    world.admin.delete("%s/distributionsets/%d/assignedSM/%d"
                       % (API, world.distribution_set.id, world.module.id), status=204)
    assert world.chunks() == []
    assert Artifact.select().where(Artifact.module == world.module.id).count() == 0


def test_a_soft_deleted_set_keeps_offering_its_software(world):
    world.admin.delete("%s/distributionsets/%d" % (API, world.distribution_set.id), status=204)
    world.admin.delete("%s/softwaremodules/%d" % (API, world.module.id), status=204)
    assert world.filenames() == [["rootfs.swu"]]


# --- the other resources that show chunks -----------------------------------------------------

def test_installed_base_and_the_installed_sets_artifact_list_follow_an_upload(world):
    world.server.http.post_json(world.url() + "/feedback", {"status": {
        "execution": "closed", "result": {"finished": "success"}}}, headers=token())
    installed = world.url("installedBase")
    assert [a["filename"] for a in fresh(world.server, installed)
            ["deployment"]["chunks"][0]["artifacts"]] == ["rootfs.swu"]
    assert len(fresh(world.server, world.list_url())) == 1
    world.unlock_module()
    world.upload("extra.bin", b"extra")
    assert [a["filename"] for a in fresh(world.server, installed)
            ["deployment"]["chunks"][0]["artifacts"]] == ["rootfs.swu", "extra.bin"]
    assert len(fresh(world.server, world.list_url())) == 2


def test_confirmation_base_follows_a_metadata_change(server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    world = World(server, "confirmationBase", "confirmation")
    assert world.metadata() is None
    world.put_metadata("channel", value="beta", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]


# --- what is cached, and for whom ------------------------------------------------------------

def test_a_set_cached_for_one_device_gets_the_links_of_the_next_device_and_host(world):
    server = world.server
    server.target("dev-2", "token-2")
    action = server.assign(world.distribution_set, "dev-2")
    href = server.http.get("%s/dev-2/deploymentBase/%d" % (DEVICE, action.id),
                           headers=dict(token("token-2"), Host="gateway.example:8443"),
                           status=200).json["deployment"]["chunks"][0]["artifacts"][0][
        "_links"]["download"]["href"]
    assert href == ("http://gateway.example:8443%s/dev-2/softwaremodules/%d/artifacts/"
                    "rootfs.swu" % (DEVICE, world.module.id))


def test_a_repeated_deployment_base_reads_no_software_table(world, caplog):
    """The target, then the action with its newest history entry and the software generation:
    the set's rows come from memory."""
    with caplog.at_level("DEBUG", logger="peewee"):
        world.server.http.get(world.url(), headers=token(), status=200)
    statements = [record.msg[0] for record in caplog.records if isinstance(record.msg, tuple)]
    assert len(statements) == 2
    assert '"software_generation"' in statements[1]
    assert not [sql for sql in statements
                if any('"%s"' % table in sql for table in SOFTWARE_TABLES)]


def test_the_cache_keeps_at_most_its_number_of_sets_pushing_out_the_oldest(world):
    cache = chunks.ChunkCache(max_sets=2)
    sets = [world.distribution_set] + [
        world.server.distribution_set([world.other], name="set-%d" % n) for n in range(2)]
    for distribution_set in sets:
        cache.chunks(distribution_set.id)
    assert sorted(cache._sets) == sorted(s.id for s in sets[1:])


def test_every_change_of_a_software_table_bumps_the_generation(world):
    """The triggers, table by table: an insert, an update and a delete each add one."""
    audit = "1, 'x', 1, 'x'"
    statements = {
        "software_module": (
            'INSERT INTO "software_module" ("created_at", "created_by", "last_modified_at", '
            '"last_modified_by", "module_type_id", "name", "version", "encrypted", "locked", '
            '"deleted") VALUES (%s, 1, \'n\', \'v\', FALSE, FALSE, FALSE)' % audit,
            'UPDATE "software_module" SET "vendor" = \'v\' WHERE "name" = \'n\'',
            'DELETE FROM "software_module" WHERE "name" = \'n\''),
        "software_module_type": (
            'INSERT INTO "software_module_type" ("created_at", "created_by", '
            '"last_modified_at", "last_modified_by", "key", "name", "max_assignments", '
            '"min_artifacts", "deleted") VALUES (%s, \'k\', \'K\', 1, 0, FALSE)' % audit,
            'UPDATE "software_module_type" SET "key" = \'k2\' WHERE "key" = \'k\'',
            'DELETE FROM "software_module_type" WHERE "key" = \'k2\''),
        "artifact": (
            'INSERT INTO "artifact" ("created_at", "created_by", "last_modified_at", '
            '"last_modified_by", "module_id", "filename", "size", "sha1", "md5", "sha256") '
            'VALUES (%s, %d, \'f2\', 1, \'a\', \'b\', \'c\')' % (audit, world.module.id),
            'UPDATE "artifact" SET "size" = 2 WHERE "filename" = \'f2\'',
            'DELETE FROM "artifact" WHERE "filename" = \'f2\''),
        "software_module_metadata": (
            'INSERT INTO "software_module_metadata" ("module_id", "key", "value", '
            '"target_visible") VALUES (%d, \'k\', \'v\', TRUE)' % world.module.id,
            'UPDATE "software_module_metadata" SET "target_visible" = FALSE',
            'DELETE FROM "software_module_metadata"'),
        "distribution_set_module": (
            'INSERT INTO "distribution_set_module" ("distribution_set_id", "module_id") '
            'VALUES (%d, %d)' % (world.distribution_set.id, world.other.id),
            'UPDATE "distribution_set_module" SET "module_id" = "module_id"',
            'DELETE FROM "distribution_set_module" WHERE "module_id" = %d' % world.other.id),
    }
    assert sorted(statements) == sorted(chunks.SOURCE_TABLES)
    for table, steps in statements.items():
        for sql in steps:
            before = chunks.generation()
            with write():
                storage.database.execute_sql(sql)
            assert chunks.generation() > before, (table, sql)


# --- other apps, other processes, other databases --------------------------------------------

def test_two_apps_on_one_data_directory_each_see_the_others_changes(world):
    second = Server(world.server.config)
    second_admin = operator(second.wsgi)
    world.deployment()
    second.http.get(world.url(), headers=token(), status=200)
    second_admin.put_json("%s/softwaremodules/%d" % (API, world.module.id), {"locked": False},
                          status=200)
    second_admin.post("%s/softwaremodules/%d/artifacts" % (API, world.module.id),
                      upload_files=[("file", "extra.bin", b"extra")], status=201)
    assert world.filenames() == [["rootfs.swu", "extra.bin"]]
    world.put_metadata("channel", value="beta", targetVisible=True)
    document = second.http.get(world.url(), headers=token(), status=200).json
    assert document["deployment"]["chunks"][0]["metadata"] == [
        {"key": "channel", "value": "beta"}]


@database.sqlite_only("backup and restore copy the SQLite file")
def test_a_restored_backup_changed_on_its_own_shows_its_own_software(world, tmp_path):
    """The backup and the live directory both reach the next generation, with other files."""
    server = world.server
    backups.backup(server.config["server", "data_dir"], str(tmp_path / "backup"),
                   lambda d: BlobStore(os.path.join(str(d), "artifacts")))
    world.unlock_module()
    world.upload("live.bin", b"live")
    assert world.filenames() == [["rootfs.swu", "live.bin"]]
    restored_dir = tmp_path / "restored"
    backups.restore(str(tmp_path / "backup"), str(restored_dir),
                    lambda d: BlobStore(os.path.join(str(d), "artifacts")))
    restored = Server(ddi_lite.load_config(environ={}, overrides={
        "server.data_dir": str(restored_dir), "server.trusted_proxies": ""}))
    admin = operator(restored.wsgi)
    admin.put_json("%s/softwaremodules/%d" % (API, world.module.id), {"locked": False},
                   status=200)
    admin.post("%s/softwaremodules/%d/artifacts" % (API, world.module.id),
               upload_files=[("file", "restored.bin", b"restored")], status=201)
    assert [[a["filename"] for a in c["artifacts"]] for c in
            fresh(restored, world.url())["deployment"]["chunks"]] == [
        ["rootfs.swu", "restored.bin"]]


@database.sqlite_only("a database file from before the generation; PostgreSQL starts at schema 5")
def test_a_database_from_before_the_generation_gets_it_when_opened(world):
    config = world.server.config
    storage.close_store()
    path = os.path.join(config["server", "data_dir"], storage.DATABASE_FILE)
    with sqlite3.connect(path) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            db.execute('DROP TRIGGER "%s"' % name)
        db.execute('DROP TABLE "software_generation"')
        db.execute("PRAGMA user_version = 1")
    server = Server(config)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == storage.SCHEMA_VERSION
    world.server, world.admin = server, operator(server.wsgi)
    world.deployment()
    world.put_metadata("channel", value="beta", targetVisible=True)
    assert world.metadata() == [{"key": "channel", "value": "beta"}]


def test_a_server_process_sees_what_another_process_writes_and_the_other_way(tmp_path):
    """A real `ddi-lite serve` and this process's app on one data directory."""
    data_dir = tmp_path / "live" / "data"
    config = ddi_lite.load_config(environ={}, overrides={
        "server.data_dir": str(data_dir), "server.trusted_proxies": ""})
    here = Server(config)
    here.configure(**{"authentication.targettoken.enabled": True})
    here.target(CID, "token-1")
    module = here.module(name="rootfs", files={"rootfs.swu": b"rootfs 1"})
    action = here.assign(here.distribution_set([module]), CID)
    url = "%s/%s/deploymentBase/%d" % (DEVICE, CID, action.id)
    server = DdiLite(tmp_path / "live")
    try:
        def served():
            request = urllib.request.Request(server.url + url, headers=token())
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["deployment"]["chunks"][0]
        assert "metadata" not in served()
        software.put_module_metadata(module.id, "channel",
                                     {"value": "beta", "targetVisible": True}, "admin")
        assert served()["metadata"] == [{"key": "channel", "value": "beta"}]

        here.http.get(url, headers=token(), status=200)
        api(server.url, "PUT", "/softwaremodules/%d" % module.id, {"locked": False})
        blob = here.blobs.put(io.BytesIO(b"extra"))
        catalog.add_artifact(module, "extra.bin", blob, now_ms(), "admin")
        assert [a["filename"] for a in served()["artifacts"]] == ["rootfs.swu", "extra.bin"]
        api(server.url, "PUT", "/softwaremodules/%d/metadata/channel" % module.id,
            {"targetVisible": False})
        chunk = here.http.get(url, headers=token(), status=200).json["deployment"]["chunks"][0]
        assert "metadata" not in chunk
    finally:
        server.stop()
        storage.close_store()
