"""Console sign-in sessions, kept in this process's memory.

Why memory and not the database: a session is read on every console request and touched
(its idle deadline moved) on most of them; in SQLite that would be a write per page view
through the one writer the devices' feedback also waits for. What memory loses is only what
should be lost: a restart signs every operator out, and nothing of a session ever reaches a
backup. The table is bounded (`max_sessions`, oldest dropped first), so sign-ins cannot grow
the process without limit.

A session also ends when its idle time runs out, at sign-out, and when the operator's
account changes: the session remembers a digest of the account's password hash and is void
once the accounts (storage.accounts.Accounts, re-read on SIGHUP or a login) hold another one,
or none. Framework-free: the web face reads and sets the cookie.

With worker processes (`[server] workers` above 1) a browser's requests reach any worker, so
a session kept in one worker's memory would sign the operator out at the next request another
worker answers. Then the sessions live in a directory the workers share instead
(`directory`, in the data directory): one small file per session, named by the SHA-256 of its
id, holding the user, the CSRF token and the account digest; its modification time is the
last use, moved on by `os.utime`, so a page view still costs no database write. The master
empties the directory at every start (`forget_all`): a restart still signs everyone out.
"""

import collections
import hashlib
import hmac
import os
import secrets
import shutil
import threading
import time

Session = collections.namedtuple("Session", "user csrf account expires")


def _account_digest(stored_hash):
    return hashlib.sha256((stored_hash or "").encode("utf-8")).hexdigest()


class Sessions:
    """Session id -> Session; ids are 256-bit random, compared as dictionary keys of their
    SHA-256 (a timing difference in the lookup tells nothing about a valid id)."""

    max_sessions = 1000

    def __init__(self, accounts, idle_seconds, directory=None):
        """`directory`: where worker processes share their sessions; None: this process's
        memory."""
        self.accounts = accounts
        self.idle_seconds = idle_seconds
        self.directory = directory
        self._sessions = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(session_id):
        return hashlib.sha256(session_id.encode("utf-8", "replace")).digest()

    def start(self, user):
        """A new session for a user whose password was just checked: (id, Session)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(user=user, csrf=secrets.token_urlsafe(32),
                          account=_account_digest(self.accounts.hashes.get(user)),
                          expires=time.monotonic() + self.idle_seconds)
        if self.directory is not None:
            self._write(self._key(session_id), session)
            return session_id, session
        with self._lock:
            self._sessions[self._key(session_id)] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session_id, session

    def find(self, session_id, touch=True):
        """The live session of this id, its idle deadline moved on (`touch`); else None."""
        if not session_id:
            return None
        key = self._key(session_id)
        if self.directory is not None:
            return self._find_shared(key, touch)
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            stored = self.accounts.hashes.get(session.user)
            if session.expires <= now or stored is None or \
                    not hmac.compare_digest(session.account, _account_digest(stored)):
                del self._sessions[key]
                return None
            if touch:
                session = session._replace(expires=now + self.idle_seconds)
                self._sessions[key] = session
                self._sessions.move_to_end(key)
            return session

    def end(self, session_id):
        if session_id and self.directory is not None:
            _remove(self._path(self._key(session_id)))
        elif session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)

    # --- shared by worker processes (`directory`) -------------------------------------------

    def _path(self, key):
        return os.path.join(self.directory, key.hex())

    def _write(self, key, session):
        path = self._path(key)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        with open(path + ".new", "w", encoding="utf-8") as handle:
            handle.write("\n".join((session.user, session.csrf, session.account)))
        os.replace(path + ".new", path)
        entries = os.listdir(self.directory)
        if len(entries) > self.max_sessions:  # the ones used longest ago go first
            by_use = sorted(entries, key=lambda name: _used(os.path.join(self.directory, name)))
            for name in by_use[:len(entries) - self.max_sessions]:
                _remove(os.path.join(self.directory, name))

    def _find_shared(self, key, touch):
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as handle:
                user, csrf, account = handle.read().split("\n")
            idle = time.time() - os.stat(path).st_mtime
        except (OSError, ValueError):
            return None
        stored = self.accounts.hashes.get(user)
        if idle >= self.idle_seconds or stored is None or \
                not hmac.compare_digest(account, _account_digest(stored)):
            _remove(path)
            return None
        if touch:
            try:
                os.utime(path)
                idle = 0
            except OSError:  # signed out meanwhile through another worker
                return None
        return Session(user=user, csrf=csrf, account=account,
                       expires=time.monotonic() + self.idle_seconds - idle)


def forget_all(directory):
    """Sign everyone out of the sessions shared in `directory` (a server's start)."""
    shutil.rmtree(directory, ignore_errors=True)


def _used(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def tokens_match(expected, presented):
    """Whether a form's token is the one expected (a session's CSRF token, the sign-in
    form's cookie), in constant time."""
    return bool(expected) and bool(presented) and hmac.compare_digest(
        expected.encode("utf-8", "replace"), presented.encode("utf-8", "replace"))
