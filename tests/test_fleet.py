"""Rules of the operator's view of the fleet (storage/fleet.py), below HTTP."""

import pytest

import storage
from storage import assignments, catalog, ddi, fleet, tenant
from storage import transitions as t
from storage.db import write
from storage.errors import (ActionOfOtherTarget, AutoConfirmAlreadyActive, BodyNotReadable,
                            ConstraintViolation, EmptyBadRequest, EmptyGone, EmptyNotFound,
                            EntityAlreadyExists, EntityNotFound, NotCancelable,
                            NotDeletable, NotForceQuitable, QuotaExceeded)
from storage.models import (Action, ActionStatus, DistributionSetType, TenantConfig, Target,
                            TargetMetadata)
from storage.tenant import InvalidConfigKey, InvalidConfigValue

BASE = "http://localhost:8080"


@pytest.fixture
def store(tmp_path):
    storage.open_store(str(tmp_path), ddi.now_ms())
    yield
    storage.close_store()


def make_target(controller_id="dev-1", **fields):
    item = {"controllerId": controller_id}
    item.update(fields)
    return fleet.create_targets(BASE, [item], "admin")[0]


_counter = [0]


def make_set():
    _counter[0] += 1
    now = ddi.now_ms()
    module = catalog.create_module("os", "fw-%d" % _counter[0], "1.0", now, "admin")
    return catalog.create_distribution_set("set-%d" % _counter[0], "1.0", [module.id], now,
                                           "admin", type_key="os")


def assign(controller_id="dev-1", **options):
    with write():
        target = ddi.find_target(controller_id)
        return assignments.assign(make_set(), target, ddi.now_ms(), "admin", **options)


def reload(action):
    return Action.get_by_id(action.id)


# --- targets --------------------------------------------------------------------------------

def test_create_targets_defaults_and_given_token(store):
    created = fleet.create_targets(BASE, [
        {"controllerId": "a"},
        {"controllerId": "b", "name": "Bee", "securityToken": "ieHai3du7gee7aPhojeth4ong"}],
        "admin")
    assert [doc["controllerId"] for doc in created] == ["a", "b"]
    assert created[0]["name"] == "a" and len(created[0]["securityToken"]) == 32
    assert created[1]["securityToken"] == "ieHai3du7gee7aPhojeth4ong"
    assert created[0]["updateStatus"] == "unknown" and created[0]["requestAttributes"] is True


@pytest.mark.parametrize("body, error", [
    ([{"controllerId": "new-1"}, {"controllerId": "taken"}], EntityAlreadyExists),
    ([{"controllerId": "new-1"}, {"controllerId": "new-1"}], EntityAlreadyExists),
    ([{"controllerId": "new-1"}, {"controllerId": "has space"}], ConstraintViolation),
    ([{"controllerId": "new-1"}, {"name": "no id"}], ConstraintViolation),
    ([{"controllerId": "new-1"}, {"controllerId": "new-2", "targetType": 7}], EntityNotFound),
    ({"controllerId": "new-1"}, BodyNotReadable),
])
def test_create_targets_is_all_or_nothing(store, body, error):
    make_target("taken")
    with pytest.raises(error):
        fleet.create_targets(BASE, body, "admin")
    assert [row.controller_id for row in Target.select()] == ["taken"]


def test_update_target_rules(store):
    make_target("dev-1")
    Target.update(request_attributes=False).execute()
    with pytest.raises(EmptyBadRequest):
        fleet.update_target(BASE, "dev-1", {"requestAttributes": False}, "admin")
    with pytest.raises(EntityNotFound):
        fleet.update_target(BASE, "nope", {"name": "x"}, "admin")
    with pytest.raises(EntityNotFound):
        fleet.update_target(BASE, "dev-1", {"targetType": 3}, "admin")
    doc = fleet.update_target(BASE, "dev-1", {
        "requestAttributes": True, "description": "lab", "controllerId": "ignored",
        "name": None, "targetType": -1, "pollStatus": {"overdue": True}}, "ops")
    assert doc["requestAttributes"] is True and doc["description"] == "lab"
    assert doc["name"] == "dev-1" and doc["controllerId"] == "dev-1"
    assert Target.get().last_modified_by == "ops"


def test_delete_target_cascades_and_frees_the_id(store):
    make_target("dev-1")
    make_target("dev-2")
    action = assign("dev-1")
    assign("dev-2")
    fleet.create_target_metadata("dev-1", [{"key": "k", "value": "v"}], "admin")
    fleet.delete_target("dev-1")
    assert Action.get_or_none(Action.id == action.id) is None
    assert not ActionStatus.select().where(ActionStatus.action == action.id).exists()
    assert TargetMetadata.select().count() == 0
    assert Action.select().count() == 1  # dev-2's action is untouched
    with pytest.raises(EntityNotFound):
        fleet.delete_target("dev-1")
    assert make_target("dev-1")["updateStatus"] == "unknown"


def test_poll_status_arithmetic():
    settings = {"pollingTime": "00:01:00", "pollingOverdueTime": "00:02:00"}
    last = 1_000_000
    status = fleet.poll_status(last, settings, last + 180_000)
    assert status["nextExpectedRequestAt"] == last + 60_000
    assert status["overdue"] is False  # exactly at the end of the grace period
    assert fleet.poll_status(last, settings, last + 180_001)["overdue"] is True
    jitter = fleet.poll_status(last, {"pollingTime": "00:01:00~10%",
                                      "pollingOverdueTime": "00:00:00"}, last)
    assert jitter["nextExpectedRequestAt"] == last + 66_000


def test_target_document_presence_rules(store, monkeypatch):
    make_target("dev-1")
    doc = fleet.get_target(BASE, "dev-1")
    assert "pollStatus" not in doc and "autoConfirmActive" not in doc
    assert "ipAddress" not in doc and "autoConfirm" not in doc["_links"]
    now = ddi.now_ms()
    ddi.register_poll(ddi.find_target("dev-1"), "dev-1", "http://192.0.2.7", now)
    tenant.store({"pollingTime": "00:00:30", "pollingOverdueTime": "00:03:00",
                  "user.confirmation.flow.enabled": True}, "admin")
    monkeypatch.setattr(ddi, "now_ms", lambda: now + 211_000)
    doc = fleet.get_target(BASE, "dev-1")
    assert doc["pollStatus"] == {"lastRequestAt": now, "nextExpectedRequestAt": now + 30_000,
                                 "overdue": True}
    assert doc["ipAddress"] == "192.0.2.7" and doc["autoConfirmActive"] is False
    assert fleet.ip_address("amqp://vhost/q") is None
    assert fleet.ip_address("http://***") is None


def test_attributes_absent_is_none(store):
    make_target("dev-1")
    assert fleet.target_attributes("dev-1") is None
    ddi.update_attributes(ddi.find_target("dev-1"), {"hw": "2"}, None, ddi.now_ms())
    assert fleet.target_attributes("dev-1") == {"hw": "2"}
    assert fleet.target_assigned_ds(BASE, "dev-1") is None
    action = assign("dev-1")
    assert fleet.target_assigned_ds(BASE, "dev-1")["id"] == action.distribution_set_id
    assert fleet.target_installed_ds(BASE, "dev-1") is None


# --- auto-confirmation and metadata -----------------------------------------------------------

def test_activate_auto_confirm_confirms_waiting_actions(store):
    tenant.store({"user.confirmation.flow.enabled": True}, "admin")
    make_target("dev-1")
    action = assign("dev-1")
    assert action.status == t.WAIT_FOR_CONFIRMATION
    fleet.activate_auto_confirm("dev-1", {"initiator": "ci", "remark": ""}, "admin")
    assert reload(action).status == t.RUNNING
    state = fleet.auto_confirm_state(BASE, "dev-1")
    assert state["active"] is True and state["initiator"] == "ci" and "remark" not in state
    with pytest.raises(AutoConfirmAlreadyActive):
        fleet.activate_auto_confirm("dev-1", None, "admin")
    fleet.deactivate_auto_confirm("dev-1")
    fleet.deactivate_auto_confirm("dev-1")
    assert fleet.auto_confirm_state(BASE, "dev-1")["active"] is False


def test_target_metadata_rules(store):
    make_target("dev-1")
    fleet.create_target_metadata("dev-1", [{"key": "a", "value": "1"}], "admin")
    with pytest.raises(EntityAlreadyExists):
        fleet.create_target_metadata("dev-1", [{"key": "b", "value": "2"},
                                               {"key": "a", "value": "3"}], "admin")
    with pytest.raises(EntityAlreadyExists):
        fleet.create_target_metadata("dev-1", [{"key": "c"}, {"key": "c"}], "admin")
    assert fleet.list_target_metadata("dev-1")["total"] == 1
    fleet.put_target_metadata("dev-1", "a", {"value": "2"}, "admin")
    fleet.put_target_metadata("dev-1", "new", {"value": "x"}, "admin")
    assert fleet.get_target_metadata("dev-1", "a") == {"key": "a", "value": "2"}
    fleet.delete_target_metadata("dev-1", "new")
    with pytest.raises(EntityNotFound):
        fleet.delete_target_metadata("dev-1", "new")
    with pytest.raises(QuotaExceeded):
        fleet.create_target_metadata("dev-1", [{"key": "k%d" % i, "value": "v"}
                                               for i in range(100)], "admin")
    assert TargetMetadata.select().count() == 1


# --- actions --------------------------------------------------------------------------------

def test_cancel_then_force_quit(store):
    make_target("dev-1")
    make_target("dev-2")
    action = assign("dev-1")
    with pytest.raises(ActionOfOtherTarget):
        fleet.cancel_target_action("dev-2", action.id, False, "admin")
    with pytest.raises(EntityNotFound):
        fleet.cancel_target_action("dev-1", 99999, False, "admin")
    with pytest.raises(NotForceQuitable):
        fleet.cancel_target_action("dev-1", action.id, True, "admin")
    fleet.cancel_target_action("dev-1", action.id, False, "admin")
    doc = fleet.get_target_action(BASE, "dev-1", action.id)
    assert (doc["type"], doc["status"], doc["active"]) == ("cancel", "canceling", True)
    with pytest.raises(NotCancelable):
        fleet.cancel_target_action("dev-1", action.id, None, "admin")
    fleet.cancel_target_action("dev-1", action.id, True, "admin")
    action = reload(action)
    assert (action.status, action.active) == (t.CANCELED, False)
    target = ddi.find_target("dev-1")
    assert target.update_status == "IN_SYNC" and target.assigned_ds_id is None
    entries = fleet.action_status_list("dev-1", action.id)["content"]
    assert [e["type"] for e in entries] == ["canceled", "canceling", "running"]
    with pytest.raises(NotCancelable):
        fleet.cancel_target_action("dev-1", action.id, False, "admin")
    with pytest.raises(NotForceQuitable):
        fleet.cancel_target_action("dev-1", action.id, True, "admin")


def test_switch_to_forced_bumps_revision_once(store):
    make_target("dev-1")
    action = assign("dev-1", action_type=t.SOFT)
    before = reload(action).revision
    for body, error in (({"forceType": "soft"}, ConstraintViolation),
                        ({}, ConstraintViolation),
                        ({"forceType": "sometimes"}, BodyNotReadable)):
        with pytest.raises(error):
            fleet.update_target_action(BASE, "dev-1", action.id, body, "admin")
    assert reload(action).action_type == t.SOFT
    doc = fleet.update_target_action(BASE, "dev-1", action.id, {"forceType": "forced"}, "ops")
    assert doc["forceType"] == "forced"
    assert reload(action).revision == before + 1
    fleet.update_target_action(BASE, "dev-1", action.id, {"forceType": "forced"}, "ops")
    assert reload(action).revision == before + 1


def test_timeforced_action_document(store):
    make_target("dev-1")
    action = assign("dev-1", action_type=t.TIMEFORCED, forced_time=ddi.now_ms() + 60_000,
                    window=assignments.MaintenanceWindow("0 0 3 * * ?", "01:00:00", "+00:00"))
    doc = fleet.action_document(BASE, reload(action), full=True)
    assert doc["forceType"] == "timeforced" and doc["forceTime"] == action.forced_time
    assert doc["weight"] == 1000 and "lastStatusCode" not in doc
    assert doc["maintenanceWindow"]["nextStartAt"] % 86_400_000 == 3 * 3_600_000
    assert "canceledaction" not in doc["_links"]


def test_confirm_and_deny(store):
    tenant.store({"user.confirmation.flow.enabled": True}, "admin")
    make_target("dev-1")
    action = assign("dev-1")
    with pytest.raises(BodyNotReadable):
        fleet.confirm_target_action("dev-1", action.id, {"confirmation": "maybe"}, "admin")
    fleet.confirm_target_action("dev-1", action.id,
                                {"confirmation": "denied", "details": ["not now"]}, "admin")
    assert reload(action).status == t.WAIT_FOR_CONFIRMATION
    newest = fleet.action_status_list("dev-1", action.id)["content"][0]
    assert newest["type"] == "wait_for_confirmation" and newest["messages"][0] == "not now"
    fleet.confirm_target_action("dev-1", action.id,
                                {"confirmation": "confirmed", "code": 12}, "admin")
    assert reload(action).status == t.RUNNING
    assert fleet.action_status_list("dev-1", action.id)["content"][0]["code"] == 12
    with pytest.raises(EmptyNotFound) as raised:
        fleet.confirm_target_action("dev-1", action.id, {"confirmation": "confirmed"}, "admin")
    assert type(raised.value) is EmptyNotFound
    fleet.cancel_target_action("dev-1", action.id, False, "admin")
    fleet.cancel_target_action("dev-1", action.id, True, "admin")
    with pytest.raises(EmptyGone):
        fleet.confirm_target_action("dev-1", action.id, {"confirmation": "denied"}, "admin")


def finished(controller_id="dev-1"):
    action = assign(controller_id)
    with write():
        from storage.actions import apply_event
        apply_event(reload(action), t.DEPLOYMENT, "closed", "success", now=ddi.now_ms())
    return action


def test_delete_action_follows_allowed_statuses(store):
    make_target("dev-1")
    done = finished()
    running = assign("dev-1")
    with pytest.raises(NotDeletable):
        fleet.delete_action(running.id)
    tenant.store({"action.delete.allowed.statuses": "ERROR"}, "admin")
    with pytest.raises(NotDeletable):
        fleet.delete_action(done.id)
    tenant.reset("action.delete.allowed.statuses")
    fleet.delete_action(done.id)
    assert Action.get_or_none(Action.id == done.id) is None
    with pytest.raises(EntityNotFound):
        fleet.delete_action(done.id)


def test_bulk_deletes(store):
    make_target("dev-1")
    first, second, third = finished(), finished(), finished()
    running = assign("dev-1")
    with pytest.raises(BodyNotReadable):
        fleet.delete_actions(q=None, ids=None)
    with pytest.raises(BodyNotReadable):
        fleet.purge_target_actions("dev-1", keep_last=1, ids=[first.id])
    with pytest.raises(NotDeletable):
        fleet.purge_target_actions("dev-1", ids=[first.id, running.id])
    assert Action.select().count() == 4
    fleet.purge_target_actions("dev-1", keep_last=1)
    assert [a.id for a in Action.select().order_by(Action.id)] == [third.id, running.id]
    with pytest.raises(NotDeletable):
        fleet.delete_actions(ids=[third.id, running.id])
    assert Action.select().count() == 2
    fleet.delete_actions(q="target.controllerId==dev-1")
    assert [a.id for a in Action.select()] == [running.id]
    make_target("dev-2")
    other = finished("dev-2")
    fleet.delete_actions(ids=[other.id])
    assert Action.get_or_none(Action.id == other.id) is None
    assert second.id != other.id


def test_action_lists_default_to_newest_first(store):
    make_target("dev-1")
    first = assign("dev-1")
    second = assign("dev-1")
    page = fleet.list_target_actions(BASE, "dev-1")
    assert [doc["id"] for doc in page["content"]] == [second.id, first.id]
    assert page["content"][1]["type"] == "cancel"  # superseded by the new assignment
    assert fleet.list_actions(BASE, q="status==canceling")["total"] == 1


# --- configuration --------------------------------------------------------------------------

def test_config_conversion_and_validation(store):
    fleet.put_config(BASE, "authentication.targettoken.enabled", {"value": "on"}, "admin")
    fleet.put_config(BASE, "maintenanceWindowPollCount", {"value": "5"}, "admin")
    value = fleet.get_config(BASE, "authentication.targettoken.enabled")
    assert value["value"] is True and value["global"] is False
    assert value["lastModifiedBy"] == "admin"
    assert fleet.get_config(BASE, "maintenanceWindowPollCount")["value"] == 5
    for key, body, error in (("nope", {"value": 1}, InvalidConfigKey),
                             ("pollingTime", {"value": None}, InvalidConfigValue),
                             ("pollingTime", {}, InvalidConfigValue),
                             ("pollingTime", {"value": "00:00:05"}, InvalidConfigValue),
                             ("implicit.lock.enabled", {"value": "maybe"}, InvalidConfigValue)):
        with pytest.raises(error):
            fleet.put_config(BASE, key, body, "admin")
    with pytest.raises(InvalidConfigKey):
        fleet.get_config(BASE, "nope")
    fleet.delete_config("maintenanceWindowPollCount")
    fleet.delete_config("no.such.key")
    restored = fleet.get_config(BASE, "maintenanceWindowPollCount")
    assert restored["global"] is True and "createdAt" not in restored


def test_config_batch_is_all_or_nothing(store):
    with pytest.raises(InvalidConfigValue):
        fleet.put_configs(BASE, {"pollingTime": "00:01:00", "multi.assignments.enabled": True},
                          "admin")
    with pytest.raises(InvalidConfigKey):
        fleet.put_configs(BASE, {"minPollingTime": "00:01:00", "nope": 1}, "admin")
    assert TenantConfig.select().count() == 0
    fleet.put_configs(BASE, {"pollingTime": "00:01:00", "anonymous.download.enabled": "false"},
                      "admin")
    assert tenant.settings()["pollingTime"] == "00:01:00"
    assert fleet.get_config(BASE, "anonymous.download.enabled")["global"] is False


def test_legacy_cleanup_keys_map_to_current_ones(store):
    assert fleet.get_config(BASE, "action.cleanup.enabled")["value"] is False
    fleet.put_configs(BASE, {"action.cleanup.enabled": True,
                             "action.cleanup.actionExpiry": 1000}, "admin")
    assert tenant.settings()["action.cleanup.auto.expiry"] == 1000
    assert fleet.get_config(BASE, "action.cleanup.actionExpiry")["value"] == 1000
    fleet.put_config(BASE, "action.cleanup.enabled", {"value": False}, "admin")
    assert tenant.settings()["action.cleanup.auto.expiry"] == -1
    fleet.put_config(BASE, "action.cleanup.enabled", {"value": "true"}, "admin")
    assert tenant.settings()["action.cleanup.auto.expiry"] == 1000
    fleet.put_config(BASE, "action.cleanup.actionStatus", {"value": "ERROR"}, "admin")
    assert tenant.settings()["action.cleanup.auto.status"] == "ERROR"
    fleet.delete_config("action.cleanup.actionStatus")
    assert fleet.get_config(BASE, "action.cleanup.actionStatus")["global"] is True


def test_min_polling_time_bounds_polling_time(store):
    fleet.put_config(BASE, "minPollingTime", {"value": "00:02:00"}, "admin")
    with pytest.raises(InvalidConfigValue):
        fleet.put_config(BASE, "pollingTime", {"value": "00:01:00"}, "admin")
    fleet.put_config(BASE, "pollingTime", {"value": "00:02:00"}, "admin")
    with pytest.raises(InvalidConfigValue):
        fleet.put_config(BASE, "minPollingTime", {"value": "00:00:01"}, "admin")


def test_legacy_keys_can_be_switched_off(store, monkeypatch):
    monkeypatch.setattr(fleet, "LEGACY_CONFIG_KEYS", False)
    with pytest.raises(InvalidConfigKey):
        fleet.put_config(BASE, "anonymous.download.enabled", {"value": False}, "admin")
    assert "minPollingTime" not in fleet.all_configs(BASE)
    assert "default.ds.type" in fleet.all_configs(BASE)


def test_default_set_type(store):
    os_app = DistributionSetType.get(DistributionSetType.key == "os_app")
    app = DistributionSetType.get(DistributionSetType.key == "app")
    value = fleet.get_config(BASE, "default.ds.type")
    assert value["value"] == os_app.id and value["global"] is False
    for raw, error in (("%d" % app.id, InvalidConfigValue), (True, InvalidConfigValue),
                       (99999, EntityNotFound)):
        with pytest.raises(error):
            fleet.put_config(BASE, "default.ds.type", {"value": raw}, "admin")
    tenant.settings()  # a cached snapshot must not hide the new value
    fleet.put_config(BASE, "default.ds.type", {"value": app.id}, "admin")
    assert tenant.settings()["default.ds.type"] == app.id  # others read it from the snapshot
    with pytest.raises(EntityNotFound):
        fleet.delete_config("default.ds.type")


def test_userinfo():
    info = fleet.userinfo("admin")
    assert info["tenant"] == "DEFAULT" and info["username"] == "admin"
    assert "TENANT_CONFIGURATION" in info["permissions"]
