"""A database written by an older ddi-lite opens, is upgraded in place, and works.

tests/schema_v1.sql is schema 1 exactly as ddi-lite created it before the software generation
(schema 2), tags and target types (schema 3), target filters (schema 4) and rollouts (schema
5); each test builds
such a database (with a target, a set and an action in it), opens it with today's code, which
takes it through every migration step, and checks both what the migrations made of it and that
the server serves it: the Management API, including the new tables, and a device's poll, which
reads the targets table through a hand-written SELECT of all its columns.
"""

import base64
import os
import pathlib
import sqlite3

import pytest

import database
import storage
from conftest import DEVICE, Server, token

pytestmark = database.sqlite_only("databases an older ddi-lite wrote are SQLite files; "
                                  "PostgreSQL support starts at the current schema")

SCHEMA_V1 = (pathlib.Path(__file__).parent / "schema_v1.sql").read_text(encoding="utf-8")
OPERATOR = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode("ascii")}
API = "/rest/v1"
NOW = 1700000000000


def old_database(data_dir):
    """A schema 1 data directory: target dev-1 (token token-1) running set 1 of an os
    module, as action 100."""
    os.makedirs(data_dir)
    db = sqlite3.connect(os.path.join(data_dir, storage.DATABASE_FILE))
    db.executescript(SCHEMA_V1)
    audit = (NOW, "admin", NOW, "admin")
    db.execute('INSERT INTO software_module_type (created_at, created_by, last_modified_at, '
               'last_modified_by, key, name, max_assignments, min_artifacts, deleted) '
               "VALUES (?, ?, ?, ?, 'os', 'OS', 1, 0, 0)", audit)
    db.execute('INSERT INTO distribution_set_type (created_at, created_by, last_modified_at, '
               'last_modified_by, key, name, deleted) VALUES (?, ?, ?, ?, \'os\', \'OS only\', 0)',
               audit)
    db.execute("INSERT INTO distribution_set_type_module VALUES (1, 1, 1)")
    db.execute('INSERT INTO software_module (created_at, created_by, last_modified_at, '
               'last_modified_by, module_type_id, name, version, encrypted, locked, deleted) '
               "VALUES (?, ?, ?, ?, 1, 'fw', '1.0', 0, 1, 0)", audit)
    db.execute('INSERT INTO distribution_set (created_at, created_by, last_modified_at, '
               'last_modified_by, set_type_id, name, version, required_migration_step, locked, '
               "deleted, valid) VALUES (?, ?, ?, ?, 1, 'fw-set', '1.0', 0, 1, 0, 1)", audit)
    db.execute("INSERT INTO distribution_set_module VALUES (1, 1)")
    db.execute('INSERT INTO target (created_at, created_by, last_modified_at, last_modified_by, '
               'controller_id, name, security_token, update_status, assigned_ds_id, '
               'request_attributes, attributes, auto_confirm_active) '
               "VALUES (?, ?, ?, ?, 'dev-1', 'dev-1', 'token-1', 'PENDING', 1, 0, '{}', 0)",
               audit)
    db.execute('INSERT INTO action (created_at, created_by, last_modified_at, last_modified_by, '
               'target_id, distribution_set_id, action_type, status, active, revision, '
               "initiated_by) VALUES (?, ?, ?, ?, 1, 1, 'FORCED', 'RUNNING', 1, 0, 'admin')",
               audit)
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()


def config_of(data_dir):
    import ddi_lite
    return ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(data_dir), "server.trusted_proxies": ""})


@pytest.fixture
def migrated(tmp_path):
    old_database(str(tmp_path / "data"))
    server = Server(config_of(tmp_path / "data"))
    server.configure(**{"authentication.targettoken.enabled": True})
    yield server
    storage.close_store()


def schema(path):
    """Every table's columns (name, type, not null, key), foreign keys and indexes."""
    db = sqlite3.connect(path)
    tables = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    described = {}
    for table in tables:
        described[table] = (
            sorted((row[1], row[2], row[3], row[5])
                   for row in db.execute('PRAGMA table_info("%s")' % table)),
            sorted((row[2], row[3], row[4], row[6])
                   for row in db.execute('PRAGMA foreign_key_list("%s")' % table)),
            sorted((row[1], row[2]) for row in db.execute('PRAGMA index_list("%s")' % table)))
    version = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return version, described


def test_the_migrated_schema_is_the_schema_of_a_new_database(migrated, tmp_path):
    storage.close_store()
    old = schema(str(tmp_path / "data" / storage.DATABASE_FILE))
    storage.open_store(str(tmp_path / "new"), NOW)
    storage.close_store()
    new = schema(str(tmp_path / "new" / storage.DATABASE_FILE))
    assert old[0] == new[0] == storage.SCHEMA_VERSION == 5
    assert sorted(old[1]) == sorted(new[1])
    for table in new[1]:
        assert old[1][table] == new[1][table], table


def test_the_old_data_is_served_untyped_and_untagged(migrated):
    http = migrated.http
    target = http.get(API + "/targets/dev-1", headers=OPERATOR).json
    assert (target["updateStatus"], target["securityToken"]) == ("pending", "token-1")
    assert "targetType" not in target
    assert http.get(API + "/targets/dev-1/tags", headers=OPERATOR).json == []
    action = http.get(API + "/targets/dev-1/actions/100", headers=OPERATOR).json
    assert action["status"] == "running"
    # The device still polls and is offered its deployment.
    poll = http.get(DEVICE + "/dev-1", headers=token()).json
    assert "deploymentBase" in poll["_links"]


def test_tags_and_target_types_work_on_a_migrated_database(migrated):
    http = migrated.http
    type_id = http.post_json(API + "/targettypes", [
        {"name": "gateway", "compatibledistributionsettypes": [{"id": 1}]}],
        headers=OPERATOR).json[0]["id"]
    http.post_json(API + "/targets/dev-1/targettype", {"id": type_id}, headers=OPERATOR,
                   status=204)
    tag_id = http.post_json(API + "/targettags", [{"name": "line-3"}],
                            headers=OPERATOR).json[0]["id"]
    http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1"], headers=OPERATOR,
                   status=204)
    found = http.get(API + "/targets", {"q": "tag==line-3;type.name==gateway"},
                     headers=OPERATOR).json["content"]
    assert [t["controllerId"] for t in found] == ["dev-1"]
    assert found[0]["targetTypeName"] == "gateway"
    # The poll reads the new column too.
    assert "deploymentBase" in http.get(DEVICE + "/dev-1", headers=token()).json["_links"]


def test_target_filters_auto_assign_on_a_migrated_database(migrated):
    """The target that was there before gets a change number; the set it runs already is not
    assigned to it again, another one is."""
    from storage import autoassign
    http = migrated.http
    created = http.post_json(API + "/targetfilters", {"name": "all", "query": "name==dev-*"},
                             headers=OPERATOR).json
    http.post_json(API + "/targetfilters/%d/autoAssignDS" % created["id"], {"id": 1},
                   headers=OPERATOR)
    assert autoassign.run(NOW) == 0  # dev-1 has action 100 for set 1
    module = http.post_json(API + "/softwaremodules", [
        {"name": "fw", "version": "2.0", "type": "os"}], headers=OPERATOR).json[0]
    newer = http.post_json(API + "/distributionsets", [
        {"name": "fw-set", "version": "2.0", "type": "os", "modules": [{"id": module["id"]}]}],
        headers=OPERATOR).json[0]
    http.post_json(API + "/targetfilters/%d/autoAssignDS" % created["id"], {"id": newer["id"]},
                   headers=OPERATOR)
    assert autoassign.run(NOW) == 1
    assert http.get(API + "/targets/dev-1/assignedDS", headers=OPERATOR).json["version"] == \
        "2.0"


def test_rollouts_work_on_a_migrated_database(migrated):
    """The action that was there before belongs to no rollout; a rollout's group start
    supersedes it as an assignment would."""
    from storage import rollout_engine
    http = migrated.http
    action = http.get(API + "/targets/dev-1/actions/100", headers=OPERATOR).json
    assert "rollout" not in action
    assert http.get(API + "/actions", {"q": "rollout.name==*"}, headers=OPERATOR).json[
        "total"] == 0
    module = http.post_json(API + "/softwaremodules", [
        {"name": "fw", "version": "3.0", "type": "os"}], headers=OPERATOR).json[0]
    newer = http.post_json(API + "/distributionsets", [
        {"name": "fw-set", "version": "3.0", "type": "os", "modules": [{"id": module["id"]}]}],
        headers=OPERATOR).json[0]
    created = http.post_json(API + "/rollouts", {
        "name": "wave", "distributionSetId": newer["id"], "targetFilterQuery": "name==dev-*"},
        headers=OPERATOR, status=201).json
    http.post(API + "/rollouts/%d/start" % created["id"], headers=OPERATOR, status=204)
    rollout_engine.evaluate(NOW)
    assert http.get(API + "/targets/dev-1/actions/100", headers=OPERATOR).json["status"] == \
        "canceling"
    started = http.get(API + "/actions", {"q": "rollout.id==%d" % created["id"]},
                       headers=OPERATOR).json["content"]
    assert [a["status"] for a in started] == ["running"]


def test_a_migrated_database_opens_again_without_migrating_twice(migrated, tmp_path):
    storage.close_store()
    server = Server(config_of(tmp_path / "data"))
    assert server.http.get(API + "/targets/dev-1", headers=OPERATOR).json["controllerId"] == \
        "dev-1"


def test_the_migration_keeps_what_it_finds_in_place(migrated, tmp_path):
    """Opening a database whose version says 2 but which has tags and types already (as a
    test that rewinds user_version leaves it) runs the step again without failing."""
    http = migrated.http
    tag_id = http.post_json(API + "/targettags", [{"name": "kept"}],
                            headers=OPERATOR).json[0]["id"]
    http.post_json(API + "/targettags/%d/assigned" % tag_id, ["dev-1"], headers=OPERATOR)
    storage.close_store()
    path = str(tmp_path / "data" / storage.DATABASE_FILE)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 2")
    server = Server(config_of(tmp_path / "data"))
    found = server.http.get(API + "/targets", {"q": "tag==kept"}, headers=OPERATOR).json
    assert [t["controllerId"] for t in found["content"]] == ["dev-1"]
    assert schema(path)[0] == storage.SCHEMA_VERSION
