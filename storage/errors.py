"""The errors the store raises, named after the hawkBit exceptions they stand for.

Each error carries hawkBit's `errorCode` and `exceptionClass`, because devices and operator tools
see those strings. Which HTTP status an error becomes is decided in one place, in `ddi_lite.py`.
"""

_REPO = "org.eclipse.hawkbit.repository.exception."


class StoreError(Exception):
    """Base of every rule violation the store reports to a client."""

    error_code = "hawkbit.server.error.repo.genericError"
    exception_class = "org.eclipse.hawkbit.exception.GenericSpServerException"

    def __init__(self, message, info=None):
        super().__init__(message)
        self.message = message
        self.info = info


class EntityNotFound(StoreError):
    error_code = "hawkbit.server.error.repo.entityNotFound"
    exception_class = _REPO + "EntityNotFoundException"

    def __init__(self, entity_type, entity_id):
        super().__init__(
            "%s with given identifier {%s} does not exist." % (entity_type, entity_id),
            {"type": entity_type, "entityId": entity_id},
        )


class ActionNotOfTarget(EntityNotFound):
    """An action id that exists but belongs to another target: same code, no info (hawkBit)."""

    def __init__(self, action_id, controller_id):
        StoreError.__init__(
            self, "Not a valid action (%s) for target: %s" % (action_id, controller_id)
        )


class ModuleNotAssigned(StoreError):
    error_code = "hawkbit.server.error.repo.entityNotFound"
    exception_class = _REPO + "SoftwareModuleNotAssignedToTargetException"

    def __init__(self, module_id, controller_id):
        super().__init__(
            "No assignment found for SoftwareModule with id {%s} to Target with id {%s}."
            % (module_id, controller_id)
        )


class EmptyNotFound(StoreError):
    """A resource that does not apply to the action's current state: 404 with no body."""

    def __init__(self, message="not applicable"):
        super().__init__(message)


class BodyNotReadable(StoreError):
    error_code = "hawkbit.server.error.rest.body.notReadable"
    exception_class = "org.eclipse.hawkbit.rest.exception.MessageNotReadableException"

    def __init__(self, message="The given request body is not well formed"):
        super().__init__(message)


class ConstraintViolation(StoreError):
    error_code = "hawkbit.server.error.repo.constraintViolation"
    exception_class = "jakarta.validation.ConstraintViolationException"


class InvalidTargetAttributes(StoreError):
    error_code = "hawkbit.server.error.repo.invalidTargetAttributes"
    exception_class = _REPO + "InvalidTargetAttributeException"


class QuotaExceeded(StoreError):
    error_code = "hawkbit.server.error.quota.tooManyEntries"
    exception_class = _REPO + "AssignmentQuotaExceededException"


class NotCancelable(StoreError):
    error_code = "hawkbit.server.error.action.notCancelable"
    exception_class = _REPO + "CancelActionNotAllowedException"

    def __init__(self, message="The action is not in canceling state."):
        super().__init__(message)


class NotForceQuitable(StoreError):
    error_code = "hawkbit.server.error.action.notForceQuitable"
    exception_class = _REPO + "ForceQuitActionNotAllowedException"

    def __init__(self, message="The action is not in canceling state and cannot be force quit."):
        super().__init__(message)


class AutoConfirmAlreadyActive(StoreError):
    error_code = "hawkbit.server.error.repo.autoConfAlreadyActive"
    exception_class = _REPO + "AutoConfirmationAlreadyActiveException"


class EntityAlreadyExists(StoreError):
    error_code = "hawkbit.server.error.repo.entityAlreadyExists"
    exception_class = _REPO + "EntityAlreadyExistsException"


class IncompleteDistributionSet(StoreError):
    error_code = "hawkbit.server.error.distributionset.incomplete"
    exception_class = _REPO + "IncompleteDistributionSetException"


class InvalidDistributionSet(StoreError):
    error_code = "hawkbit.server.error.distributionset.invalid"
    exception_class = _REPO + "InvalidDistributionSetException"


class InvalidMaintenanceSchedule(StoreError):
    error_code = "hawkbit.server.error.maintenanceScheduleInvalid"
    exception_class = _REPO + "InvalidMaintenanceScheduleException"
