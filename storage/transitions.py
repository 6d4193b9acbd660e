"""The action state machine, as one table.

A row says: on this *channel*, for an action in one of these *states*, this *execution* with this
*finished* value moves the action to *to_status* (None: unchanged), sets *active* (None:
unchanged), appends a status entry of type *entry* and has these *effects* on the target.
Every change of an action's state in ddi-lite is a lookup in this table (`transition()`);
what is not in the table is refused in the one way `refusal()` names.

Channels are the three DDI feedback resources plus the two non-device sources of change:
the operator (Management API) and the server itself (device reads, lapsed maintenance windows,
auto-confirmation, and the rollout engine, which opens a group's SCHEDULED actions or cancels
them when the rollout stops). Device feedback always has a `finished` value; the other channels use None.
"""

import collections

# Action statuses (hawkBit's names, stored as they are).
SCHEDULED = "SCHEDULED"
WAIT_FOR_CONFIRMATION = "WAIT_FOR_CONFIRMATION"
RUNNING = "RUNNING"
RETRIEVED = "RETRIEVED"
CANCELING = "CANCELING"
CANCELED = "CANCELED"
FINISHED = "FINISHED"
ERROR = "ERROR"
DOWNLOADED = "DOWNLOADED"
# Status-entry types that an action itself never takes.
DOWNLOAD = "DOWNLOAD"
WARNING = "WARNING"
CANCEL_REJECTED = "CANCEL_REJECTED"

ACTION_STATUSES = (
    SCHEDULED, WAIT_FOR_CONFIRMATION, RUNNING, RETRIEVED, CANCELING,
    CANCELED, FINISHED, ERROR, DOWNLOADED,
)
ACTIVE_STATUSES = frozenset({WAIT_FOR_CONFIRMATION, RUNNING, RETRIEVED, CANCELING})
CANCEL_STATUSES = frozenset({CANCELING, CANCELED})

# Action types.
FORCED = "FORCED"
SOFT = "SOFT"
TIMEFORCED = "TIMEFORCED"
DOWNLOAD_ONLY = "DOWNLOAD_ONLY"
ACTION_TYPES = (FORCED, SOFT, TIMEFORCED, DOWNLOAD_ONLY)

# Channels.
DEPLOYMENT = "deployment"
CANCEL = "cancel"
CONFIRMATION = "confirmation"
OPERATOR = "operator"
SERVER = "server"
DEVICE_CHANNELS = (DEPLOYMENT, CANCEL, CONFIRMATION)

# Device feedback vocabulary (DDI enums, lower case on the wire).
EXECUTIONS = ("closed", "proceeding", "canceled", "scheduled", "rejected", "resumed",
              "downloaded", "download")
FINISHED_VALUES = ("success", "failure", "none")
CONFIRMATIONS = ("confirmed", "denied")

# Effects on the target (and the action's neighbours), carried out by storage.actions.
INSTALLED = "installed"            # installedDS := DS if newer, in_sync when assigned == installed
FAILED = "failed"                  # target ERROR, assignedDS := none
DOWNLOAD_ONLY_DONE = "download_only_done"  # target IN_SYNC (installedDS unchanged)
CANCEL_COMPLETED = "cancel_completed"      # assignedDS falls back, IN_SYNC when nothing is left
REQUEST_ATTRIBUTES = "request_attributes"  # ask the device for its configData again
ASSIGNED = "assigned"              # assignedDS := DS, PENDING (a rollout group's action starts)

ANY = None

# Which quotas (contract §4.4.4, §4.6) an event is held to.
ALL_QUOTAS = "all"          # status entries per action and messages per entry
MESSAGE_QUOTA = "messages"  # final deployment feedback is accepted even with a full history
NO_QUOTA = "none"           # the server's own entries and cancel outcomes

Transition = collections.namedtuple(
    "Transition",
    "channel states execution finished types to_status active entry effects "
    "message quotas",
)


def _row(channel, states, execution, finished, entry, to_status=None, active=None,
         effects=(), message=None, types=ACTION_TYPES, quotas=ALL_QUOTAS):
    """`message` is the server's line; for device channels it is the default used only when the
    device sent neither details nor a code, unless it is listed in ALWAYS_SAID."""
    finished_values = FINISHED_VALUES if finished is ANY else finished
    return Transition(channel, tuple(states), execution, tuple(finished_values or (None,)),
                      tuple(types), to_status, active, entry, frozenset(effects), message,
                      quotas)


_DEPLOYABLE = (RUNNING, RETRIEVED, CANCELING)
_CONFIRMABLE = (WAIT_FOR_CONFIRMATION,)
_CANCELABLE = (WAIT_FOR_CONFIRMATION, RUNNING, RETRIEVED)
_NOT_DOWNLOAD_ONLY = (FORCED, SOFT, TIMEFORCED)
_US = "Update Server: "

TABLE = (
    # --- deployment feedback (POST deploymentBase/{id}/feedback), contract §4.4 ----------
    _row(DEPLOYMENT, _DEPLOYABLE, "closed", ("success", "none"), FINISHED, FINISHED, False,
         (INSTALLED, REQUEST_ATTRIBUTES), _US + "Target reported CLOSED with OK!",
         quotas=MESSAGE_QUOTA),
    _row(DEPLOYMENT, _DEPLOYABLE, "closed", ("failure",), ERROR, ERROR, False,
         (FAILED,), _US + "Target reported CLOSED with ERROR!", quotas=MESSAGE_QUOTA),
    _row(DEPLOYMENT, _DEPLOYABLE, "downloaded", ANY, DOWNLOADED, DOWNLOADED, False,
         (DOWNLOAD_ONLY_DONE, REQUEST_ATTRIBUTES), _US + "Target confirmed download finished",
         types=(DOWNLOAD_ONLY,)),
    _row(DEPLOYMENT, _DEPLOYABLE, "downloaded", ANY, DOWNLOADED,
         message=_US + "Target confirmed download finished", types=_NOT_DOWNLOAD_ONLY),
    _row(DEPLOYMENT, _DEPLOYABLE, "download", ANY, DOWNLOAD,
         message=_US + "Target confirmed download start"),
    # `canceled` on the deployment channel is only a report: the action stays open.
    _row(DEPLOYMENT, _DEPLOYABLE, "canceled", ANY, CANCELED,
         message=_US + "Target confirmed cancellation."),
    _row(DEPLOYMENT, _DEPLOYABLE, "rejected", ANY, WARNING,
         message=_US + "Target REJECTED update"),
    _row(DEPLOYMENT, _DEPLOYABLE, "proceeding", ANY, RUNNING,
         message=_US + "Target reported proceeding"),
    _row(DEPLOYMENT, _DEPLOYABLE, "scheduled", ANY, RUNNING,
         message=_US + "Target reported scheduled"),
    _row(DEPLOYMENT, _DEPLOYABLE, "resumed", ANY, RUNNING,
         message=_US + "Target reported resumed"),

    # --- cancel feedback (POST cancelAction/{id}/feedback), contract §4.6 -----------------
    # Only `closed` completes a cancellation; `canceled` here is not a completion (§9.1).
    _row(CANCEL, (CANCELING,), "closed", ("success", "none"), CANCELED, CANCELED, False,
         (CANCEL_COMPLETED,), _US + "Cancellation completion is finished successfully.",
         quotas=NO_QUOTA),
    _row(CANCEL, (CANCELING,), "closed", ("failure",), ERROR, RUNNING,
         message=_US + "Cancellation failed, the action continues.", quotas=NO_QUOTA),
    _row(CANCEL, (CANCELING,), "rejected", ANY, CANCEL_REJECTED, RUNNING,
         message=_US + "Target rejected the cancellation, the action continues.",
         quotas=NO_QUOTA),
    _row(CANCEL, (CANCELING,), "canceled", ANY, WARNING,
         message=_US + "Target reported cancel for a cancel which is not supported; "
                       "send closed to confirm a cancellation."),
    _row(CANCEL, (CANCELING,), "proceeding", ANY, RUNNING,
         message=_US + "Target reported proceeding"),
    _row(CANCEL, (CANCELING,), "scheduled", ANY, RUNNING,
         message=_US + "Target reported scheduled"),
    _row(CANCEL, (CANCELING,), "resumed", ANY, RUNNING,
         message=_US + "Target reported resumed"),
    _row(CANCEL, (CANCELING,), "download", ANY, RUNNING,
         message=_US + "Target reported download"),
    _row(CANCEL, (CANCELING,), "downloaded", ANY, RUNNING,
         message=_US + "Target reported downloaded"),

    # --- confirmation feedback (POST confirmationBase/{id}/feedback), contract §4.11 ------
    _row(CONFIRMATION, _CONFIRMABLE, "confirmed", (), RUNNING, RUNNING,
         message=_US + "Target confirmed action. Therefore, it will be set to the running "
                       "state to proceed with the deployment."),
    _row(CONFIRMATION, _CONFIRMABLE, "denied", (), WAIT_FOR_CONFIRMATION,
         message=_US + "Target rejected action. Action will stay in confirmation pending state."),

    # --- the operator (Management API), mgmt contract §5.4 ---------------------------------
    _row(OPERATOR, _CANCELABLE, "cancel", (), CANCELING, CANCELING,
         message=_US + "manual cancelation requested", quotas=NO_QUOTA),
    _row(OPERATOR, _CANCELABLE, "cancel_obsolete", (), CANCELING, CANCELING,
         message=_US + "cancel obsolete action due to new update", quotas=NO_QUOTA),
    _row(OPERATOR, _CANCELABLE, "close_obsolete", (), CANCELED, CANCELED, False,
         message=_US + "close obsolete action due to new update", quotas=NO_QUOTA),
    _row(OPERATOR, (CANCELING,), "force_quit", (), CANCELED, CANCELED, False,
         (CANCEL_COMPLETED,), _US + "A force quit has been performed.", quotas=NO_QUOTA),
    _row(OPERATOR, _CONFIRMABLE, "confirmed", (), RUNNING, RUNNING,
         message=_US + "Action confirmed by the operator.", quotas=NO_QUOTA),
    _row(OPERATOR, _CONFIRMABLE, "denied", (), WAIT_FOR_CONFIRMATION,
         message=_US + "Action denied by the operator; it stays waiting for confirmation.",
         quotas=NO_QUOTA),

    # --- the server itself -----------------------------------------------------------------
    _row(SERVER, (RUNNING, RETRIEVED), "retrieved", (), RETRIEVED, RETRIEVED,
         message=_US + "Target retrieved update action and should start now the download."),
    _row(SERVER, (CANCELING,), "retrieved", (), RETRIEVED,
         message=_US + "Target retrieved cancel action and should start now the cancellation."),
    _row(SERVER, (RUNNING, RETRIEVED), "download", (), DOWNLOAD,
         message=_US + "Target downloads %(path)s"),
    # Without the server prefix on purpose: hawkBit shows this line in the device's history.
    _row(SERVER, _CANCELABLE, "window_lapsed", (), CANCELING, CANCELING,
         message="manual cancelation requested", quotas=NO_QUOTA),
    _row(SERVER, _CONFIRMABLE, "auto_confirmed", (), RUNNING, RUNNING,
         message="Assignment automatically confirmed by initiator '%(initiator)s'. \n \n"
                 "Auto confirmation activated by system user: '%(creator)s' \n \n"
                 "Remark: %(remark)s",
         quotas=NO_QUOTA),
    # A rollout's actions wait, inactive and unseen by their devices, until their group starts
    # (storage.rollout_engine); earlier open actions of the target are superseded before.
    _row(SERVER, (SCHEDULED,), "rollout_started", (), RUNNING, RUNNING, True, (ASSIGNED,),
         _US + "Started by rollout '%(rollout)s', group '%(group)s'", quotas=NO_QUOTA),
    _row(SERVER, (SCHEDULED,), "rollout_started_unconfirmed", (), WAIT_FOR_CONFIRMATION,
         WAIT_FOR_CONFIRMATION, True, (ASSIGNED,),
         _US + "Started by rollout '%(rollout)s', group '%(group)s'; waiting for the "
               "confirmation by the device", quotas=NO_QUOTA),
    _row(SERVER, (SCHEDULED,), "rollout_stopped", (), CANCELED, CANCELED, False,
         message=_US + "Rollout '%(rollout)s' stopped before this action started",
         quotas=NO_QUOTA),
)

# Lines the server adds to a device report in any case, not only as a default.
ALWAYS_SAID = frozenset({
    (CANCEL, "closed", "success"), (CANCEL, "closed", "none"),
    (CANCEL, "closed", "failure"), (CANCEL, "rejected", None), (CANCEL, "canceled", None),
    (CONFIRMATION, "confirmed", None), (CONFIRMATION, "denied", None),
})


def _index(table):
    index = {}
    for row in table:
        for state in row.states:
            for finished in row.finished:
                for action_type in row.types:
                    key = (row.channel, state, row.execution, finished, action_type)
                    if key in index:
                        raise ValueError("transition table has two rows for %r" % (key,))
                    index[key] = row
    return index


_INDEX = _index(TABLE)


def transition(channel, status, execution, finished, action_type):
    """The row for this event, or None when the table has none (see `refusal`)."""
    return _INDEX.get((channel, status, execution, finished, action_type))


def server_line_always_said(channel, execution, finished):
    return ((channel, execution, finished) in ALWAYS_SAID
            or (channel, execution, None) in ALWAYS_SAID)


# What happens to an event the table has no row for.
LATE_REPORT = "late_report"        # 200, kept as a late report, the action is not touched
EMPTY_NOT_FOUND = "empty_not_found"  # 404 without a body
NOT_CANCELABLE = "not_cancelable"  # 405 with hawkBit's notCancelable body
NOT_FORCE_QUITABLE = "not_force_quitable"  # 405 notForceQuitable
IGNORED = "ignored"                # a server-side event that does not apply: nothing happens


def refusal(channel, execution, active):
    """How an event outside the table is answered.

    Device feedback for a closed action is a late report, on every channel: hawkBit answers 410,
    and SWUpdate >= 2023.12 then retries its start-up report forever.
    """
    if channel in DEVICE_CHANNELS and not active:
        return LATE_REPORT
    if channel == DEPLOYMENT or channel == CONFIRMATION:
        return EMPTY_NOT_FOUND
    if channel == CANCEL:
        return NOT_CANCELABLE
    if channel == OPERATOR:
        if execution == "force_quit":
            return NOT_FORCE_QUITABLE
        if execution in ("confirmed", "denied"):
            return EMPTY_NOT_FOUND
        if execution == "cancel":
            return NOT_CANCELABLE
    return IGNORED
