"""Backups of a data directory while a server runs in it, and putting one back.

A backup is a folder shaped like a data directory (the database file and its artifact blobs)
plus `manifest.json`. It is written as `<DEST>.partial-*` beside DEST and renamed to DEST only
when complete, so a folder named DEST always holds a whole backup.

The database is copied with SQLite's online backup API in one step: one read transaction, so
one consistent snapshot of every row, while the server goes on writing (WAL: readers never
block writers). The blobs are taken after that, those the snapshot's artifact rows name, each
checked against its SHA-1 and its row.

Why every blob the snapshot names is found, or the snapshot is taken again (`storage.blobs`
has the steps): a blob is moved into place before the commit of the row that names it, and
leaves its place only to the trash, inside a write transaction that deletes every row naming
it; the trash is emptied only after that transaction commits. So when the snapshot names a
blob, the blob is either in place, or in the trash of a delete in flight (the bytes are taken
from there: they are checked against their name anyway), or gone because a delete committed
after the snapshot. Only in that last case is a blob missing, and then a new snapshot is
taken: it no longer names the blob (or names it again because it was uploaded again, and
then it is back in place). Blobs already taken are kept between snapshots (the same name is
always the same bytes); those the final snapshot does not name are dropped. A blob that has
been taken cannot be lost afterwards: a hard link keeps the bytes when the server unlinks its
name, and an open copy reads to the end.

The blob stores are reached only through `artifacts.BlobStore`, made by the caller's
`blob_store(directory)` for a data directory or a backup folder.

All of this is SQLite's: on PostgreSQL the commands answer ON_POSTGRES (pg_dump instead).
"""

import contextlib
import datetime
import importlib.metadata
import json
import os
import shutil
import sqlite3
import tempfile
import time
import urllib.request

from artifacts import ChecksumMismatch
from artifacts.store import fsync_directory
from storage import DATABASE_FILE, LOCK_FILE, SCHEMA_VERSION, lock_data_dir
from storage.models import Artifact

MANIFEST_FILE = "manifest.json"
# Each new snapshot is needed only because a delete committed while the blobs of the one
# before were being taken; several in a row mean deletes faster than a snapshot takes.
SNAPSHOT_ATTEMPTS = 10
SNAPSHOT_PAUSE_SECONDS = 0.2
# What a restore checks the restored data against.
MANIFEST_CHECKED = ("schema_version", "rows", "artifacts")


# The backup copies SQLite's file: a PostgreSQL database has its own tools (README: PostgreSQL).
ON_POSTGRES = ("%s works on the SQLite database of a data directory; with [database] url "
               "set, back up with pg_dump (pg_restore to restore) and copy the data "
               "directory's artifacts/ beside it (README: PostgreSQL)")


class BackupError(Exception):
    """A backup or restore that could not be made; nothing was left half done."""


def backup(data_dir, dest, blob_store):
    """Copy the database and blobs of `data_dir` into the new folder `dest`; the manifest."""
    source_path = os.path.join(data_dir, DATABASE_FILE)
    if not os.path.isfile(source_path):
        raise BackupError("there is no ddi-lite database in %s" % os.path.abspath(data_dir))
    dest = os.path.abspath(dest)
    if os.path.lexists(dest):
        raise BackupError("%s exists already; a backup never overwrites: name a new folder"
                          % dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    work = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=os.path.basename(dest)
                            + ".partial-")
    try:
        copy_path = os.path.join(work, DATABASE_FILE)
        blobs = _snapshot(source_path, copy_path, blob_store(data_dir), blob_store(work))
        manifest = _manifest(copy_path, blobs)
        _write_json(os.path.join(work, MANIFEST_FILE), manifest)
        fsync_directory(work)
        os.rename(work, dest)
        fsync_directory(os.path.dirname(dest))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def restore(src, data_dir, blob_store):
    """Put the backup in folder `src` into the empty `data_dir`; its manifest. Declared done
    only when the database passes PRAGMA integrity_check, every blob hashes to its name and
    matches its rows, and the counts match the manifest; else `data_dir` is left empty."""
    manifest = read_manifest(src)
    if manifest["schema_version"] > SCHEMA_VERSION:
        raise BackupError("%s was made by a newer ddi-lite (schema %d; this one reads up to %d)"
                          % (src, manifest["schema_version"], SCHEMA_VERSION))
    # Held throughout: no server may start on the data directory while it is being filled.
    with lock_data_dir(data_dir):
        left = sorted(set(os.listdir(data_dir)) - {LOCK_FILE})
        if left:
            raise BackupError("%s is not empty (%s); restore only into an empty data directory"
                              % (os.path.abspath(data_dir), ", ".join(left[:5])))
        try:
            copy_path = os.path.join(data_dir, DATABASE_FILE)
            _copy_database(os.path.join(src, DATABASE_FILE), copy_path)
            blobs = {}
            missing = _take_blobs(copy_path, blob_store(src), blob_store(data_dir), blobs)[1]
            if missing:
                raise BackupError("the backup in %s lacks blobs its database names (%s); it is "
                                  "damaged" % (src, ", ".join(sorted(missing)[:3])))
            restored = _manifest(copy_path, blobs)
            for part in MANIFEST_CHECKED:
                if restored[part] != manifest[part]:
                    raise BackupError("the backup in %s does not match its manifest (%s: %s; "
                                      "manifest: %s)" % (src, part, restored[part],
                                                         manifest[part]))
        except BaseException:
            _empty(data_dir)
            raise
    return manifest


def read_manifest(folder):
    """The manifest of the backup in `folder`; BackupError if it has none (not a backup, or
    one that was never completed)."""
    try:
        with open(os.path.join(folder, MANIFEST_FILE), encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise BackupError("%s is not a complete ddi-lite backup (%s)" % (folder, error))
    if not isinstance(manifest, dict) or not all(part in manifest for part in MANIFEST_CHECKED):
        raise BackupError("%s is not a ddi-lite backup: its %s lacks %s"
                          % (folder, MANIFEST_FILE, ", ".join(MANIFEST_CHECKED)))
    return manifest


# --- the snapshot and its blobs ---------------------------------------------------------------

def _snapshot(source_path, copy_path, live, copied):
    """A copy of the database at `copy_path` and every blob it names in `copied`, checked:
    {sha1: Blob}."""
    taken = {}
    for attempt in range(SNAPSHOT_ATTEMPTS):
        if attempt:
            time.sleep(SNAPSHOT_PAUSE_SECONDS)
        _copy_database(source_path, copy_path)
        named, missing = _take_blobs(copy_path, live, copied, taken)
        if not missing:
            for sha1 in set(taken) - named:
                copied.delete(sha1)
            return {sha1: taken[sha1] for sha1 in named}
    raise BackupError("%d snapshots in a row named blobs that %s no longer held (%s): either "
                      "artifacts are deleted faster than a snapshot is taken, or the blobs are "
                      "lost" % (SNAPSHOT_ATTEMPTS, live.root, ", ".join(sorted(missing)[:3])))


def _copy_database(source_path, copy_path):
    """SQLite's online backup of one file into a new one, in one step (one snapshot), then
    checked. The copy is a single file in rollback-journal mode, readable on its own."""
    for leftover in (copy_path, copy_path + "-journal"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    uri = "file:%s?mode=ro" % urllib.request.pathname2url(os.path.abspath(source_path))
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as source, \
                contextlib.closing(sqlite3.connect(copy_path)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    except sqlite3.Error as error:
        raise BackupError("cannot copy the database %s: %s" % (source_path, error))
    if problems != ["ok"]:
        raise BackupError("the database %s fails PRAGMA integrity_check: %s"
                          % (source_path, "; ".join(problems[:5])))


def _take_blobs(database_path, source, target, taken):
    """Every blob the artifact rows of the database at `database_path` name, from `source`
    into `target`, checked against the rows. `taken` maps the sha1 of each blob `target`
    holds already (checked) to its Blob, and gains those taken now. Returns the sha1s named
    and those of them `source` lacks."""
    named, missing = set(), set()
    for sha1, size, md5, sha256 in _artifact_rows(database_path):
        named.add(sha1)
        if sha1 not in taken:
            try:
                taken[sha1] = target.copy_from(source, sha1)
            except FileNotFoundError:
                missing.add(sha1)
                continue
            except ChecksumMismatch:
                raise BackupError("blob %s in %s is damaged: its bytes do not hash to its "
                                  "name" % (sha1, source.root))
        blob = taken[sha1]
        if (blob.size, blob.md5, blob.sha256) != (size, md5, sha256):
            raise BackupError("blob %s does not match its artifact row (size, MD5 or SHA-256)"
                              % sha1)
    return named, missing


def _artifact_rows(database_path):
    """(sha1, size, md5, sha256) of every artifact row, of any module, deleted or not."""
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        return db.execute("SELECT DISTINCT sha1, size, md5, sha256 FROM %s"
                          % Artifact._meta.table_name).fetchall()


# --- manifest and files -----------------------------------------------------------------------

def _manifest(database_path, blobs):
    with contextlib.closing(sqlite3.connect(database_path)) as db:
        schema_version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        rows = {table: db.execute('SELECT count(*) FROM "%s"' % table).fetchone()[0]
                for table in tables}
    return {
        "ddi_lite_version": _software_version(),
        "schema_version": schema_version,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "database_bytes": os.path.getsize(database_path),
        "rows": rows,
        "artifacts": {"blobs": len(blobs), "bytes": sum(blob.size for blob in blobs.values())},
    }


def _software_version():
    try:
        return importlib.metadata.version("ddi-lite")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _write_json(path, document):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _empty(data_dir):
    """Remove what a failed restore put into `data_dir` (it was empty but for the lock)."""
    for entry in os.scandir(data_dir):
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
