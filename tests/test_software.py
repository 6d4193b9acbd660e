"""Storage-level rules of the software catalogue (storage/software.py): all-or-nothing creates,
409s, soft and hard deletes with the blobs they free, locking, artifact filenames, and
assigning sets to targets. HTTP shapes are tested elsewhere."""

import hashlib
import io
import os

import pytest

import storage
from artifacts import BlobStore
from storage import catalog, software, tenant
from storage.ddi import now_ms
from storage.errors import (BinaryDeleted, BodyNotReadable, ConstraintViolation, Deleted,
                            EncryptionNotSupported, EntityAlreadyExists, EntityNotFound,
                            IncompleteDistributionSet, InvalidMaintenanceSchedule, Locked,
                            ModulesUnsupported, MultiAssignment, QuotaExceeded)
from storage.models import (Action, Artifact, DistributionSet, DistributionSetModule,
                            DistributionSetType, SoftwareModule, Target, TenantConfig)

BASE = "http://localhost:8080"


@pytest.fixture(autouse=True)
def store(tmp_path):
    storage.open_store(str(tmp_path), now_ms())
    yield
    storage.close_store()


@pytest.fixture(autouse=True)
def blobs(tmp_path):
    global BLOBS
    BLOBS = BlobStore(str(tmp_path / "artifacts"))
    yield BLOBS


def sha1(content):
    return hashlib.sha1(content).hexdigest()


def stored_blobs():
    return sorted(BLOBS.stored())


def module(name="fw", version="1.0", type_key="os"):
    return software.create_modules(
        BASE, [{"name": name, "version": version, "type": type_key}], "admin")[0]["id"]


def upload(module_id, filename, content=b"payload"):
    received = BLOBS.receive(io.BytesIO(content))
    return software.add_uploaded_artifact(BASE, module_id, filename, received, BLOBS, "admin")


def distribution_set(module_ids, name="set", version="1.0", type_key="os"):
    body = {"name": name, "version": version, "modules": [{"id": m} for m in module_ids]}
    if type_key is not None:
        body["type"] = type_key
    return software.create_sets(BASE, [body], "admin")[0]["id"]


def target(controller_id):
    return catalog.create_target(controller_id, now_ms(), "admin")


def reload_target(controller_id):
    return Target.get(Target.controller_id == controller_id)


# --- creating modules and sets -------------------------------------------------------------

def test_module_create_is_all_or_nothing_on_duplicate_in_request():
    item = {"name": "fw", "version": "1.0", "type": "os"}
    with pytest.raises(EntityAlreadyExists):
        software.create_modules(BASE, [{"name": "other", "version": "1", "type": "os"},
                                       item, dict(item)], "admin")
    assert SoftwareModule.select().count() == 0


def test_module_create_conflicts_with_stored_module_and_unknown_type_creates_nothing():
    module("fw", "1.0")
    with pytest.raises(EntityAlreadyExists):
        software.create_modules(BASE, [{"name": "fw", "version": "1.0", "type": "os"}], "admin")
    with pytest.raises(EntityNotFound):
        software.create_modules(BASE, [{"name": "a", "version": "1", "type": "os"},
                                       {"name": "b", "version": "1", "type": "runtime"}],
                                "admin")
    assert [m.name for m in SoftwareModule.select()] == ["fw"]
    # Same name and version under another type is a different module.
    documents = software.create_modules(
        BASE, [{"name": "fw", "version": "1.0", "type": " application "}], "admin")
    assert documents[0]["type"] == "application"


def test_module_create_needs_a_type_and_refuses_encryption():
    with pytest.raises(ConstraintViolation):
        software.create_modules(BASE, [{"name": "fw", "version": "1.0"}], "admin")
    with pytest.raises(EncryptionNotSupported):
        software.create_modules(
            BASE, [{"name": "fw", "version": "1.0", "type": "os", "encrypted": "true"}], "admin")
    with pytest.raises(BodyNotReadable):
        software.create_modules(BASE, {"name": "fw", "version": "1.0", "type": "os"}, "admin")
    assert SoftwareModule.select().count() == 0


def test_set_create_is_all_or_nothing():
    os_module = module()
    good = {"name": "s", "version": "1", "type": "os", "modules": [{"id": os_module}]}
    with pytest.raises(EntityNotFound):
        software.create_sets(BASE, [good, {"name": "t", "version": "1",
                                           "modules": [{"id": 9999}]}], "admin")
    with pytest.raises(EntityAlreadyExists):
        software.create_sets(BASE, [good, dict(good)], "admin")
    assert DistributionSet.select().count() == 0
    software.create_sets(BASE, [good], "admin")
    with pytest.raises(EntityAlreadyExists):
        software.create_sets(BASE, [good], "admin")
    assert DistributionSet.select().count() == 1


def test_set_create_refuses_module_type_outside_the_set_type():
    app_module = module("app", type_key="application")
    with pytest.raises(ModulesUnsupported):
        distribution_set([app_module], type_key="os")
    assert DistributionSet.select().count() == 0


def test_set_create_extra_os_module_replaces_the_earlier_one_and_legacy_properties_merge():
    first, second = module("a"), module("b")
    app = module("app", type_key="application")
    document = software.create_sets(BASE, [{
        "name": "s", "version": "1", "type": "os_app",
        "modules": [{"id": first}, {"id": second}], "application": {"id": str(app)}}],
        "admin")[0]
    assert sorted(m["id"] for m in document["modules"]) == [second, app]
    assert document["complete"] is True


def test_default_set_type_is_os_app_or_the_tenant_setting():
    assert software.get_set(BASE, distribution_set([module()], type_key=None))["type"] == "os_app"
    app_type = DistributionSetType.get(DistributionSetType.key == "app")
    TenantConfig.create(key="default.ds.type", value=app_type.id, created_at=0,
                        created_by="admin", last_modified_at=0, last_modified_by="admin")
    tenant.invalidate()
    try:
        set_id = distribution_set([module("app", type_key="application")], name="second",
                                  type_key=None)
    finally:
        TenantConfig.delete().execute()
        tenant.invalidate()
    assert software.get_set(BASE, set_id)["type"] == "app"


def test_incomplete_set_can_be_created_but_not_assigned():
    set_id = distribution_set([], type_key="os")
    assert software.get_set(BASE, set_id)["complete"] is False
    target("dev-1")
    with pytest.raises(IncompleteDistributionSet):
        software.assign_targets(BASE, set_id, [{"id": "dev-1"}], False, "admin")
    assert Action.select().count() == 0


# --- deleting and the blobs it frees -------------------------------------------------------

def test_hard_delete_returns_only_blobs_nobody_references():
    one, two = module("one"), module("two")
    upload(one, "shared.bin", b"shared")
    upload(one, "own.bin", b"own")
    upload(two, "shared-too.bin", b"shared")
    software.delete_module(one, BLOBS)
    assert SoftwareModule.get_or_none(SoftwareModule.id == one) is None
    assert stored_blobs() == [sha1(b"shared")]
    software.delete_module(two, BLOBS)
    assert stored_blobs() == []
    with pytest.raises(EntityNotFound):
        software.delete_module(two, BLOBS)


def test_module_in_a_set_is_soft_deleted_and_keeps_its_blob():
    used, unused = module("used"), module("unused")
    upload(used, "a.bin", b"same bytes")
    upload(unused, "b.bin", b"same bytes")
    distribution_set([used])
    software.delete_module(used, BLOBS)
    assert software.get_module(BASE, used)["deleted"] is True
    software.delete_module(used, BLOBS)  # a repeated delete succeeds
    # The last live reference goes, but the soft-deleted module still holds the blob.
    software.delete_module(unused, BLOBS)
    assert stored_blobs() == [sha1(b"same bytes")]
    artifact_id = Artifact.get(Artifact.module == used).id
    with pytest.raises(BinaryDeleted):
        software.artifact_for_download(used, artifact_id)
    with pytest.raises(Deleted):
        software.update_module(BASE, used, {"description": "x"}, "admin")
    with pytest.raises(Deleted):
        software.check_upload(used)


def test_repeated_delete_of_soft_deleted_module_succeeds_even_if_its_set_got_locked():
    module_id = module()
    set_id = distribution_set([module_id])
    software.delete_module(module_id, BLOBS)
    software.update_set(BASE, set_id, {"locked": True}, "admin")
    software.delete_module(module_id, BLOBS)
    assert software.get_module(BASE, module_id)["deleted"] is True


def test_module_deleted_before_its_set_is_freed_with_the_set():
    module_id = module()
    upload(module_id, "fw.bin", b"image")
    set_id = distribution_set([module_id])
    software.delete_module(module_id, BLOBS)
    assert stored_blobs() == [sha1(b"image")]
    software.delete_set(set_id, BLOBS)
    assert SoftwareModule.get_or_none(SoftwareModule.id == module_id) is None
    assert stored_blobs() == []


def test_module_deleted_first_is_freed_when_removed_from_its_set():
    module_id = module()
    upload(module_id, "fw.bin", b"image")
    set_id = distribution_set([module_id])
    software.delete_module(module_id, BLOBS)
    software.remove_set_module(set_id, module_id, BLOBS)
    assert stored_blobs() == []


def test_module_deleted_first_stays_while_another_set_holds_it():
    module_id = module()
    upload(module_id, "fw.bin", b"image")
    first = distribution_set([module_id], name="first")
    distribution_set([module_id], name="second")
    software.delete_module(module_id, BLOBS)
    software.delete_set(first, BLOBS)
    assert software.get_module(BASE, module_id)["deleted"] is True
    assert stored_blobs() == [sha1(b"image")]


def test_failed_upload_record_keeps_no_bytes():
    module_id = module()
    upload(module_id, "fw.bin", b"first")
    with pytest.raises(EntityAlreadyExists):
        upload(module_id, "fw.bin", b"second")
    assert stored_blobs() == [sha1(b"first")]
    assert os.listdir(os.path.join(BLOBS.root, "tmp")) == []


def test_delete_artifact_returns_sha1_only_when_unreferenced():
    one, two = module("one"), module("two")
    first = upload(one, "a.bin", b"same")
    upload(two, "b.bin", b"same")
    software.delete_artifact(one, first["id"], BLOBS)
    assert stored_blobs() == [sha1(b"same")]
    second = Artifact.get(Artifact.module == two)
    with pytest.raises(EntityNotFound):
        software.delete_artifact(one, second.id, BLOBS)  # not in that module
    software.delete_artifact(two, second.id, BLOBS)
    assert stored_blobs() == []


def test_set_is_soft_deleted_once_an_action_refers_to_it_else_hard_deleted():
    unused = distribution_set([module("a")], name="unused")
    software.delete_set(unused, BLOBS)
    assert DistributionSet.get_or_none(DistributionSet.id == unused) is None
    used = distribution_set([module("b")], name="used")
    target("dev-1")
    software.assign_targets(BASE, used, [{"id": "dev-1"}], False, "admin")
    software.delete_set(used, BLOBS)
    assert software.get_set(BASE, used)["deleted"] is True
    software.delete_set(used, BLOBS)  # repeated delete succeeds
    with pytest.raises(Deleted):
        software.assign_targets(BASE, used, [{"id": "dev-1"}], False, "admin")
    assert software.list_sets(BASE)["total"] == 0
    assert software.list_sets(BASE, deleted_mode="ONLY_SOFT_DELETED")["total"] == 1


# --- locking -------------------------------------------------------------------------------

def test_assignment_locks_set_and_modules_with_423_consequences():
    module_id = module()
    artifact = upload(module_id, "a.bin")
    set_id = distribution_set([module_id])
    target("dev-1")
    software.assign_targets(BASE, set_id, [{"id": "dev-1"}], False, "admin")
    assert software.get_set(BASE, set_id)["locked"] is True
    assert software.get_module(BASE, module_id)["locked"] is True
    with pytest.raises(Locked):
        software.check_upload(module_id)
    with pytest.raises(Locked):
        upload(module_id, "b.bin")
    with pytest.raises(Locked):
        software.delete_artifact(module_id, artifact["id"], BLOBS)
    with pytest.raises(Locked):
        software.delete_module(module_id, BLOBS)
    with pytest.raises(Locked):
        software.add_set_modules(set_id, [{"id": module("other")}], BLOBS, "admin")
    with pytest.raises(Locked):
        software.remove_set_module(set_id, module_id, BLOBS)
    with pytest.raises(Locked):
        software.update_set(BASE, set_id, {"requiredMigrationStep": True}, "admin")
    # A locked set can be deleted (softly); then its module can be deleted (softly) too.
    software.delete_set(set_id, BLOBS)
    software.delete_module(module_id, BLOBS)
    assert software.get_module(BASE, module_id)["deleted"] is True


def test_no_lock_when_implicit_locking_is_off_and_unlock_by_update():
    tenant.store({"implicit.lock.enabled": False}, "admin")
    module_id = module()
    set_id = distribution_set([module_id])
    target("dev-1")
    software.assign_targets(BASE, set_id, [{"id": "dev-1"}], False, "admin")
    assert software.get_set(BASE, set_id)["locked"] is False
    software.update_set(BASE, set_id, {"locked": True}, "admin")
    assert software.get_module(BASE, module_id)["locked"] is True
    document = software.update_set(BASE, set_id, {"locked": "false",
                                                  "requiredMigrationStep": True}, "admin")
    assert document["locked"] is False and document["requiredMigrationStep"] is True


def test_set_update_name_collision_is_409():
    distribution_set([module("a")], name="one")
    second = distribution_set([module("b")], name="two")
    with pytest.raises(EntityAlreadyExists):
        software.update_set(BASE, second, {"name": "one"}, "admin")
    assert software.get_set(BASE, second)["name"] == "two"


# --- artifacts -----------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [
    ("bundle.raucb_0", "bundle.raucb_0"),
    ("/tmp/upload/bundle.raucb", "bundle.raucb"),
    ("C:\\Users\\me\\image.swu", "image.swu"),
    ("mixed/dir\\name with space.bin", "name with space.bin"),
])
def test_filename_keeps_last_path_component(given, stored):
    assert upload(module(), given)["providedFilename"] == stored


@pytest.mark.parametrize("given", ["", "   ", ".", "..", "a/..", "dir/", "dir\\",
                                   "bad\x00name", "line\nbreak", "del\x7f", None])
def test_unusable_filenames_are_refused(given):
    module_id = module()
    with pytest.raises(ConstraintViolation):
        upload(module_id, given)
    assert Artifact.select().count() == 0


def test_duplicate_filename_after_sanitising_is_409():
    module_id = module()
    upload(module_id, "dir/a.bin")
    with pytest.raises(EntityAlreadyExists):
        upload(module_id, "other\\a.bin", b"other bytes")
    assert Artifact.select().count() == 1


def test_artifact_quota(monkeypatch):
    monkeypatch.setattr(software, "MAX_ARTIFACTS_PER_MODULE", 2)
    module_id = module()
    upload(module_id, "a")
    upload(module_id, "b")
    with pytest.raises(QuotaExceeded):
        software.check_upload(module_id)
    with pytest.raises(QuotaExceeded):
        upload(module_id, "c")


# --- metadata --------------------------------------------------------------------------------

def test_module_metadata_upserts_and_has_a_quota(monkeypatch):
    module_id = module()
    software.create_module_metadata(module_id, [{"key": "k", "value": "v1"}], "admin")
    software.create_module_metadata(module_id, [{"key": "k", "value": "v2",
                                                 "targetVisible": True}], "admin")
    assert software.get_module_metadata(module_id, "k") == {
        "key": "k", "value": "v2", "targetVisible": True}
    software.put_module_metadata(module_id, "k", {"targetVisible": False}, "admin")
    assert software.get_module_metadata(module_id, "k")["value"] == "v2"
    monkeypatch.setattr(software, "MAX_METADATA_ENTRIES", 2)
    with pytest.raises(QuotaExceeded):
        software.create_module_metadata(module_id, [{"key": "x"}, {"key": "y"}], "admin")
    assert software.list_module_metadata(module_id)["total"] == 1
    software.delete_module_metadata(module_id, "k")
    with pytest.raises(EntityNotFound):
        software.get_module_metadata(module_id, "k")


def test_set_metadata_has_no_target_visible_flag():
    set_id = distribution_set([module()])
    software.put_set_metadata(set_id, "k", {"value": "v"}, "admin")
    assert software.list_set_metadata(set_id)["content"] == [{"key": "k", "value": "v"}]
    with pytest.raises(EntityNotFound):
        software.delete_set_metadata(set_id, "missing")


# --- assignment ------------------------------------------------------------------------------

def test_assignment_counts_assigned_already_assigned_and_drops_unknown_targets():
    set_id = distribution_set([module()])
    target("dev-1")
    target("dev:2")
    first = software.assign_targets(BASE, set_id, [{"id": "dev-1"}], False, "admin")
    assert (first["assigned"], first["alreadyAssigned"], first["total"]) == (1, 0, 1)
    result = software.assign_targets(
        BASE, set_id, [{"id": "nobody"}, {"id": "dev-1"}, {"id": "dev:2", "type": "soft"}],
        False, "admin")
    assert (result["assigned"], result["alreadyAssigned"], result["total"]) == (1, 1, 2)
    action = Action.get(Action.target == reload_target("dev:2"))
    assert action.action_type == "SOFT"
    assert result["assignedActions"] == [{"id": action.id, "_links": {"self": {
        "href": BASE + "/rest/v1/targets/dev:2/actions/%d" % action.id}}}]
    assert reload_target("dev:2").update_status == "PENDING"


def test_same_target_twice_is_a_multi_assignment_and_assigns_nothing():
    set_id = distribution_set([module()])
    target("dev-1")
    target("dev-2")
    with pytest.raises(MultiAssignment):
        software.assign_targets(BASE, set_id, [{"id": "dev-2"}, {"id": "dev-1"},
                                               {"id": "dev-1"}], False, "admin")
    assert Action.select().count() == 0
    assert software.get_set(BASE, set_id)["locked"] is False


def test_request_item_validation():
    set_id = distribution_set([module()])
    target("dev-1")
    with pytest.raises(BodyNotReadable):
        software.assign_targets(BASE, set_id, [{"id": "dev-1", "type": "later"}], False, "a")
    with pytest.raises(ConstraintViolation):
        software.assign_targets(BASE, set_id, [{"id": "dev-1", "weight": 1001}], False, "a")
    with pytest.raises(ConstraintViolation):
        software.assign_targets(BASE, set_id, [{"type": "soft"}], False, "a")
    result = software.assign_targets(
        BASE, set_id, [{"id": "dev-1", "type": "timeforced", "forcetime": "123",
                        "weight": "0"}], False, "a")
    action = Action.get_by_id(result["assignedActions"][0]["id"])
    assert (action.action_type, action.forced_time, action.weight) == ("TIMEFORCED", 123, 0)


@pytest.mark.parametrize("window", [
    {"schedule": "0 0 12 ? * *", "duration": "00:10:00"},
    {"schedule": "0 0 12 ? * *", "timezone": "+00:00"},
    {"schedule": "not a cron", "duration": "00:10:00", "timezone": "+00:00"},
    {"schedule": "0 0 12 1 1 ? 2001", "duration": "00:10:00", "timezone": "+00:00"},
    {"schedule": "0 0 12 ? * *", "duration": "00:00:00", "timezone": "+00:00"},
    {"schedule": "0 0 12 ? * *", "duration": "00:10:00", "timezone": "Mars/Base"},
])
def test_invalid_maintenance_windows_are_refused(window):
    set_id = distribution_set([module()])
    target("dev-1")
    with pytest.raises(InvalidMaintenanceSchedule):
        software.assign_targets(BASE, set_id, [{"id": "dev-1", "maintenanceWindow": window}],
                                False, "admin")
    assert Action.select().count() == 0


def test_valid_maintenance_window_is_stored():
    set_id = distribution_set([module()])
    target("dev-1")
    window = {"schedule": "0 0 12 ? * *", "duration": "00:10:00", "timezone": "+02:00"}
    result = software.assign_targets(BASE, set_id, [{"id": "dev-1", "maintenanceWindow": window}],
                                     False, "admin")
    action = Action.get_by_id(result["assignedActions"][0]["id"])
    assert (action.maintenance_schedule, action.maintenance_duration,
            action.maintenance_timezone) == ("0 0 12 ? * *", "00:10:00", "+02:00")


def test_offline_assignment_records_installation_and_skips_pending_targets():
    online_set = distribution_set([module("a")], name="online")
    offline_set = distribution_set([module("b")], name="offline")
    target("busy")
    target("idle")
    software.assign_targets(BASE, online_set, [{"id": "busy"}], False, "admin")
    result = software.assign_targets(
        BASE, offline_set, [{"id": "busy"}, {"id": "idle"}, {"id": "ghost"},
                            {"id": "idle2", "maintenanceWindow": {"schedule": "x"}}],
        True, "admin")
    assert (result["assigned"], result["alreadyAssigned"], result["total"]) == (1, 1, 2)
    idle = reload_target("idle")
    assert (idle.update_status, idle.assigned_ds_id, idle.installed_ds_id) == (
        "IN_SYNC", offline_set, offline_set)
    action = Action.get_by_id(result["assignedActions"][0]["id"])
    assert (action.active, action.status) == (False, "FINISHED")
    assert reload_target("busy").assigned_ds_id == online_set
    again = software.assign_targets(BASE, offline_set, [{"id": "idle"}], True, "admin")
    assert (again["assigned"], again["alreadyAssigned"]) == (0, 1)


def test_assignment_from_the_target_side():
    set_id = distribution_set([module("a")], name="one")
    other = distribution_set([module("b")], name="two")
    with pytest.raises(EntityNotFound):
        software.assign_from_target(BASE, "ghost", [{"id": set_id}], False, "admin")
    assert software.assign_from_target(BASE, "ghost", [{"id": set_id}], True, "admin")[
        "total"] == 0
    target("dev-1")
    with pytest.raises(MultiAssignment):
        software.assign_from_target(BASE, "dev-1", [{"id": set_id}, {"id": other}], False,
                                    "admin")
    with pytest.raises(EntityNotFound):
        software.assign_from_target(BASE, "dev-1", {"id": 9999}, False, "admin")
    result = software.assign_from_target(BASE, "dev-1", {"id": str(set_id),
                                                         "type": "downloadonly"}, False, "admin")
    assert result["assigned"] == 1
    assert reload_target("dev-1").assigned_ds_id == set_id
    assert Action.get().action_type == "DOWNLOAD_ONLY"


def test_add_and_remove_set_modules():
    set_id = distribution_set([], type_key="os_app")
    first, second, app = module("a"), module("b"), module("app", type_key="application")
    software.add_set_modules(set_id, [{"id": first}, {"id": app}], BLOBS, "admin")
    software.add_set_modules(set_id, [{"id": second}], BLOBS, "admin")  # os: replaces the first
    ids = {row.module_id for row in DistributionSetModule.select().where(
        DistributionSetModule.distribution_set == set_id)}
    assert ids == {second, app}
    with pytest.raises(EntityNotFound):
        software.add_set_modules(set_id, [{"id": 9999}], BLOBS, "admin")
    software.remove_set_module(set_id, app, BLOBS)
    assert [m["id"] for m in software.get_set(BASE, set_id)["modules"]] == [second]
