"""The action state machine against the contract.

`storage.transitions` holds the table and `storage.actions.apply_event` carries it out; these tests
hold both to ddi-contract.md §4.4, §4.6, §4.11, §5 and §9 and mgmt-contract.md §5.3/§5.4/§7.5.
What the contract says is written out here (`contract_says`, `contract_refusal`) without looking at
the table, so a wrong row fails a test instead of being read back into its own expectation.

All tests share one database per module (a fresh target and action per case keeps them apart):
the table walk alone is several hundred cases.
"""

import collections
import itertools

import pytest

import storage
from storage import actions, catalog, ddi
from storage import transitions as t
from storage.actions import Outcome, apply_event
from storage.assignments import assign
from storage.db import write
from storage.errors import EmptyNotFound, NotCancelable, NotForceQuitable, QuotaExceeded
from storage.models import Action, ActionStatus, Target

NOW = 1_717_000_000_000
INSTALLED_AT = NOW - 3_600_000  # when the target's installed set was installed
REPORTED_AT = NOW - 60_000      # the device's feedback `timestamp`, newer than INSTALLED_AT
USER = "tester"
DEVICE_URL = "http://ddi.example/DEFAULT/controller/v1/device"
US = "Update Server: "
# Placeholders some server lines are filled with (download path, auto-confirm texts).
MESSAGE_VALUES = {"path": "os/image.bin", "initiator": "fleet", "creator": "admin",
                  "remark": "site A", "rollout": "wave", "group": "group-1"}

# Action statuses and types, spelled as hawkBit does.
WFC, RUNNING, RETRIEVED = "WAIT_FOR_CONFIRMATION", "RUNNING", "RETRIEVED"
CANCELING, CANCELED, FINISHED = "CANCELING", "CANCELED", "FINISHED"
ERROR, DOWNLOADED, SCHEDULED = "ERROR", "DOWNLOADED", "SCHEDULED"
FORCED, SOFT, TIMEFORCED, DOWNLOAD_ONLY = "FORCED", "SOFT", "TIMEFORCED", "DOWNLOAD_ONLY"
ALL_TYPES = (FORCED, SOFT, TIMEFORCED, DOWNLOAD_ONLY)
# DDI §5.1: which statuses an action is active in.
ACTIVE = frozenset({WFC, RUNNING, RETRIEVED, CANCELING})

OPERATOR_EVENTS = ("cancel", "cancel_obsolete", "close_obsolete", "force_quit", "confirmed",
                   "denied")
SERVER_EVENTS = ("retrieved", "download", "window_lapsed", "auto_confirmed", "rollout_started",
                 "rollout_started_unconfirmed", "rollout_stopped")


# --- what the contract says --------------------------------------------------------------

class Wording:
    """A server line whose exact wording the contract leaves open: only its start (and a phrase
    the contract quotes) is checked. Compares equal to any string that fits."""

    def __init__(self, start, phrase=""):
        self.start = start
        self.phrase = phrase

    def __eq__(self, other):
        return isinstance(other, str) and other.startswith(self.start) and self.phrase in other

    def __repr__(self):
        return "Wording(%r, %r)" % (self.start, self.phrase)


# states: the action statuses that accept the event; to_status None: unchanged; closes: the
# action becomes inactive (opens: active); line: the server's line; always: that line is added
# even when the device sent details or a code.
Says = collections.namedtuple("Says", "states to_status closes entry effects line always opens")


def says(states, entry, line, to_status=None, closes=False, effects=(), always=False,
         opens=False):
    return Says(frozenset(states), to_status, closes, entry, frozenset(effects), line, always,
                opens)


DEPLOYABLE = (RUNNING, RETRIEVED, CANCELING)  # §4.4.2: active, not waiting for confirmation
CANCELABLE = (WFC, RUNNING, RETRIEVED)        # mgmt §7.5: active and not cancelling

# DDI §4.4.3 (and §5.2, §9.2/3/19), keyed by (execution, finished).
DEPLOYMENT_SAYS = {}
for _finished in t.FINISHED_VALUES:
    DEPLOYMENT_SAYS["closed", _finished] = (
        says(DEPLOYABLE, ERROR, US + "Target reported CLOSED with ERROR!", ERROR, True,
             {"failed"})
        if _finished == "failure" else
        says(DEPLOYABLE, FINISHED, US + "Target reported CLOSED with OK!", FINISHED, True,
             {"installed", "request_attributes"}))
    DEPLOYMENT_SAYS["downloaded", _finished] = says(
        DEPLOYABLE, DOWNLOADED, US + "Target confirmed download finished")
    DEPLOYMENT_SAYS["download", _finished] = says(
        DEPLOYABLE, "DOWNLOAD", US + "Target confirmed download start")
    DEPLOYMENT_SAYS["canceled", _finished] = says(
        DEPLOYABLE, CANCELED, US + "Target confirmed cancellation.")
    DEPLOYMENT_SAYS["rejected", _finished] = says(
        DEPLOYABLE, "WARNING", US + "Target REJECTED update")
    for _execution in ("proceeding", "scheduled", "resumed"):
        DEPLOYMENT_SAYS[_execution, _finished] = says(
            DEPLOYABLE, RUNNING, US + "Target reported " + _execution)
# ... except that `downloaded` closes a DOWNLOAD_ONLY action (§4.4.3, §9.19).
DOWNLOAD_ONLY_DOWNLOADED = says(DEPLOYABLE, DOWNLOADED, US + "Target confirmed download finished",
                                DOWNLOADED, True, {"download_only_done", "request_attributes"})

# DDI §4.6 (and §9.1/§9.3): only a cancelling action, server line first where it is always said.
CANCEL_SAYS = {}
for _finished in t.FINISHED_VALUES:
    CANCEL_SAYS["closed", _finished] = (
        says([CANCELING], ERROR, Wording(US), RUNNING, always=True)
        if _finished == "failure" else
        says([CANCELING], CANCELED, US + "Cancellation completion is finished successfully.",
             CANCELED, True, {"cancel_completed"}, always=True))
    CANCEL_SAYS["rejected", _finished] = says([CANCELING], "CANCEL_REJECTED", Wording(US),
                                              RUNNING, always=True)
    CANCEL_SAYS["canceled", _finished] = says(
        [CANCELING], "WARNING",
        Wording(US, "reported cancel for a cancel which is not supported"), always=True)
    for _execution in ("proceeding", "scheduled", "resumed", "download", "downloaded"):
        CANCEL_SAYS[_execution, _finished] = says([CANCELING], RUNNING, Wording(US))

# DDI §4.11: only a waiting action; details, then the code line, then the server line.
CONFIRMATION_SAYS = {
    ("confirmed", None): says(
        [WFC], RUNNING, US + "Target confirmed action. Therefore, it will be set to the running "
                             "state to proceed with the deployment.", RUNNING, always=True),
    ("denied", None): says(
        [WFC], WFC, US + "Target rejected action. Action will stay in confirmation pending state.",
        always=True),
}

# Mgmt §5.4 rows 2, 2b, 11, 16 and §7.5/§7.7; one server line each.
OPERATOR_SAYS = {
    ("cancel", None): says(CANCELABLE, CANCELING, US + "manual cancelation requested",
                           CANCELING),
    ("cancel_obsolete", None): says(CANCELABLE, CANCELING,
                                    US + "cancel obsolete action due to new update", CANCELING),
    ("close_obsolete", None): says(CANCELABLE, CANCELED,
                                   US + "close obsolete action due to new update", CANCELED,
                                   True),
    ("force_quit", None): says([CANCELING], CANCELED, US + "A force quit has been performed.",
                               CANCELED, True, {"cancel_completed"}),
    ("confirmed", None): says([WFC], RUNNING, Wording(US), RUNNING),
    ("denied", None): says([WFC], WFC, Wording(US)),
}

# DDI §4.1.2 step 4, §4.3 step 4, §4.5, §4.12, mgmt §5.4 rows 4, 5 and 12.
SERVER_SAYS = {
    ("retrieved", None): says(
        [RUNNING, RETRIEVED], RETRIEVED,
        US + "Target retrieved update action and should start now the download.", RETRIEVED),
    ("download", None): says([RUNNING, RETRIEVED], "DOWNLOAD",
                             US + "Target downloads os/image.bin"),
    # Without the server prefix, so that the device sees it in its action history.
    ("window_lapsed", None): says(CANCELABLE, CANCELING, "manual cancelation requested",
                                  CANCELING),
    ("auto_confirmed", None): says(
        [WFC], RUNNING,
        "Assignment automatically confirmed by initiator 'fleet'. \n \n"
        "Auto confirmation activated by system user: 'admin' \n \nRemark: site A", RUNNING),
    # mgmt §12.2: a started rollout group's scheduled actions run (or wait for the device's
    # confirmation) and assign their set; stopping the rollout cancels those not started.
    ("rollout_started", None): says([SCHEDULED], RUNNING, Wording(US, "rollout 'wave'"),
                                    RUNNING, effects={"assigned"}, opens=True),
    ("rollout_started_unconfirmed", None): says(
        [SCHEDULED], WFC, Wording(US, "group 'group-1'"), WFC, effects={"assigned"},
        opens=True),
    ("rollout_stopped", None): says([SCHEDULED], CANCELED, Wording(US, "Rollout 'wave' stopped"),
                                    CANCELED, True),
}
SERVER_CANCEL_RETRIEVED = says(
    [CANCELING], RETRIEVED,
    US + "Target retrieved cancel action and should start now the cancellation.")

SAYS = {t.DEPLOYMENT: DEPLOYMENT_SAYS, t.CANCEL: CANCEL_SAYS, t.CONFIRMATION: CONFIRMATION_SAYS,
        t.OPERATOR: OPERATOR_SAYS, t.SERVER: SERVER_SAYS}


def contract_says(channel, status, execution, finished, action_type):
    """What the contract says this event does to an action in `status`; None if it refuses it."""
    if channel == t.DEPLOYMENT and execution == "downloaded" and action_type == DOWNLOAD_ONLY:
        rule = DOWNLOAD_ONLY_DOWNLOADED
    elif (channel, execution, status) == (t.SERVER, "retrieved", CANCELING):
        rule = SERVER_CANCEL_RETRIEVED
    else:
        rule = SAYS[channel].get((execution, finished))
    if rule is None or status not in rule.states:
        return None
    return rule


LATE, NOT_FOUND, NOT_CANCELABLE, NOT_FORCE_QUITABLE, IGNORED = (
    "late report", "EmptyNotFound", "NotCancelable", "NotForceQuitable", "ignored")


def contract_refusal(channel, status, execution):
    """How an event the contract does not accept is answered (DDI §4.4.2, §4.6, §4.11, §9.6/7;
    mgmt §7.5/§7.7). Device reports on a closed action are kept as late reports (the 410 of
    hawkBit makes SWUpdate retry forever)."""
    if channel in t.DEVICE_CHANNELS and status not in ACTIVE:
        return LATE
    if channel == t.DEPLOYMENT:        # only WAIT_FOR_CONFIRMATION gets here
        return NOT_FOUND
    if channel == t.CANCEL:
        return NOT_CANCELABLE
    if channel == t.CONFIRMATION:
        return NOT_FOUND
    return {("operator", "cancel"): NOT_CANCELABLE,
            ("operator", "force_quit"): NOT_FORCE_QUITABLE,
            ("operator", "confirmed"): NOT_FOUND,
            ("operator", "denied"): NOT_FOUND}.get((channel, execution), IGNORED)


def every_event():
    """Every (channel, status, execution, finished, action type) there is."""
    vocabulary = {
        t.DEPLOYMENT: itertools.product(t.EXECUTIONS, t.FINISHED_VALUES),
        t.CANCEL: itertools.product(t.EXECUTIONS, t.FINISHED_VALUES),
        t.CONFIRMATION: itertools.product(t.CONFIRMATIONS, [None]),
        t.OPERATOR: itertools.product(OPERATOR_EVENTS, [None]),
        t.SERVER: itertools.product(SERVER_EVENTS, [None]),
    }
    for channel, pairs in vocabulary.items():
        for (execution, finished), status, action_type in itertools.product(
                list(pairs), t.ACTION_STATUSES, t.ACTION_TYPES):
            yield channel, status, execution, finished, action_type


def table_events():
    """Every event a row of the table covers, row by row."""
    for row in t.TABLE:
        for status, finished, action_type in itertools.product(row.states, row.finished,
                                                               row.types):
            yield row.channel, status, row.execution, finished, action_type


# --- the world the tests run in ----------------------------------------------------------

TargetState = collections.namedtuple(
    "TargetState", "update_status assigned installed installation_date request_attributes")


class World:
    """One database; `installed` is the set each new target runs, `offered` the set its action
    delivers, `other` a third set for neighbouring actions."""

    def __init__(self, installed, offered, other):
        self.installed, self.offered, self.other = installed, offered, other
        self._names = itertools.count(1)

    def target(self, pending=True):
        """A target running `installed` since INSTALLED_AT with `offered` assigned (PENDING) and
        configData already sent; with pending=False, one just created by the operator."""
        if not pending:
            return catalog.create_target(self._name(), NOW, USER)
        with write():
            return self._pending_target()

    def _name(self):
        return "device-%d" % next(self._names)

    def _pending_target(self):
        # Inserted directly (not through catalog.create_target): the table walk makes hundreds.
        return Target.create(
            controller_id=self._name(), name="device", security_token="token",
            update_status="PENDING", assigned_ds=self.offered, installed_ds=self.installed,
            installation_date=INSTALLED_AT, request_attributes=False, attributes={},
            created_at=NOW - 2000, created_by=USER, last_modified_at=NOW - 2000,
            last_modified_by=USER)

    def action(self, status, action_type=FORCED, target=None, distribution_set=None):
        """An action forced into `status`, with the assignment entry it would have had."""
        with write():
            action = Action.create(
                target=target or self._pending_target(),
                distribution_set=distribution_set or self.offered, action_type=action_type,
                status=status, active=status in ACTIVE, initiated_by=USER, created_at=NOW - 1000,
                created_by=USER, last_modified_at=NOW - 1000, last_modified_by=USER)
            actions.append_entry(action, RUNNING, ["Assignment initiated by user 'tester'"],
                                 NOW - 1000, USER)
        return action

    def target_state(self, target):
        target = Target.get_by_id(target.id)
        return TargetState(target.update_status, target.assigned_ds_id, target.installed_ds_id,
                           target.installation_date, target.request_attributes)

    def untouched_target(self):
        return TargetState("PENDING", self.offered.id, self.installed.id, INSTALLED_AT, False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    storage.open_store(str(tmp_path_factory.mktemp("transitions")), NOW)
    module_ids = [catalog.create_module("os", "os-%s" % name, "1.0", NOW, USER).id
                  for name in ("installed", "offered", "other")]
    sets = [catalog.create_distribution_set("set-%d" % module_id, "1.0", [module_id], NOW, USER,
                                            type_key="os")
            for module_id in module_ids]
    yield World(*sets)
    storage.close_store()


@pytest.fixture
def limits():
    """Change the quotas for one test; the defaults come back afterwards."""
    saved = actions.limits

    def change(**values):
        actions.configure(saved._replace(**values))

    yield change
    actions.configure(saved)


def report(action, channel, execution, finished=None, details=(), code=None,
           timestamp=REPORTED_AT):
    with write():
        return apply_event(Action.get_by_id(action.id), channel, execution, finished,
                           details=list(details), code=code, timestamp=timestamp, now=NOW,
                           by="device", message_values=MESSAGE_VALUES)


def entries(action):
    return list(ActionStatus.select().where(ActionStatus.action == action.id)
                .order_by(ActionStatus.id))


def action_row(action):
    return Action.select().where(Action.id == action.id).dicts().get()


def expected_messages(channel, rule, details, code):
    """DDI §4.4.3, §4.6, §4.11 and mgmt §5.3: who speaks first, and when the server speaks."""
    if channel in (t.OPERATOR, t.SERVER):
        return [rule.line]
    code_line = "Confirmation status code: %d" if channel == t.CONFIRMATION \
        else "Device reported status code: %d"
    reported = list(details) + ([code_line % code] if code is not None else [])
    if not rule.always:
        return reported or [rule.line]
    if channel == t.CANCEL:
        return [rule.line] + reported
    return reported + [rule.line]


def expected_target(world, effects):
    """What the effects do to a target set up by `World.target` (DDI §4.4.3, §4.6, §5.6)."""
    state = world.untouched_target()
    if "installed" in effects:
        state = state._replace(installed=world.offered.id, installation_date=REPORTED_AT,
                               update_status="IN_SYNC")
    if "assigned" in effects:
        state = state._replace(update_status="PENDING", assigned=world.offered.id)
    if "failed" in effects:
        state = state._replace(update_status="ERROR", assigned=None)
    if "download_only_done" in effects:
        state = state._replace(update_status="IN_SYNC")
    if "cancel_completed" in effects:
        state = state._replace(assigned=world.installed.id, update_status="IN_SYNC")
    if "request_attributes" in effects:
        state = state._replace(request_attributes=True)
    return state


# --- 1. every row of the table -----------------------------------------------------------

SILENT = ((), None)
TALKATIVE = (("first detail", "second detail"), 7)


def _walk_cases():
    for event in table_events():
        variants = [("silent", SILENT)]
        if event[0] in t.DEVICE_CHANNELS:
            variants.append(("details+code", TALKATIVE))
        for name, variant in variants:
            yield pytest.param(event, variant,
                               id="-".join(str(part) for part in event + (name,)))


@pytest.mark.parametrize("event, variant", list(_walk_cases()))
def test_table_row_does_what_the_contract_says(world, event, variant):
    channel, status, execution, finished, action_type = event
    rule = contract_says(*event)
    assert rule is not None, "the table accepts an event the contract refuses"
    assert t.transition(*event).effects == rule.effects
    action = world.action(status, action_type)
    details, code = variant
    device = channel in t.DEVICE_CHANNELS

    outcome = report(action, channel, execution, finished, details, code,
                     REPORTED_AT if device else None)

    assert outcome == Outcome(applied=True, late=False)
    stored = Action.get_by_id(action.id)
    assert stored.status == (rule.to_status or status)
    assert stored.active == (False if rule.closes else rule.opens or status in ACTIVE)
    added = entries(action)[1:]  # after the assignment entry
    assert [entry.status for entry in added] == [rule.entry]
    assert added[0].messages == expected_messages(channel, rule, details, code)
    assert added[0].code == code
    assert added[0].timestamp == (REPORTED_AT if device else NOW)
    assert world.target_state(action.target) == expected_target(world, rule.effects)


def test_table_accepts_exactly_the_events_the_contract_accepts():
    in_table = {event for event in every_event() if t.transition(*event) is not None}
    in_contract = {event for event in every_event() if contract_says(*event) is not None}
    assert sorted(in_table - in_contract, key=str) == []
    assert sorted(in_contract - in_table, key=str) == []


def test_table_has_no_duplicate_keys():
    covered = list(table_events())
    assert len(t._index(t.TABLE)) == len(covered) == len(set(covered))


def test_duplicated_row_is_rejected_when_indexing():
    with pytest.raises(ValueError):
        t._index(t.TABLE + (t.TABLE[0],))


def test_row_overlapping_one_key_of_another_is_rejected_when_indexing():
    overlap = t._row(t.DEPLOYMENT, (RETRIEVED,), "resumed", ("none",), RUNNING, types=(SOFT,))
    with pytest.raises(ValueError):
        t._index(t.TABLE + (overlap,))


# --- 2. everything outside the table -----------------------------------------------------

def test_refusal_answers_every_event_outside_the_table_as_the_contract_says():
    answers = {LATE: t.LATE_REPORT, NOT_FOUND: t.EMPTY_NOT_FOUND,
               NOT_CANCELABLE: t.NOT_CANCELABLE, NOT_FORCE_QUITABLE: t.NOT_FORCE_QUITABLE,
               IGNORED: t.IGNORED}
    wrong = [(event, t.refusal(event[0], event[2], event[1] in ACTIVE))
             for event in every_event()
             if t.transition(*event) is None
             and t.refusal(event[0], event[2], event[1] in ACTIVE)
             != answers[contract_refusal(event[0], event[1], event[2])]]
    assert wrong == []


def _refused_cases():
    """One event per (channel, status, execution) outside the table, varying finished and
    action type from one case to the next, so every value of each is used."""
    groups = collections.defaultdict(list)
    for event in every_event():
        if t.transition(*event) is None:
            groups[event[:3]].append(event)
    for turn, group in enumerate(groups.values()):
        event = group[turn % len(group)]
        yield pytest.param(event, id="-".join(str(part) for part in event))


REFUSALS = {NOT_FOUND: EmptyNotFound, NOT_CANCELABLE: NotCancelable,
            NOT_FORCE_QUITABLE: NotForceQuitable}


@pytest.mark.parametrize("event", list(_refused_cases()))
def test_event_outside_the_table_is_refused_as_the_contract_says(world, event):
    channel, status, execution, finished, action_type = event
    answer = contract_refusal(channel, status, execution)
    action = world.action(status, action_type)
    row_before, entries_before = action_row(action), entries(action)
    details, code = TALKATIVE

    if answer in REFUSALS:
        with pytest.raises(REFUSALS[answer]):
            report(action, channel, execution, finished, details, code)
    else:
        outcome = report(action, channel, execution, finished, details, code)
        assert outcome == Outcome(applied=False, late=answer == LATE)

    assert action_row(action) == row_before
    assert world.target_state(action.target) == world.untouched_target()
    added = entries(action)[len(entries_before):]
    if answer == LATE:
        assert [entry.status for entry in added] == ["WARNING"]
        assert added[0].messages[:-1] == ["first detail", "second detail",
                                          "Device reported status code: 7"]
        assert added[0].messages[-1].startswith(US + "Late")
    else:
        assert added == []


# --- 3. behaviours the contract singles out ----------------------------------------------

def test_canceled_on_cancel_channel_is_not_a_completion(world):
    action = world.action(CANCELING)

    report(action, t.CANCEL, "canceled", "success")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (CANCELING, True)
    assert entries(action)[-1].status == "WARNING"
    assert world.target_state(action.target) == world.untouched_target()


def test_canceled_on_deployment_channel_keeps_the_action_open(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "canceled", "success")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (RUNNING, True)
    assert entries(action)[-1].status == CANCELED


def test_closed_none_is_finished(world):
    action = world.action(RETRIEVED)

    report(action, t.DEPLOYMENT, "closed", "none")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (FINISHED, False)
    assert world.target_state(action.target).update_status == "IN_SYNC"


def test_closed_on_a_canceling_action_finishes_it(world):
    action = world.action(CANCELING)

    report(action, t.DEPLOYMENT, "closed", "success")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (FINISHED, False)


def test_rejected_on_deployment_keeps_the_action_open_with_a_warning(world):
    action = world.action(RETRIEVED)

    report(action, t.DEPLOYMENT, "rejected", "none")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (RETRIEVED, True)
    assert entries(action)[-1].status == "WARNING"


def poll_links(target):
    return ddi.root_poll(target, DEVICE_URL, NOW, ddi.current_action(target))["_links"]


@pytest.mark.parametrize("execution, finished, entry", [
    ("rejected", "none", "CANCEL_REJECTED"),
    ("closed", "failure", ERROR),
])
def test_cancel_refused_by_the_device_puts_the_deployment_back_on_offer(world, execution,
                                                                        finished, entry):
    action = world.action(CANCELING)
    links = poll_links(action.target)
    assert "cancelAction" in links and "deploymentBase" not in links

    report(action, t.CANCEL, execution, finished)

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (RUNNING, True)
    assert entries(action)[-1].status == entry
    links = poll_links(Target.get_by_id(action.target_id))
    assert "cancelAction" not in links
    assert links["deploymentBase"]["href"].startswith(
        "%s/deploymentBase/%d?c=" % (DEVICE_URL, action.id))
    assert world.target_state(action.target) == world.untouched_target()


@pytest.mark.parametrize("action_type, status, active", [
    (DOWNLOAD_ONLY, DOWNLOADED, False),
    (FORCED, RUNNING, True),
    (SOFT, RUNNING, True),
    (TIMEFORCED, RUNNING, True),
])
def test_downloaded_closes_only_download_only_actions(world, action_type, status, active):
    action = world.action(RUNNING, action_type)

    report(action, t.DEPLOYMENT, "downloaded", "success")

    stored = Action.get_by_id(action.id)
    assert (stored.status, stored.active) == (status, active)
    assert entries(action)[-1].status == DOWNLOADED
    target = world.target_state(action.target)
    assert target.installed == world.installed.id
    assert target.update_status == ("IN_SYNC" if action_type == DOWNLOAD_ONLY else "PENDING")


def test_closed_failure_clears_assigned_ds_and_marks_the_target_error(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "closed", "failure")

    target = world.target_state(action.target)
    assert (target.update_status, target.assigned, target.installed) == (
        "ERROR", None, world.installed.id)
    assert target.request_attributes is False


def test_success_reported_after_the_installation_date_installs_the_set(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "closed", "success", timestamp=INSTALLED_AT + 1)

    target = world.target_state(action.target)
    assert (target.installed, target.installation_date, target.update_status) == (
        world.offered.id, INSTALLED_AT + 1, "IN_SYNC")


def test_success_reported_before_the_installation_date_keeps_the_installed_set(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "closed", "success", timestamp=INSTALLED_AT - 1)

    assert Action.get_by_id(action.id).status == FINISHED
    target = world.target_state(action.target)
    assert (target.installed, target.installation_date) == (world.installed.id, INSTALLED_AT)
    assert target.update_status == "PENDING"


def test_success_without_timestamp_is_dated_by_the_server(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "closed", "success", timestamp=None)

    assert entries(action)[-1].timestamp == NOW
    assert world.target_state(action.target).installation_date == NOW


def test_success_of_download_only_action_also_assigns_its_set(world):
    target = world.target()
    with write():
        Target.update(assigned_ds=world.other.id).where(Target.id == target.id).execute()
    action = world.action(RUNNING, DOWNLOAD_ONLY, target=target)

    report(action, t.DEPLOYMENT, "closed", "success")

    state = world.target_state(target)
    assert (state.assigned, state.installed, state.update_status) == (
        world.offered.id, world.offered.id, "IN_SYNC")


def test_finished_report_on_older_action_while_newer_is_pending_leaves_target_pending(world):
    target = world.target(pending=False)
    with write():
        older = assign(world.offered, target, NOW, USER)
    with write():
        newer = assign(world.other, Target.get_by_id(target.id), NOW, USER)
    assert Action.get_by_id(older.id).status == CANCELING

    report(older, t.DEPLOYMENT, "closed", "success")

    assert Action.get_by_id(older.id).status == FINISHED
    assert Action.get_by_id(newer.id).active
    state = world.target_state(target)
    assert (state.update_status, state.assigned, state.installed) == (
        "PENDING", world.other.id, world.offered.id)


@pytest.mark.parametrize("channel, execution, finished", [
    (t.CANCEL, "closed", "success"),
    (t.CANCEL, "closed", "none"),
    (t.OPERATOR, "force_quit", None),
])
def test_cancel_completion_assigns_the_oldest_remaining_active_set(world, channel, execution,
                                                                   finished):
    target = world.target()
    cancelled = world.action(CANCELING, target=target)
    world.action(RUNNING, target=target, distribution_set=world.other)
    world.action(RUNNING, target=target, distribution_set=world.offered)

    report(cancelled, channel, execution, finished)

    assert Action.get_by_id(cancelled.id).status == CANCELED
    state = world.target_state(target)
    assert (state.assigned, state.update_status) == (world.other.id, "PENDING")


def test_cancel_completion_without_other_actions_falls_back_to_installed_set(world):
    action = world.action(CANCELING)

    report(action, t.CANCEL, "closed", "success")

    state = world.target_state(action.target)
    assert (state.assigned, state.update_status) == (world.installed.id, "IN_SYNC")


def test_code_alone_is_stored_without_a_default_line(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "proceeding", "none", code=42)

    entry = entries(action)[-1]
    assert (entry.messages, entry.code) == (["Device reported status code: 42"], 42)
    assert Action.get_by_id(action.id).last_status_code == 42


def test_details_come_first_in_an_error_entry(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "closed", "failure", ["Checksum mismatch", "slot B"], 3)

    assert entries(action)[-1].messages == ["Checksum mismatch", "slot B",
                                            "Device reported status code: 3"]


def test_cancel_completion_says_the_server_line_before_the_device_details(world):
    action = world.action(CANCELING)

    report(action, t.CANCEL, "closed", "success", ["stopped"], 0)

    assert entries(action)[-1].messages == [
        US + "Cancellation completion is finished successfully.", "stopped",
        "Device reported status code: 0"]


@pytest.mark.parametrize("execution, entry", [("confirmed", RUNNING), ("denied", WFC)])
def test_operator_confirmation_keeps_the_operators_details(world, execution, entry):
    action = world.action(WFC)

    report(action, t.OPERATOR, execution, details=["approved by change board"], timestamp=None)

    added = entries(action)[-1]
    assert added.status == entry
    assert added.messages[0] == "approved by change board"


def test_a_long_message_counts_once_against_the_message_quota(world, limits):
    limits(messages_per_status=2)
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "proceeding", "none", ["x" * 2000], code=5)

    assert entries(action)[-1].messages == ["x" * 512] * 3 + ["x" * 464,
                                                              "Device reported status code: 5"]
    with pytest.raises(QuotaExceeded):
        report(action, t.DEPLOYMENT, "proceeding", "none", ["a", "b"], code=5)


def test_message_longer_than_512_characters_is_split_into_chunks(world):
    action = world.action(RUNNING)
    detail = "".join(chr(ord("a") + i % 26) for i in range(1100))

    report(action, t.DEPLOYMENT, "proceeding", "none", [detail, "x" * 512])

    assert entries(action)[-1].messages == [detail[:512], detail[512:1024], detail[1024:],
                                            "x" * 512]


# Quotas (DDI §4.4.4, §6, §9.11).

def test_non_final_feedback_beyond_the_entry_quota_is_refused_and_stores_nothing(world, limits):
    limits(status_entries_per_action=3)
    action = world.action(RUNNING)  # the assignment entry is the first of three
    report(action, t.DEPLOYMENT, "proceeding", "none")
    report(action, t.DEPLOYMENT, "download", "none")
    row_before = action_row(action)

    with pytest.raises(QuotaExceeded):
        report(action, t.DEPLOYMENT, "proceeding", "none", ["one too many"])

    assert len(entries(action)) == 3
    assert action_row(action) == row_before


@pytest.mark.parametrize("finished, status", [
    ("success", FINISHED), ("none", FINISHED), ("failure", ERROR)])
def test_final_feedback_is_accepted_when_the_entry_quota_is_exhausted(world, limits, finished,
                                                                      status):
    limits(status_entries_per_action=3)
    action = world.action(RUNNING)
    report(action, t.DEPLOYMENT, "proceeding", "none")
    report(action, t.DEPLOYMENT, "proceeding", "none")

    report(action, t.DEPLOYMENT, "closed", finished)

    assert Action.get_by_id(action.id).status == status
    assert len(entries(action)) == 4


def test_fifty_details_and_a_code_exceed_the_message_quota(world):
    action = world.action(RUNNING)

    with pytest.raises(QuotaExceeded):
        report(action, t.DEPLOYMENT, "proceeding", "none", ["line %d" % i for i in range(50)], 1)

    assert len(entries(action)) == 1


def test_fifty_details_fill_the_message_quota_exactly(world):
    action = world.action(RUNNING)

    report(action, t.DEPLOYMENT, "proceeding", "none", ["line %d" % i for i in range(50)])

    assert len(entries(action)[-1].messages) == 50


def test_message_quota_applies_to_final_deployment_feedback(world):
    action = world.action(RUNNING)

    with pytest.raises(QuotaExceeded):
        report(action, t.DEPLOYMENT, "closed", "success", ["line %d" % i for i in range(51)])

    assert Action.get_by_id(action.id).status == RUNNING


def test_confirmation_beyond_the_entry_quota_is_refused(world, limits):
    limits(status_entries_per_action=1)
    action = world.action(WFC)

    with pytest.raises(QuotaExceeded):
        report(action, t.CONFIRMATION, "confirmed")

    assert Action.get_by_id(action.id).status == WFC


def test_informational_cancel_feedback_beyond_the_entry_quota_is_refused(world, limits):
    limits(status_entries_per_action=1)
    action = world.action(CANCELING)

    with pytest.raises(QuotaExceeded):
        report(action, t.CANCEL, "proceeding", "none")

    assert len(entries(action)) == 1


@pytest.mark.parametrize("execution, finished, status", [
    ("closed", "success", CANCELED), ("closed", "failure", RUNNING),
    ("rejected", "none", RUNNING)])
def test_terminal_cancel_feedback_is_accepted_beyond_the_entry_quota(world, limits, execution,
                                                                     finished, status):
    limits(status_entries_per_action=1)
    action = world.action(CANCELING)

    report(action, t.CANCEL, execution, finished)

    assert Action.get_by_id(action.id).status == status


def test_late_report_beyond_the_entry_quota_is_dropped_silently(world, limits):
    limits(status_entries_per_action=1)
    action = world.action(FINISHED)

    outcome = report(action, t.DEPLOYMENT, "closed", "success", ["again"])

    assert outcome == Outcome(applied=False, late=True)
    assert len(entries(action)) == 1


def test_late_report_beyond_the_message_quota_is_dropped_silently(world):
    action = world.action(ERROR)

    outcome = report(action, t.DEPLOYMENT, "proceeding", "none",
                     ["line %d" % i for i in range(50)])

    assert outcome == Outcome(applied=False, late=True)
    assert len(entries(action)) == 1


def test_terminal_cancel_feedback_is_not_held_to_the_message_quota(world):
    action = world.action(CANCELING)

    report(action, t.CANCEL, "closed", "success", ["line %d" % i for i in range(50)])

    assert Action.get_by_id(action.id).status == CANCELED


def test_downloaded_of_download_only_action_is_held_to_the_entry_quota(world, limits):
    limits(status_entries_per_action=1)
    action = world.action(RUNNING, DOWNLOAD_ONLY)

    with pytest.raises(QuotaExceeded):
        report(action, t.DEPLOYMENT, "downloaded", "success")
