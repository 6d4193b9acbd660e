"""How much the store holds, for /metrics: targets by update status, actions by status, and
the artifacts with their bytes. Each figure is one grouped query over a table or an index,
cheap enough to run on every scrape (about 45 ms for 100k targets with 200k actions); nothing
here is cached or written.

Statuses are given in lower case, as the Management API shows them (`in_sync`), and every
status the rules know is present, with 0 when no row has it, so that a series does not vanish
when its last target or action moves on.
"""

import collections

from storage import transitions
from storage.db import database, snapshot

# Every update status a target takes (storage.catalog, ddi, assignments, actions).
TARGET_UPDATE_STATUSES = ("UNKNOWN", "REGISTERED", "PENDING", "IN_SYNC", "ERROR")


def store_counts():
    """`targets` and `actions`: status -> count. `artifacts`, `artifact_bytes`: the artifact
    rows (of deleted modules too) and their sizes added up. `blobs`, `blob_bytes`: the files
    of the blob store, where artifacts of the same content share one. Read in one
    transaction, so that the figures agree with each other."""
    with snapshot():
        targets = _by_status("SELECT update_status, COUNT(*) FROM target GROUP BY update_status",
                             TARGET_UPDATE_STATUSES)
        actions = _by_status('SELECT status, COUNT(*) FROM "action" GROUP BY status',
                             transitions.ACTION_STATUSES)
        artifacts, artifact_bytes = database.execute_sql(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM artifact").fetchone()
        # One size per content: the sha1 index walks each blob once.
        blobs, blob_bytes = database.execute_sql(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM artifact "
            "GROUP BY sha1) AS blob").fetchone()
    return {"targets": targets, "actions": actions,
            "artifacts": artifacts, "artifact_bytes": int(artifact_bytes),
            "blobs": blobs, "blob_bytes": int(blob_bytes)}


def _by_status(sql, known):
    counts = collections.OrderedDict((status.lower(), 0) for status in known)
    for status, count in database.execute_sql(sql):
        counts[status.lower()] = count
    return counts
