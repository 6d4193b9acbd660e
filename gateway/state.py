"""What the gateway remembers, in its own SQLite file `gateway.sqlite` in the data directory:
the last upstream answer to each device resource, the devices it knows (with a hash of the
token upstream accepted, for pass-through authentication), the artifacts of each device's
relayed deployment, the actions a device closed before upstream heard of it, and the outbox.

A file of its own rather than tables in the main store: the gateway's state is a cache and a
queue of upstream's, with no rule of storage/ behind it, and keeping it apart leaves the
main store's schema and migrations (which must stay portable to PostgreSQL) untouched.
Deleting gateway.sqlite loses only reports not yet delivered. In pass-through mode a report
keeps the device's Authorization header, to be delivered with it, until it is delivered.

One connection, shared by the request threads and the delivery thread under a lock; WAL with
synchronous=FULL, so that a commit is on disk (fsync'd) when it returns.
"""

import collections
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS answer (
    controller_id TEXT NOT NULL, resource TEXT NOT NULL, status INTEGER NOT NULL,
    body BLOB NOT NULL, fetched_ms INTEGER NOT NULL, PRIMARY KEY (controller_id, resource));
CREATE TABLE IF NOT EXISTS device (
    controller_id TEXT PRIMARY KEY, token_hash TEXT, sleep_seconds INTEGER,
    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS artifact (
    controller_id TEXT NOT NULL, module_id TEXT NOT NULL, filename TEXT NOT NULL,
    action_id TEXT NOT NULL, sha1 TEXT NOT NULL, size INTEGER NOT NULL, hashes TEXT NOT NULL,
    href TEXT NOT NULL, PRIMARY KEY (controller_id, module_id, filename));
CREATE TABLE IF NOT EXISTS closed_action (
    controller_id TEXT NOT NULL, action_id TEXT NOT NULL, PRIMARY KEY (controller_id, action_id));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, controller_id TEXT NOT NULL, method TEXT NOT NULL,
    resource TEXT NOT NULL, body BLOB NOT NULL, auth TEXT, created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_ms INTEGER,
    answer_status INTEGER);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (controller_id, id) WHERE delivered_ms IS NULL;
CREATE INDEX IF NOT EXISTS outbox_last ON outbox (controller_id, id);
"""

StoredAnswer = collections.namedtuple("StoredAnswer", "status body fetched_ms")
RelayedArtifact = collections.namedtuple(
    "RelayedArtifact", "controller_id module_id filename action_id sha1 size hashes href")
OutboxItem = collections.namedtuple(
    "OutboxItem", "id controller_id method resource body auth created_ms attempts")


class GatewayState:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    def _read(self, sql, args=()):
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, *statements):
        """Run (sql, args) statements in one transaction, committed to disk on return."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = None
                for sql, args in statements:
                    cursor = self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cursor

    # --- upstream answers -------------------------------------------------------------------

    def answer(self, controller_id, resource):
        rows = self._read("SELECT status, body, fetched_ms FROM answer WHERE controller_id = ? "
                          "AND resource = ?", (controller_id, resource))
        return StoredAnswer(*rows[0]) if rows else None

    def store_answer(self, controller_id, resource, status, body, now):
        self._write(("INSERT OR REPLACE INTO answer VALUES (?, ?, ?, ?, ?)",
                     (controller_id, resource, status, body, now)))

    def forget_answers(self, controller_id, forget):
        """Drop the device's answers whose resource `forget(resource)` says are done with."""
        done = [resource for (resource,) in self._read(
            "SELECT resource FROM answer WHERE controller_id = ?", (controller_id,))
            if forget(resource)]
        if done:
            self._write(*[("DELETE FROM answer WHERE controller_id = ? AND resource = ?",
                           (controller_id, resource)) for resource in done])

    def make_stale(self, controller_id, resource):
        """The device's next request for the resource asks upstream again."""
        self._write(("UPDATE answer SET fetched_ms = 0 WHERE controller_id = ? AND resource = ?",
                     (controller_id, resource)))

    # --- devices ----------------------------------------------------------------------------

    def device(self, controller_id):
        rows = self._read("SELECT token_hash, sleep_seconds FROM device WHERE controller_id = ?",
                          (controller_id,))
        return rows[0] if rows else None

    def note_device(self, controller_id, now, token_hash=None, sleep_seconds=None):
        """Remember a device upstream answered for (its token's hash and sleep when given)."""
        self._write(("INSERT INTO device (controller_id, token_hash, sleep_seconds, "
                     "first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (controller_id) DO UPDATE SET "
                     "token_hash = COALESCE(excluded.token_hash, token_hash), "
                     "sleep_seconds = COALESCE(excluded.sleep_seconds, sleep_seconds), "
                     "last_seen_ms = excluded.last_seen_ms",
                     (controller_id, token_hash, sleep_seconds, now, now)))

    def forget_token(self, controller_id):
        self._write(("UPDATE device SET token_hash = NULL WHERE controller_id = ?",
                     (controller_id,)))

    def devices(self):
        return self._read("SELECT controller_id, first_seen_ms, last_seen_ms, sleep_seconds "
                          "FROM device ORDER BY controller_id")

    # --- the artifacts of relayed deployments ----------------------------------------------

    def set_artifacts(self, controller_id, action_id, artifacts):
        """The artifacts of the device's relayed deployment `action_id` (replacing any other
        action's: a device has one deployment at a time)."""
        self._write(("DELETE FROM artifact WHERE controller_id = ?", (controller_id,)),
                    *[("INSERT OR REPLACE INTO artifact VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       tuple(artifact)) for artifact in artifacts])

    def clear_artifacts(self, controller_id):
        """Forget the device's relayed artifacts; whether it had any."""
        cursor = self._write(("DELETE FROM artifact WHERE controller_id = ?", (controller_id,)))
        return cursor.rowcount > 0

    def artifact(self, controller_id, module_id, filename):
        rows = self._read("SELECT * FROM artifact WHERE controller_id = ? AND module_id = ? "
                          "AND filename = ?", (controller_id, module_id, filename))
        return RelayedArtifact(*rows[0]) if rows else None

    def artifacts_in_use(self):
        return {row[0] for row in self._read("SELECT DISTINCT sha1 FROM artifact")}

    # --- actions closed here before upstream knows ----------------------------------------

    def close_action(self, controller_id, action_id):
        self._write(("INSERT OR IGNORE INTO closed_action VALUES (?, ?)",
                     (controller_id, action_id)))

    def reopen_action(self, controller_id, action_id):
        self._write(("DELETE FROM closed_action WHERE controller_id = ? AND action_id = ?",
                     (controller_id, action_id)))

    def closed_actions(self, controller_id):
        return {row[0] for row in self._read(
            "SELECT action_id FROM closed_action WHERE controller_id = ?", (controller_id,))}

    def keep_closed_actions(self, controller_id, still_shown):
        """Forget closed actions upstream no longer shows the device (it has the report)."""
        for action_id in self.closed_actions(controller_id) - set(still_shown):
            self.reopen_action(controller_id, action_id)

    # --- the outbox -------------------------------------------------------------------------

    def enqueue(self, controller_id, method, resource, body, auth, now):
        """Add a report to the device's outbox, durably; False when it repeats the device's
        previous report exactly (a retry after a lost answer), which is not added again."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT method, resource, body FROM outbox WHERE controller_id = ? "
                    "ORDER BY id DESC LIMIT 1", (controller_id,)).fetchone()
                if last is not None and tuple(last) == (method, resource, body):
                    self._db.execute("COMMIT")
                    return False
                self._db.execute(
                    "INSERT INTO outbox (controller_id, method, resource, body, auth, created_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (controller_id, method, resource, body, auth, now))
                self._db.execute("COMMIT")
                return True
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending_devices(self):
        """Devices with reports to deliver, the one waiting longest first."""
        return [row[0] for row in self._read(
            "SELECT controller_id FROM outbox WHERE delivered_ms IS NULL "
            "GROUP BY controller_id ORDER BY MIN(id)")]

    def next_pending(self, controller_id):
        rows = self._read("SELECT id, controller_id, method, resource, body, auth, created_ms, "
                          "attempts FROM outbox WHERE controller_id = ? AND delivered_ms IS NULL "
                          "ORDER BY id LIMIT 1", (controller_id,))
        return OutboxItem(*rows[0]) if rows else None

    def delivered(self, item, status, now):
        """Mark an item delivered with upstream's answer, in one transaction. The device's
        earlier delivered items go: only its last report is needed, to recognise a retry."""
        self._write(("UPDATE outbox SET delivered_ms = ?, answer_status = ?, "
                     "attempts = attempts + 1, auth = NULL WHERE id = ?", (now, status, item.id)),
                    ("DELETE FROM outbox WHERE controller_id = ? AND id < ? AND delivered_ms "
                     "IS NOT NULL", (item.controller_id, item.id)))

    def attempt_failed(self, item_id, error):
        self._write(("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                     (error, item_id)))

    def outbox_figures(self):
        rows = self._read("SELECT COUNT(*), MIN(created_ms), COUNT(DISTINCT controller_id) "
                          "FROM outbox WHERE delivered_ms IS NULL")
        depth, oldest, devices = rows[0]
        return {"depth": depth, "oldestCreatedAt": oldest, "devices": devices}

    def outbox_items(self, limit=100):
        return self._read("SELECT id, controller_id, method, resource, created_ms, attempts, "
                          "last_error FROM outbox WHERE delivered_ms IS NULL ORDER BY id "
                          "LIMIT ?", (limit,))
