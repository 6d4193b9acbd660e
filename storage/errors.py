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


class ConcurrentModification(StoreError):
    """The database gave up a write in a conflict with another process's (a deadlock, a
    serialization failure: PostgreSQL between nodes); hawkBit answers such a race 409 too."""

    error_code = "hawkbit.server.error.repo.concurrentModification"
    exception_class = _REPO + "ConcurrentModificationException"

    def __init__(self, message="The entity was changed by another request at the same time; "
                               "try again."):
        super().__init__(message)


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


# --- Management API errors (mgmt-contract §3.2). Each docstring names the intended HTTP status.

_ARTIFACT = "org.eclipse.hawkbit.artifact.exception."


class EmptyBadRequest(StoreError):
    """400 with no body (e.g. `"requestAttributes": false` on a target update)."""

    def __init__(self, message="bad request"):
        super().__init__(message)


class EmptyGone(StoreError):
    """410 with no body (confirm/deny of an action that is no longer active)."""

    def __init__(self, message="gone"):
        super().__init__(message)


class ActionOfOtherTarget(EmptyNotFound):
    """404 with no body: the action exists but belongs to another target than the path's."""

    def __init__(self, action_id=None, controller_id=None):
        super().__init__("Action %s does not belong to target %s" % (action_id, controller_id))


class Deleted(StoreError):
    """404: modifying or assigning a soft-deleted software module or distribution set."""

    error_code = "hawkbit.server.error.deleted"
    exception_class = _REPO + "DeletedException"


class Locked(StoreError):
    """423: changing a locked distribution set or software module."""

    error_code = "hawkbit.server.error.locked"
    exception_class = _REPO + "LockedException"


class NotDeletable(StoreError):
    """405: purging an action whose status is not in action.delete.allowed.statuses."""

    error_code = "hawkbit.server.error.action.notDeletable"
    exception_class = _REPO + "DeleteActionNotAllowedException"


class MultiAssignment(StoreError):
    """400: the same target (or several sets for one target) in one assignment request."""

    error_code = "hawkbit.server.error.multiAssignmentNotEnabled"
    exception_class = _REPO + "MultiAssignmentException"


class ModulesUnsupported(StoreError):
    """400: a module type that is neither mandatory nor optional in the set's type."""

    error_code = "hawkbit.server.error.distributionset.modules.unsupported"
    exception_class = _REPO + "UnsupportedSoftwareModuleForThisDistributionSetException"


class EncryptionNotSupported(StoreError):
    """400: an encrypted software module was requested; encryption is not implemented."""

    error_code = "hawkbit.server.error.artifact.encryptionNotSupported"
    exception_class = _ARTIFACT + "ArtifactEncryptionUnsupportedException"


class FileSizeQuotaExceeded(StoreError):
    """429: an uploaded artifact is larger than the per-artifact quota."""

    error_code = "hawkbit.server.error.quota.fileSizeExceeded"
    exception_class = _ARTIFACT + "FileSizeQuotaExceededException"


class StorageQuotaExceeded(StoreError):
    """429: the artifact storage quota would be exceeded."""

    error_code = "hawkbit.server.error.quota.storageExceeded"
    exception_class = _ARTIFACT + "StorageQuotaExceededException"


class UploadFailed(StoreError):
    """400: a broken multipart upload request."""

    error_code = "hawkbit.server.error.artifact.uploadFailed"
    exception_class = "org.eclipse.hawkbit.rest.exception.MultiPartFileUploadException"


class ChecksumMismatch(UploadFailed):
    """400: an upload checksum does not match the received bytes; raise one of the three
    subclasses below, which carry hawkBit's per-hash codes."""


class Md5Mismatch(ChecksumMismatch):
    """400: the given md5sum does not match."""

    error_code = "hawkbit.server.error.artifact.uploadFailed.checksum.md5.match"
    exception_class = _REPO + "InvalidMd5HashException"


class Sha1Mismatch(ChecksumMismatch):
    """400: the given sha1sum does not match."""

    error_code = "hawkbit.server.error.artifact.uploadFailed.checksum.sha1.match"
    exception_class = _REPO + "InvalidSha1HashException"


class Sha256Mismatch(ChecksumMismatch):
    """400: the given sha256sum does not match."""

    error_code = "hawkbit.server.error.artifact.uploadFailed.checksum.sha256.match"
    exception_class = _REPO + "InvalidSha256HashException"


class BinaryDeleted(StoreError):
    """410: download of an artifact whose software module is soft-deleted."""

    error_code = "hawkbit.server.error.artifact.binaryDeleted"
    exception_class = _ARTIFACT + "ArtifactBinaryNoLongerExistsException"


# --- Tags and target types (mgmt-contract §12.3, §12.4) and type writes (§8).

class EntitiesNotFound(EntityNotFound):
    """404: several ids of one request that do not exist, named in one error (hawkBit)."""

    def __init__(self, entity_type, entity_ids):
        StoreError.__init__(
            self, "%s with given identifier {[%s]} does not exist."
            % (entity_type, ", ".join(str(entity_id) for entity_id in entity_ids)),
            {"type": entity_type, "entityId": list(entity_ids)})


class IncompatibleTargetType(StoreError):
    """400: a set whose type the target's type does not list as compatible."""

    error_code = "hawkbit.server.error.target.type.incompatible"
    exception_class = _REPO + "IncompatibleTargetTypeException"


class TargetTypeInUse(StoreError):
    """409: deleting a target type that targets still have."""

    error_code = "hawkbit.server.error.target.type.used"
    exception_class = _REPO + "TargetTypeInUseException"


class TargetTypeKeyOrNameRequired(StoreError):
    """400: a target type created with neither key nor name."""

    error_code = "hawkbit.server.error.target.type.keyOrNameRequired"
    exception_class = _REPO + "TargetTypeKeyOrNameRequiredException"


class EntityReadOnly(StoreError):
    """403: changing the module types of a set type that distribution sets already use."""

    error_code = "hawkbit.server.error.entityreadonly"
    exception_class = _REPO + "EntityReadOnlyException"


class InvalidAutoAssignActionType(StoreError):
    """400: a target filter's auto-assignment asked for an action type other than forced,
    soft or downloadonly (timeforced has no time to force at)."""

    error_code = "hawkbit.server.error.repo.invalidAutoAssignActionType"
    exception_class = _REPO + "InvalidAutoAssignActionTypeException"

    def __init__(self, message="Auto-assignment takes the action types forced, soft and "
                               "downloadonly only."):
        super().__init__(message)


class RolloutIllegalState(StoreError):
    """400: a rollout verb (start, pause, ...) the rollout's status does not allow."""

    error_code = "hawkbit.server.error.rollout.illegalState"
    exception_class = _REPO + "RolloutIllegalStateException"
