"""Target tags and distribution set tags (mgmt-contract §12.3): named, coloured labels an
operator puts on targets and sets, to find them again (`tag==line-3` in a query).

The two kinds behave alike and differ in what they label, so one `_TagKind` holds the rules and
`TARGET_TAGS` and `SET_TAGS` are its two instances. Assignment bodies come in the two forms
hawkBit has taken: a plain array of ids (`["dev-1"]`, `[5]`, hawkBit >= 0.6) and an array of
objects (`[{"controllerId": "dev-1"}]`, `[{"distributionSetId": 5}]`, older hawkBit); both are
read, and an array may mix them. Documents are plain dicts without null values; writes run
inside `storage.db.write()`.
"""

from storage import fleet, query, software, tenant
from storage.coerce import BadParameter, as_int, as_list, as_object, as_str
from storage.db import write
from storage.ddi import now_ms, poll_log
from storage.documents import audit_fields, clean, link, paged
from storage.errors import (ConstraintViolation, EntitiesNotFound, EntityAlreadyExists,
                            EntityNotFound)
from storage.models import (DistributionSet, DistributionSetTag, DistributionSetTagAssignment,
                            Target, TargetTag, TargetTagAssignment)

MAX_NAME = 128
MAX_DESCRIPTION = 512
MAX_COLOUR = 16
# Ids looked up per query, as in assignments (SQLite's bound-parameter limit).
LOOKUP_CHUNK = 500

# `onNotFoundPolicy` of target tag assignment: what unknown controller ids do.
FAIL = "FAIL"  # nothing changes, 404 naming them (the default)
ON_WHAT_FOUND_AND_FAIL = "ON_WHAT_FOUND_AND_FAIL"  # the known ones change, then 404
ON_WHAT_FOUND_AND_SUCCESS = "ON_WHAT_FOUND_AND_SUCCESS"  # the known ones change, no error
POLICIES = (FAIL, ON_WHAT_FOUND_AND_FAIL, ON_WHAT_FOUND_AND_SUCCESS)


def not_found_policy(text):
    """The `onNotFoundPolicy` query parameter; an unknown value is a bad parameter (400, as
    Spring answers a value outside the enum)."""
    if text is None or not text.strip():
        return FAIL
    policy = text.strip().upper()
    if policy not in POLICIES:
        raise BadParameter("onNotFoundPolicy must be one of %s, not '%s'."
                           % (", ".join(POLICIES), text), "onNotFoundPolicy")
    return policy


class _TagKind:
    """Tags of one kind of entity: targets (keyed by controller id) or distribution sets."""

    def __init__(self, collection, model, assignment, owner_field, owner_model, owner_key,
                 entity, owner_entity, legacy_field, assigned_rel):
        self.collection = collection          # URL segment and query collection
        self.model = model                    # the tag rows
        self.assignment = assignment          # (tag, owner) rows
        self.owner_field = owner_field        # the owner's column in `assignment`
        self.owner_model = owner_model
        self.owner_key = owner_key            # how a request names an owner
        self.entity = entity                  # names in errors
        self.owner_entity = owner_entity
        self.legacy_field = legacy_field      # the owner's field in the older object form
        self.assigned_rel = assigned_rel      # the link to the tag's owners

    # --- documents ----------------------------------------------------------------------

    def document(self, base, tag, full=False):
        path = "%s/%d" % (self.collection, tag.id)
        links = {"self": link(base, path)}
        if full:
            links[self.assigned_rel] = link(base, path + "/assigned?offset=0&limit=50")
        doc = audit_fields(tag)
        doc.update({"id": tag.id, "name": tag.name, "description": tag.description,
                    "colour": tag.colour, "_links": links})
        return clean(doc)

    def tag(self, tag_id):
        tag = self.model.get_or_none(self.model.id == tag_id)
        if tag is None:
            raise EntityNotFound(self.entity, tag_id)
        return tag

    # --- the tags themselves ------------------------------------------------------------

    def _fields(self, item, name_required):
        item = as_object(item, "tag", required=True)
        name = as_str(item.get("name"), "name", required=name_required, max_length=MAX_NAME)
        if name is not None and not name.strip():
            raise ConstraintViolation("name must not be blank.", {"field": "name"})
        return {"name": name,
                "description": as_str(item.get("description"), "description",
                                      max_length=MAX_DESCRIPTION),
                "colour": as_str(item.get("colour"), "colour", max_length=MAX_COLOUR)}

    def _check_name_free(self, name, except_id=None):
        select = self.model.select().where(self.model.name == name)
        if except_id is not None:
            select = select.where(self.model.id != except_id)
        if select.exists():
            raise EntityAlreadyExists("A %s named '%s' already exists." % (self.entity, name))

    def create(self, base, body, user):
        """Create tags from an array: all of them, or none."""
        specs = [self._fields(item, True) for item in as_list(body, "tags", required=True)]
        now = now_ms()
        created = []
        with write():
            for spec in specs:
                # Rows are created as we go: a duplicate within the request is found too.
                self._check_name_free(spec["name"])
                created.append(self.model.create(
                    created_at=now, created_by=user, last_modified_at=now,
                    last_modified_by=user, **spec))
        return [self.document(base, tag) for tag in created]

    def list(self, base, q=None, sort=None, offset=None, limit=None):
        rows, total = query.page(self.model.select(), self.collection, q=q, sort=sort,
                                 offset=offset, limit=limit)
        return paged([self.document(base, row) for row in rows], total)

    def get(self, base, tag_id):
        return self.document(base, self.tag(tag_id), full=True)

    def update(self, base, tag_id, body, user):
        """Change the fields given and not null."""
        changes = {field: value for field, value in self._fields(body, False).items()
                   if value is not None}
        with write():
            tag = self.tag(tag_id)
            if "name" in changes:
                self._check_name_free(changes["name"], except_id=tag.id)
            for field, value in changes.items():
                setattr(tag, field, value)
            tag.last_modified_at = now_ms()
            tag.last_modified_by = user
            tag.save()
        return self.document(base, tag, full=True)

    def delete(self, tag_id):
        """Delete a tag; the entities it labelled lose it."""
        with write():
            tag = self.tag(tag_id)
            self.assignment.delete().where(self.assignment.tag == tag.id).execute()
            tag.delete_instance()

    # --- assignment -------------------------------------------------------------------------

    def _key(self, item):
        if isinstance(item, dict):
            item = item.get(self.legacy_field)
            field = self.legacy_field
        else:
            field = self.owner_entity
        if self.owner_key == "controller_id":
            return as_str(item, field, required=True)
        return as_int(item, field, required=True)

    def parse_keys(self, body):
        """The owners a body names, each once, in order: plain ids or objects."""
        keys = []
        for item in as_list(body, "assigned", required=True):
            key = self._key(item)
            if key not in keys:
                keys.append(key)
        if not keys:
            raise ConstraintViolation("The list of %ss must not be empty." % self.owner_entity)
        return keys

    def _owners(self, keys):
        """{key: owner row} of the keys that exist."""
        column = getattr(self.owner_model, self.owner_key)
        found = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            for row in self.owner_model.select().where(
                    column.in_(keys[start:start + LOOKUP_CHUNK])):
                found[getattr(row, self.owner_key)] = row
        return found

    def _change(self, tag_id, keys, policy, add):
        """Tag (or untag) the owners `keys` name, following `policy` for unknown ones."""
        with write():
            tag = self.tag(tag_id)
            owners = self._owners(keys)
            missing = [key for key in keys if key not in owners]
            if missing and policy == FAIL:
                raise EntitiesNotFound(self.owner_entity, missing)
            owner_column = getattr(self.assignment, self.owner_field)
            owner_ids = [owners[key].id for key in keys if key in owners]
            for start in range(0, len(owner_ids), LOOKUP_CHUNK):
                chunk = owner_ids[start:start + LOOKUP_CHUNK]
                if add:
                    self.assignment.insert_many(
                        [{"tag": tag.id, self.owner_field: owner_id} for owner_id in chunk]
                    ).on_conflict_ignore().execute()
                else:
                    self.assignment.delete().where((self.assignment.tag == tag.id)
                                                   & owner_column.in_(chunk)).execute()
        # Outside the transaction: ON_WHAT_FOUND_AND_FAIL keeps what it changed.
        if missing and policy == ON_WHAT_FOUND_AND_FAIL:
            raise EntitiesNotFound(self.owner_entity, missing)

    def assign(self, tag_id, body, policy=FAIL):
        self._change(tag_id, self.parse_keys(body), policy, add=True)

    def unassign(self, tag_id, body, policy=FAIL):
        self._change(tag_id, self.parse_keys(body), policy, add=False)

    def assign_one(self, tag_id, key):
        self._change(tag_id, [key], FAIL, add=True)

    def unassign_one(self, tag_id, key):
        self._change(tag_id, [key], FAIL, add=False)

    def tagged(self, tag):
        """A select of the owners that carry `tag`."""
        owner_ids = self.assignment.select(getattr(self.assignment, self.owner_field)).where(
            self.assignment.tag == tag.id)
        return self.owner_model.select().where(self.owner_model.id.in_(owner_ids))

    def tags_of(self, base, owner):
        """A plain array of the tags on one owner."""
        tag_ids = self.assignment.select(self.assignment.tag).where(
            getattr(self.assignment, self.owner_field) == owner.id)
        return [self.document(base, tag) for tag in
                self.model.select().where(self.model.id.in_(tag_ids)).order_by(self.model.id)]


TARGET_TAGS = _TagKind("targettags", TargetTag, TargetTagAssignment, "target", Target,
                       "controller_id", "TargetTag", "Target", "controllerId",
                       "assignedTargets")
SET_TAGS = _TagKind("distributionsettags", DistributionSetTag, DistributionSetTagAssignment,
                    "distribution_set", DistributionSet, "id", "DistributionSetTag",
                    "DistributionSet", "distributionSetId", "assignedDistributionSets")


def tagged_targets(base, tag_id, q=None, sort=None, offset=None, limit=None):
    """The targets with a tag: a page, in creation order unless `sort` says otherwise."""
    tag = TARGET_TAGS.tag(tag_id)
    poll_log.flush()
    now = now_ms()
    rows, total = query.page(TARGET_TAGS.tagged(tag), "targets", q=q, sort=sort,
                             offset=offset, limit=limit, default_order=[Target.id], now=now)
    settings = tenant.settings()
    return paged([fleet.target_document(base, row, settings=settings, now=now) for row in rows],
                 total)


def tagged_sets(base, tag_id, q=None, sort=None, offset=None, limit=None):
    """The distribution sets with a tag (soft-deleted ones too: they keep their tags)."""
    tag = SET_TAGS.tag(tag_id)
    rows, total = query.page(SET_TAGS.tagged(tag), "distributionsets", q=q, sort=sort,
                             offset=offset, limit=limit)
    return paged([software.distribution_set_document(base, row) for row in rows], total)


def tags_of_target(base, controller_id):
    target = Target.get_or_none(Target.controller_id == controller_id)
    if target is None:
        raise EntityNotFound("Target", controller_id)
    return TARGET_TAGS.tags_of(base, target)

