"""The software a distribution set offers devices, kept between requests, and when it is stale.

deploymentBase, installedBase, confirmationBase/{actionId} and a module's artifact list all
show the same facts about the modules of a set: their part, version and name, whether they are
encrypted, their artifacts (file name, hashes, size) and their target-visible metadata (DDI
contract §4.3.3). Reading them took three queries built by Peewee on every request, most of the
request's time. A `ChunkCache` keeps them per set as plain tuples, read once by hand-written SQL;
`storage.ddi` adds what belongs to one request (links built from the request's URL, the action,
its download and update values, the maintenance window, the history).

When a cached set is stale: the database holds a software generation, one integer in the single
row of `software_generation`. Triggers add one to it in the same transaction as every insert,
update or delete of a row the chunks are read from: software modules, module types, artifacts,
module metadata, and which modules a set holds. Every read compares the generation the set was
read at with the stored one (one row by its primary key, which `storage.ddi` reads in the same
statement as the action) and reads the set again when they differ. A miss reads the generation
and the rows in one read transaction, one WAL snapshot, so a cached set is never labelled with
a generation its rows do not match.

Why a counter in the database, bumped by triggers:

- It is right across processes. Whatever writes the file (a second server on the same data
  directory, a tool, the sqlite3 shell) bumps the same counter in the same commit; a counter in
  this process's memory would not see those writes, and a device would be sent a hash or file
  name that no longer exists.
- It is right on every path. No write function of `storage/` has to remember to bump it, nor
  one written later; unlocking a set or a module and changing it, flipping `targetVisible` on
  metadata of a locked module, soft and hard deletes and purges all go through the triggers.
- Cheap where it matters: software changes are an operator's rare writes, so one counter for
  all sets is enough; the device writes (feedback, poll times, attributes) touch none of these
  tables and never invalidate anything. `PRAGMA data_version` was the other candidate: it
  changes with every commit of any other connection, so under device load it would throw the
  cache away hundreds of times a second, and it does not change for this connection's own
  commits.
- A restore copies a database with its counter and triggers, onto a stopped server; a cache
  belongs to one app (`ddi_lite.create_app` makes it), so the server it starts begins empty. A
  database written before the counter existed gets it when it is opened (`storage.open_store`).
"""

import collections
import threading

from storage.db import create_trigger, database, scalar, snapshot

# hawkBit's legacy names of module types in DDI chunks; Zephyr requires `bApp`.
CHUNK_PARTS = {"application": "bApp", "runtime": "jvm"}
MAX_VISIBLE_METADATA = 50
# Sets a cache holds at most; one asked for beyond that pushes out the one read longest ago.
MAX_CACHED_SETS = 256

# The tables the chunks are read from: a change to any row of them bumps the generation.
SOURCE_TABLES = ("software_module", "software_module_type", "artifact",
                 "software_module_metadata", "distribution_set_module")

Chunk = collections.namedtuple("Chunk", "module_id part version name encrypted artifacts metadata")
# `metadata` is a tuple of (key, value) pairs, the target-visible entries by key.
ChunkArtifact = collections.namedtuple("ChunkArtifact", "filename sha1 md5 sha256 size")


# --- the generation --------------------------------------------------------------------------

def create_generation(db):
    """Add the generation row and its triggers to a database (new, or written before them)."""
    db.execute_sql('CREATE TABLE IF NOT EXISTS "software_generation" ('
                   '"id" INTEGER NOT NULL PRIMARY KEY CHECK ("id" = 1), '
                   '"generation" INTEGER NOT NULL)')
    db.execute_sql('INSERT INTO "software_generation" ("id", "generation") '
                   'VALUES (1, 1) ON CONFLICT DO NOTHING')
    for table in SOURCE_TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            create_trigger(db, "software_generation_%s_%s" % (table, event.lower()), event, table,
                           'UPDATE "software_generation" SET "generation" = "generation" + 1 '
                           'WHERE "id" = 1;')


# A scalar subquery too, for statements that read the generation with their own rows.
GENERATION_QUERY = 'SELECT "generation" FROM "software_generation" WHERE "id" = 1'


def generation():
    return scalar(GENERATION_QUERY)


# --- reading a set ---------------------------------------------------------------------------

_MODULES = (
    'SELECT "m"."id", "t"."key", "m"."version", "m"."name", "m"."encrypted" '
    'FROM "distribution_set_module" AS "dm" '
    'JOIN "software_module" AS "m" ON "m"."id" = "dm"."module_id" '
    'JOIN "software_module_type" AS "t" ON "t"."id" = "m"."module_type_id" '
    'WHERE "dm"."distribution_set_id" = ? ORDER BY "m"."id"')
_ARTIFACTS = (
    'SELECT "a"."module_id", "a"."filename", "a"."sha1", "a"."md5", "a"."sha256", "a"."size" '
    'FROM "distribution_set_module" AS "dm" '
    'JOIN "artifact" AS "a" ON "a"."module_id" = "dm"."module_id" '
    'WHERE "dm"."distribution_set_id" = ? ORDER BY "a"."id"')
_METADATA = (
    'SELECT "md"."module_id", "md"."key", "md"."value" '
    'FROM "distribution_set_module" AS "dm" '
    'JOIN "software_module_metadata" AS "md" ON "md"."module_id" = "dm"."module_id" '
    'WHERE "dm"."distribution_set_id" = ? AND "md"."target_visible" ORDER BY "md"."key"')


def read_set(distribution_set_id):
    """(generation, chunks) of a set, read from one snapshot: its modules by id, each with its
    artifacts by id and its first target-visible metadata entries by key."""
    with snapshot():
        current = generation()
        modules = database.execute_sql(_MODULES, (distribution_set_id,)).fetchall()
        artifacts = collections.defaultdict(list)
        for module_id, *fields in database.execute_sql(_ARTIFACTS, (distribution_set_id,)):
            artifacts[module_id].append(ChunkArtifact(*fields))
        metadata = collections.defaultdict(list)
        for module_id, key, value in database.execute_sql(_METADATA, (distribution_set_id,)):
            metadata[module_id].append((key, value))
    return current, tuple(
        Chunk(module_id, CHUNK_PARTS.get(type_key, type_key), version, name, bool(encrypted),
              tuple(artifacts[module_id]), tuple(metadata[module_id][:MAX_VISIBLE_METADATA]))
        for module_id, type_key, version, name, encrypted in modules)


class ChunkCache:
    """The chunks of the sets devices asked for, each with the generation it was read at.

    One per app, which serves one database: a generation number tells what changed in that
    database only. Another one, such as a restored backup changed on its own, may reach the
    same number with other rows.
    """

    def __init__(self, max_sets=MAX_CACHED_SETS):
        self.max_sets = max_sets
        self._sets = {}
        self._lock = threading.Lock()

    def chunks(self, distribution_set_id, current=None):
        """The set's chunks (a tuple of `Chunk`), as new as the software generation `current`
        the caller read (or this reads now, when None) at least."""
        cached = self._sets.get(distribution_set_id)
        if cached is not None and cached[0] == (generation() if current is None else current):
            return cached[1]
        entry = read_set(distribution_set_id)
        with self._lock:
            self._sets.pop(distribution_set_id, None)
            if len(self._sets) >= self.max_sets:
                del self._sets[next(iter(self._sets))]
            self._sets[distribution_set_id] = entry
        return entry[1]

    def module(self, distribution_set_id, module_id):
        """The chunk of one module of the set, or None when the set does not hold it."""
        for chunk in self.chunks(distribution_set_id):
            if chunk.module_id == module_id:
                return chunk
        return None
