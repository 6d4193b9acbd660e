"""The gateway's artifact cache: each artifact comes from upstream once and is served to
every device from here, also while it is still arriving.

On disk, under ``root`` (a folder of the data directory), every name is a validated sha1::

    <sha1>           a complete artifact, verified against every hash upstream gave
    <sha1>.json      what is known about it: size, md5, sha256, Last-Modified
    partial/<sha1>   bytes received so far of an artifact not yet complete

One thread per transfer writes ``partial/<sha1>`` (fetch.py does the HTTP); devices' download
threads read the same file up to the bytes written so far, waiting on the entry's Condition
for more. A complete artifact is hashed (sha256 first, then sha1 and md5), fsynced, described
in ``<sha1>.json`` and only then renamed into place, so ``<sha1>`` always holds checked bytes.
The last byte of an artifact is held back from readers until that check passed: a device
never receives the whole of an artifact whose hash is wrong, it sees a short read and asks
again. An interrupted transfer resumes with ``Range: bytes=N-``; after a restart the partial
file is kept and resumed by the next `fetch` (the upstream URL and credentials are not
written to disk, so nothing resumes before a device asks for the artifact again).

Size limit: complete artifacts are evicted least recently used first until the cache is back
under ``max_bytes``; an artifact of an open action (``in_use()``) or one being filled is never
evicted. An artifact bigger than the whole limit is therefore kept while it is in use and
evicted once it is not; the limit is exceeded while pinned and filling artifacts need more
room. A device already reading an evicted file finishes its download (its file stays open).

Not handled here: which device may download which artifact, and upstream's DDI links; the
gateway's routes decide those and pass in the URL and authentication headers.
"""

import hashlib
import http
import http.client
import json
import logging
import os
import re
import ssl
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from artifacts.serve import Piece, download_response, md5sum_response
from artifacts.store import fsync_directory, unlink_if_present

from . import fetch

log = logging.getLogger(__name__)

READ_CHUNK_SIZE = 256 * 1024
HASH_KINDS = ("sha256", "sha1", "md5")  # the order they are checked in
_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
PARTIAL_DIR = "partial"

WsgiAnswer = Tuple[str, List[Tuple[str, str]], Iterable[bytes]]


def valid_sha1(sha1) -> str:
    """``sha1`` if it is 40 lowercase hex digits; the only way a name reaches the disk."""
    if not isinstance(sha1, str) or not _SHA1_HEX.fullmatch(sha1):
        raise ValueError("not a lowercase hex SHA-1: %r" % (sha1,))
    return sha1


def _now_ms() -> int:
    return int(time.time() * 1000)


class CacheEntry:
    """One artifact in the cache: complete, filling (a transfer runs), or neither.

    ``state`` is "complete", "filling", "partial" (bytes on disk, no transfer running),
    "failed" (the transfer gave up; ``error`` says why) or "evicted". The cache replaces a
    failed or evicted entry by a new one at the next `ArtifactCache.fetch`.
    """

    def __init__(self, cache: "ArtifactCache", sha1: str, size: int, state: str,
                 received: int, last_modified_ms: int, last_used_ms: int,
                 hashes: Optional[Dict[str, str]] = None):
        self._cache = cache
        self.sha1 = sha1
        self.size = size
        self.state = state
        self.error = None  # type: Optional[str]
        self.received = received  # bytes on disk, readable by devices (up to the last one)
        self.last_modified_ms = last_modified_ms
        self.last_used_ms = last_used_ms
        self.hashes = dict(hashes or {})
        # Set once the bytes passed every check; stays set after an eviction, for the
        # downloads that still read the file they opened.
        self.verified = state == "complete"
        self.changed = threading.Condition(cache._lock)

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    def response(self, environ: dict, filename: str) -> WsgiAnswer:
        """A WSGI answer (status line, headers, body) to a GET or HEAD of this artifact."""
        cache = self._cache
        method = environ.get("REQUEST_METHOD", "GET")
        request_headers = {"range": environ.get("HTTP_RANGE"),
                           "if-range": environ.get("HTTP_IF_RANGE"),
                           "if-match": environ.get("HTTP_IF_MATCH")}
        request_headers = {name: value for name, value in request_headers.items()
                           if value is not None}
        with cache._lock:
            if self.state not in ("complete", "filling"):
                return _unavailable("the artifact is not in the gateway's cache right now")
            # Opened now, under the lock, not when the body is read: the file is the one
            # the state names, and an eviction or the rename at completion after this does
            # not take the bytes away from this download.
            try:
                handle = open(self._path(), "rb", buffering=0)
            except FileNotFoundError:  # removed behind the gateway's back
                return _unavailable("the artifact's file is missing")
            self.last_used_ms = _now_ms()
        bodies = []

        def body_for(pieces: Sequence[Piece]) -> "_EntryBody":
            bodies.append(_EntryBody(self, handle, pieces))
            return bodies[-1]

        answer = download_response(self.size, self.sha1, self.last_modified_ms, filename,
                                   method, request_headers, body_for)
        if not bodies:
            handle.close()
        return _wsgi(answer)

    def md5sum_response(self, filename: str) -> WsgiAnswer:
        """The artifact's ``.MD5SUM`` file (md5sum(1) format)."""
        with self._cache._lock:
            md5 = self.hashes.get("md5")
        if md5 is None:  # upstream gave none and the transfer has not finished hashing
            return _unavailable("the artifact's MD5 is not known yet")
        return _wsgi(md5sum_response(md5, filename))

    def _path(self) -> str:
        if self.state == "complete":
            return self._cache._complete_path(self.sha1)
        return self._cache._partial_path(self.sha1)

    def _readable_end(self, position: int, timeout: float) -> int:
        """How far a device may read once bytes past ``position`` are there; 0 when they do
        not come (transfer failed, gateway stopping, or ``timeout`` seconds without bytes)."""
        cache = self._cache
        deadline = time.monotonic() + timeout
        with cache._lock:
            while True:
                if self.verified:
                    return self.size
                # The last byte waits for the hash check, so a wrong artifact is never whole.
                end = min(self.received, self.size - 1)
                if end > position:
                    return end
                remaining = deadline - time.monotonic()
                if self.state != "filling" or cache._closed or remaining <= 0:
                    return 0
                self.changed.wait(remaining)

    def __repr__(self) -> str:
        return "<CacheEntry %s %s %d/%d>" % (self.sha1, self.state, self.received, self.size)


class _EntryBody:
    """A download's body: literal bytes and byte ranges of one entry's file, read as they
    arrive. It ends early (a short read for the device) when the bytes stop coming."""

    def __init__(self, entry: CacheEntry, handle, pieces: Sequence[Piece]):
        self._entry = entry
        self._handle = handle
        self._pieces = tuple(pieces)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for piece in self._pieces:
                if isinstance(piece, bytes):
                    yield piece
                    continue
                position, last = piece
                while position <= last:
                    end = self._entry._readable_end(position, self._entry._cache.timeout)
                    if not end:
                        return
                    want = min(end, last + 1) - position
                    chunk = os.pread(self._handle.fileno(), min(want, READ_CHUNK_SIZE),
                                     position)
                    if not chunk:
                        return
                    position += len(chunk)
                    self._entry._cache._count(bytes_served=len(chunk))
                    yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._handle.close()


def _unavailable(reason: str) -> WsgiAnswer:
    # Device clients retry a 503 after Retry-After; the next fetch() starts the transfer.
    body = reason.encode("utf-8")
    return ("503 Service Unavailable",
            [("Retry-After", "5"), ("Content-Type", "text/plain; charset=UTF-8"),
             ("Content-Length", str(len(body)))], (body,))


def _wsgi(answer) -> WsgiAnswer:
    status = http.HTTPStatus(answer.status)
    return "%d %s" % (status.value, status.phrase), answer.headers, answer.body


class ArtifactCache:
    """Artifacts from upstream, downloaded once, kept within ``max_bytes``, served from disk.

    ``in_use()`` returns the sha1s of artifacts of open actions (never evicted); it is
    called without the cache's lock, from `fetch`, `contents`, `evict` and transfer threads.
    ``timeout`` bounds both a device's wait for the next bytes of a filling artifact and
    upstream's socket reads. A transfer makes at most ``attempts`` attempts in a row that
    bring no new bytes, waiting ``backoff`` seconds after the first, doubling up to
    ``max_backoff``. ``ssl_context`` verifies an https upstream (default: the system's CAs).
    """

    def __init__(self, root: str, max_bytes: int, in_use: Callable[[], Set[str]],
                 timeout: float = 30.0, attempts: int = 5, backoff: float = 1.0,
                 max_backoff: float = 30.0, ssl_context: Optional[ssl.SSLContext] = None):
        self.root = os.path.abspath(root)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._in_use = in_use
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._ssl_context = ssl_context
        # Guards the entries, the counters, and every change to which files exist (create,
        # rename, unlink), so that a download opening a file under it finds what the entry's
        # state says. Bytes are written and read outside it.
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._entries = {}  # type: Dict[str, CacheEntry]
        self._transfers = {}  # type: Dict[str, threading.Thread]
        self._downloads = {}  # type: Dict[str, fetch.Download]
        self._counters = dict.fromkeys(("bytes_from_upstream", "upstream_requests",
                                        "bytes_served", "hits", "misses", "errors"), 0)
        os.makedirs(os.path.join(self.root, PARTIAL_DIR), exist_ok=True)
        self._scan()

    # Public interface ##########################################################

    def fetch(self, sha1: str, size: int, hashes: Dict[str, str], url: str,
              headers: Dict[str, str]) -> CacheEntry:
        """The entry for ``sha1``, starting its upstream transfer unless it is complete or
        already filling; returns at once. ``hashes`` maps "sha1"/"md5"/"sha256" to upstream's
        hex digests; ``headers`` are sent upstream (its authentication)."""
        valid_sha1(sha1)
        expected = _expected_hashes(sha1, hashes)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("not an artifact size: %r" % (size,))
        with self._lock:
            if self._closed:
                raise RuntimeError("the artifact cache is closed")
            entry = self._entries.get(sha1)
            if entry is not None and entry.state in ("complete", "filling"):
                entry.last_used_ms = _now_ms()
                self._counters["hits"] += 1
                return entry
            received = entry.received if entry is not None and entry.state == "partial" else 0
            if received > size:
                received = -1  # more bytes than the artifact has: start over
            # Created before anyone gets the entry: its downloads open this file at once.
            fd = os.open(self._partial_path(sha1), os.O_RDWR | os.O_CREAT, 0o600)
            entry = CacheEntry(self, sha1, size, "filling", max(received, 0), _now_ms(),
                               _now_ms(), expected)
            self._entries[sha1] = entry
            self._counters["misses"] += 1
            thread = threading.Thread(target=self._transfer,
                                      args=(entry, fd, url, dict(headers), received),
                                      name="cache-fetch-%s" % sha1[:8], daemon=True)
            self._transfers[sha1] = thread
        thread.start()
        self.evict()
        return entry

    def get(self, sha1: str) -> Optional[CacheEntry]:
        """The entry for ``sha1`` if it is complete or filling, else None."""
        valid_sha1(sha1)
        with self._lock:
            entry = self._entries.get(sha1)
            if entry is None or entry.state not in ("complete", "filling"):
                return None
            entry.last_used_ms = _now_ms()
        if entry.complete:
            self._remember_use(entry)
        return entry

    def stats(self) -> Dict[str, int]:
        with self._lock:
            figures = dict(self._counters)
            figures["size_bytes"] = sum(self._footprint(entry)
                                        for entry in self._entries.values())
            figures["entries"] = len(self._entries)
            figures["max_bytes"] = self.max_bytes
        return figures

    def contents(self) -> List[Dict]:
        """Every entry, most recently used first: sha1, size, complete, state, received,
        last_used_ms and pinned (an artifact of an open action)."""
        pinned = self._pinned()
        with self._lock:
            entries = sorted(self._entries.values(), key=lambda entry: -entry.last_used_ms)
            return [{"sha1": entry.sha1, "size": entry.size, "complete": entry.complete,
                     "state": entry.state, "received": entry.received,
                     "last_used_ms": entry.last_used_ms,
                     "pinned": pinned is None or entry.sha1 in pinned}
                    for entry in entries]

    def close(self) -> None:
        """Stop every transfer (partial files stay for the next start) and wake readers."""
        with self._lock:
            self._closed = True
            self._stop.set()
            downloads = list(self._downloads.values())
            threads = list(self._transfers.values())
            for entry in self._entries.values():
                entry.changed.notify_all()
        for download in downloads:
            download.abort()
        for thread in threads:
            thread.join(self.timeout)

    # Transfers ###################################################################

    def _transfer(self, entry: CacheEntry, fd: int, url: str, headers: Dict[str, str],
                  received: int) -> None:
        """The one thread that fills ``entry`` (writing ``fd``, its partial file): attempts
        with back-off, then verification."""
        try:
            if received < 0:
                os.ftruncate(fd, 0)
            progress = _Progress(fd, max(received, 0))
            failures, delay = 0, self._backoff
            while True:
                before = entry.received
                try:
                    if progress.received < entry.size:
                        self._attempt(entry, url, headers, progress)
                    if progress.received == entry.size:
                        self._finish(entry, progress)
                        return
                    error = "upstream ended the transfer at byte %d of %d" % (
                        progress.received, entry.size)
                except fetch.UpstreamError as upstream_error:
                    error = str(upstream_error)
                    if not upstream_error.retryable:
                        self._give_up(entry, error, discard=False)
                        return
                except (OSError, http.client.HTTPException) as read_error:  # cut, timed out
                    error = "upstream transfer broke off: %s" % (read_error,)
                if self._stop.is_set():
                    self._stop_filling(entry)
                    return
                # Attempts are counted in a row without progress: a long download over a
                # link that drops now and then still finishes.
                if entry.received > before:
                    failures, delay = 0, self._backoff
                failures += 1
                if failures >= self._attempts:
                    self._give_up(entry, error, discard=False)
                    return
                log.info("artifact %s: %s; again in %.1f s", entry.sha1, error, delay)
                if self._stop.wait(delay):
                    self._stop_filling(entry)
                    return
                delay = min(delay * 2, self._max_backoff)
        except _HashMismatch as mismatch:
            self._give_up(entry, str(mismatch), discard=True)
        except Exception as error:  # never leave readers waiting on a dead transfer
            log.exception("artifact %s: transfer failed", entry.sha1)
            self._give_up(entry, "transfer failed: %s" % error, discard=False)
        finally:
            os.close(fd)
            with self._lock:
                # A later fetch may have started the next transfer of this artifact already.
                if self._transfers.get(entry.sha1) is threading.current_thread():
                    del self._transfers[entry.sha1]

    def _attempt(self, entry: CacheEntry, url: str, headers: Dict[str, str],
                 progress: "_Progress") -> None:
        """One upstream request for the bytes from ``progress.received`` on."""
        download = fetch.open_download(url, headers, progress.received, entry.size,
                                       self.timeout, self._ssl_context,
                                       lambda: self._count(upstream_requests=1))
        with self._lock:
            if self._closed:
                download.close()
                return
            self._downloads[entry.sha1] = download
        try:
            if download.start != progress.received:  # upstream ignored the range
                progress.start_over()
            while progress.received < entry.size:
                chunk = download.read(min(READ_CHUNK_SIZE, entry.size - progress.received))
                if not chunk:
                    return
                progress.write(chunk)
                with self._lock:
                    self._counters["bytes_from_upstream"] += len(chunk)
                    entry.received = max(entry.received, progress.received)
                    entry.changed.notify_all()
        finally:
            with self._lock:
                self._downloads.pop(entry.sha1, None)
            download.close()

    def _finish(self, entry: CacheEntry, progress: "_Progress") -> None:
        digests = progress.digests()
        for kind in HASH_KINDS:
            if kind in entry.hashes and entry.hashes[kind] != digests[kind]:
                raise _HashMismatch("%s of the bytes from upstream is %s, not %s"
                                    % (kind, digests[kind], entry.hashes[kind]))
        os.fsync(progress.fd)
        _write_durably(self._meta_path(entry.sha1), json.dumps(
            {"size": entry.size, "md5": digests["md5"], "sha256": digests["sha256"],
             "last_modified_ms": entry.last_modified_ms}).encode("ascii"))
        with self._lock:
            os.replace(self._partial_path(entry.sha1), self._complete_path(entry.sha1))
            entry.hashes.update(digests)
            entry.received = entry.size
            entry.state, entry.verified = "complete", True
            entry.changed.notify_all()
        fsync_directory(self.root)
        self._remember_use(entry)
        self.evict()

    def _give_up(self, entry: CacheEntry, error: str, discard: bool) -> None:
        log.warning("artifact %s: %s%s", entry.sha1, error,
                    "; its bytes are discarded" if discard else "")
        with self._lock:
            if discard:
                unlink_if_present(self._partial_path(entry.sha1))
            self._counters["errors"] += 1
            entry.state, entry.error = "failed", error
            entry.changed.notify_all()
            if self._entries.get(entry.sha1) is entry:
                if discard:
                    del self._entries[entry.sha1]
                else:  # the bytes so far stay for the next fetch to resume
                    self._entries[entry.sha1] = CacheEntry(
                        self, entry.sha1, entry.size, "partial", entry.received,
                        entry.last_modified_ms, entry.last_used_ms)

    def _stop_filling(self, entry: CacheEntry) -> None:
        with self._lock:
            entry.state, entry.error = "partial", "the gateway is stopping"
            entry.changed.notify_all()

    # Size limit ##################################################################

    def evict(self) -> None:
        """Remove complete (and idle partial) artifacts that are not pinned, least recently
        used first, until the cache fits in ``max_bytes`` or nothing evictable is left.

        Runs by itself at every fetch and completed transfer; call it when artifacts were
        unpinned (actions closed) to free their room at once.
        """
        pinned = self._pinned()
        if pinned is None:
            return
        with self._lock:
            total = sum(self._footprint(entry) for entry in self._entries.values())
            candidates = sorted((entry for entry in self._entries.values()
                                 if entry.state in ("complete", "partial")
                                 and entry.sha1 not in pinned),
                                key=lambda entry: entry.last_used_ms)
            for entry in candidates:
                if total <= self.max_bytes:
                    break
                log.info("artifact %s (%s, %d bytes) evicted from the cache", entry.sha1,
                         entry.state, self._footprint(entry))
                total -= self._footprint(entry)
                del self._entries[entry.sha1]
                if entry.state == "complete":
                    unlink_if_present(self._complete_path(entry.sha1))
                    unlink_if_present(self._meta_path(entry.sha1))
                else:
                    unlink_if_present(self._partial_path(entry.sha1))
                entry.state = "evicted"
                entry.changed.notify_all()

    def _pinned(self) -> Optional[Set[str]]:
        """The sha1s of artifacts of open actions; None (all pinned) if they are unknown."""
        try:
            return set(self._in_use())
        except Exception:
            log.exception("cannot tell which artifacts are in use; evicting nothing")
            return None

    @staticmethod
    def _footprint(entry: CacheEntry) -> int:
        # A filling artifact counts with its full size: that room will be taken.
        return entry.received if entry.state == "partial" else entry.size

    # Disk ########################################################################

    def _scan(self) -> None:
        """Take up what a previous run left: complete artifacts with their description, and
        partial files to resume; anything else in ``root`` that is ours goes."""
        partial_dir = os.path.join(self.root, PARTIAL_DIR)
        for item in os.scandir(self.root):
            name = item.name
            if _SHA1_HEX.fullmatch(name) and item.is_file(follow_symlinks=False):
                meta = _read_meta(self._meta_path(name))
                stat = item.stat()
                if meta is None or meta["size"] != stat.st_size:
                    unlink_if_present(item.path)
                    unlink_if_present(self._meta_path(name))
                    continue
                self._entries[name] = CacheEntry(
                    self, name, stat.st_size, "complete", stat.st_size,
                    meta["last_modified_ms"], int(stat.st_mtime * 1000),
                    {"sha1": name, "md5": meta["md5"], "sha256": meta["sha256"]})
        for item in os.scandir(self.root):
            stem = item.name.split(".", 1)[0]
            if _SHA1_HEX.fullmatch(stem) and (item.name == stem + ".json.tmp" or (
                    item.name == stem + ".json" and stem not in self._entries)):
                unlink_if_present(item.path)
        for item in os.scandir(partial_dir):
            if not (_SHA1_HEX.fullmatch(item.name) and item.is_file(follow_symlinks=False)):
                continue
            if item.name in self._entries:
                unlink_if_present(item.path)
                continue
            stat = item.stat()
            self._entries[item.name] = CacheEntry(
                self, item.name, stat.st_size, "partial", stat.st_size,
                int(stat.st_mtime * 1000), int(stat.st_mtime * 1000))

    def _remember_use(self, entry: CacheEntry) -> None:
        # The file's times carry the least-recently-used order across a restart.
        seconds = entry.last_used_ms / 1000
        try:
            os.utime(self._complete_path(entry.sha1), (seconds, seconds))
        except FileNotFoundError:
            pass

    def _count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counters[name] += amount

    def _complete_path(self, sha1: str) -> str:
        return os.path.join(self.root, valid_sha1(sha1))

    def _meta_path(self, sha1: str) -> str:
        return os.path.join(self.root, valid_sha1(sha1) + ".json")

    def _partial_path(self, sha1: str) -> str:
        return os.path.join(self.root, PARTIAL_DIR, valid_sha1(sha1))


class _HashMismatch(Exception):
    pass


def _expected_hashes(sha1: str, hashes: Dict[str, str]) -> Dict[str, str]:
    expected = {"sha1": sha1}
    for kind, value in (hashes or {}).items():
        if value is None:
            continue
        if kind not in _HEX_LENGTHS:
            raise ValueError("unknown hash kind %r" % (kind,))  # a typo would skip a check
        value = str(value).lower()
        if not re.fullmatch(r"[0-9a-f]{%d}" % _HEX_LENGTHS[kind], value):
            raise ValueError("not a %s: %r" % (kind, value))
        if kind == "sha1" and value != sha1:
            raise ValueError("upstream's sha1 %s is not the artifact's %s" % (value, sha1))
        expected[kind] = value
    return expected


class _Progress:
    """What a transfer has written to the partial file, and the hashes of exactly those
    bytes; a resumed partial file is hashed from disk first."""

    def __init__(self, fd: int, received: int):
        self.fd = fd
        self.received = 0
        self._hashers = {kind: hashlib.new(kind) for kind in HASH_KINDS}
        while self.received < received:
            chunk = os.pread(fd, min(READ_CHUNK_SIZE, received - self.received), self.received)
            if not chunk:
                break  # shorter than it was: resume from where it really ends
            self._hash(chunk)

    def write(self, chunk: bytes) -> None:
        _write_at(self.fd, chunk, self.received)
        self._hash(chunk)

    def start_over(self) -> None:
        # The file is not truncated: devices may be reading its first bytes, which the new
        # answer writes again (the same bytes, or the hash check at the end fails).
        self.__init__(self.fd, 0)

    def digests(self) -> Dict[str, str]:
        return {kind: hasher.hexdigest() for kind, hasher in self._hashers.items()}

    def _hash(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)
        self.received += len(chunk)


def _write_at(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


def _read_meta(path: str) -> Optional[dict]:
    try:
        with open(path, "rb") as handle:
            meta = json.loads(handle.read().decode("ascii"))
        return {"size": int(meta["size"]), "md5": str(meta["md5"]),
                "sha256": str(meta["sha256"]), "last_modified_ms": int(meta["last_modified_ms"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_durably(path: str, data: bytes) -> None:
    temp_path = path + ".tmp"
    with open(temp_path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp_path, path)
