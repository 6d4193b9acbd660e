"""The operator's catalogue: targets, module and set types, software modules, artifacts and
distribution sets. Creating and reading them; assigning them is `storage.assignments`.
"""

import secrets

from storage.db import write
from storage.ddi import validate_controller_id
from storage.errors import EntityAlreadyExists
from storage.models import (Artifact, DistributionSet, DistributionSetModule,
                            DistributionSetType, DistributionSetTypeModule, SoftwareModule,
                            SoftwareModuleType, Target, get_existing)

SYSTEM = "system"

# hawkBit's bootstrap types (mgmt contract §8.1); `os_app` is the default set type.
BOOTSTRAP_MODULE_TYPES = (
    ("os", "OS", "Operating system image", 1),
    ("application", "Application", "Add-on software", 2147483647),
)
BOOTSTRAP_SET_TYPES = (
    ("os", "OS only", "Firmware/OS only", ("os",), ()),
    ("app", "App(s) only", "Application(s) only", ("application",), ()),
    ("os_app", "OS with app(s)", "Firmware/OS with optional application(s)", ("os",),
     ("application",)),
)


def _audit(now, user):
    return dict(created_at=now, created_by=user, last_modified_at=now, last_modified_by=user)


def bootstrap(now):
    """Create hawkBit's default types on an empty database."""
    # Either kind of type left means an operator's database: types can be deleted now, and
    # bringing back hawkBit's would collide with a type given one of their keys since.
    if SoftwareModuleType.select().exists() or DistributionSetType.select().exists():
        return
    with write():
        module_types = {}
        for key, name, description, max_assignments in BOOTSTRAP_MODULE_TYPES:
            module_types[key] = SoftwareModuleType.create(
                key=key, name=name, description=description, max_assignments=max_assignments,
                min_artifacts=0, **_audit(now, SYSTEM))
        for key, name, description, mandatory, optional in BOOTSTRAP_SET_TYPES:
            set_type = DistributionSetType.create(key=key, name=name, description=description,
                                                  **_audit(now, SYSTEM))
            for module_key in mandatory:
                DistributionSetTypeModule.create(set_type=set_type,
                                                 module_type=module_types[module_key],
                                                 mandatory=True)
            for module_key in optional:
                DistributionSetTypeModule.create(set_type=set_type,
                                                 module_type=module_types[module_key],
                                                 mandatory=False)


def create_target(controller_id, now, user, name=None, security_token=None, description=None,
                  address=None, group=None, target_type=None):
    validate_controller_id(controller_id)
    with write():
        if Target.select().where(Target.controller_id == controller_id).exists():
            raise EntityAlreadyExists("Target with controller id '%s' already exists."
                                      % controller_id)
        return Target.create(
            controller_id=controller_id, name=(name or controller_id)[:128],
            description=description, security_token=security_token or secrets.token_hex(16),
            address=address, group=group, update_status="UNKNOWN", request_attributes=True,
            attributes={}, target_type=target_type, **_audit(now, user))


def module_type_by_key(key):
    module_type = get_existing(SoftwareModuleType, SoftwareModuleType.key == key,
                               "SoftwareModuleType", key)
    return module_type


def set_type_by_key(key):
    set_type = get_existing(DistributionSetType, DistributionSetType.key == key,
                            "DistributionSetType", key)
    return set_type


def create_module(type_key, name, version, now, user, description=None, vendor=None,
                  encrypted=False):
    module_type = module_type_by_key(type_key)
    with write():
        if SoftwareModule.select().where((SoftwareModule.module_type == module_type)
                                         & (SoftwareModule.name == name)
                                         & (SoftwareModule.version == version)).exists():
            raise EntityAlreadyExists("Software module '%s:%s' of type '%s' already exists."
                                      % (name, version, type_key))
        return SoftwareModule.create(module_type=module_type, name=name, version=version,
                                     description=description, vendor=vendor,
                                     encrypted=encrypted, **_audit(now, user))


def add_artifact(module, filename, blob, now, user):
    """Record an artifact whose bytes are already in the blob store."""
    with write():
        if Artifact.select().where((Artifact.module == module)
                                   & (Artifact.filename == filename)).exists():
            raise EntityAlreadyExists("Artifact '%s' already exists in software module %d."
                                      % (filename, module.id))
        return Artifact.create(module=module, filename=filename, size=blob.size,
                               sha1=blob.sha1, md5=blob.md5, sha256=blob.sha256,
                               **_audit(now, user))


def create_distribution_set(name, version, module_ids, now, user, type_key="os_app",
                            description=None, required_migration_step=False):
    set_type = set_type_by_key(type_key)
    modules = []
    for module_id in module_ids:
        module = get_existing(SoftwareModule, SoftwareModule.id == module_id,
                              "SoftwareModule", module_id)
        modules.append(module)
    with write():
        if DistributionSet.select().where((DistributionSet.name == name)
                                          & (DistributionSet.version == version)
                                          & (DistributionSet.set_type == set_type)).exists():
            raise EntityAlreadyExists("Distribution set '%s:%s' already exists."
                                      % (name, version))
        distribution_set = DistributionSet.create(
            set_type=set_type, name=name, version=version, description=description,
            required_migration_step=required_migration_step, **_audit(now, user))
        for module in modules:
            DistributionSetModule.create(distribution_set=distribution_set, module=module)
        return distribution_set

