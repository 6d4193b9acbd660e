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
"""

import collections
import hashlib
import hmac
import secrets
import threading
import time

Session = collections.namedtuple("Session", "user csrf account expires")


def _account_digest(stored_hash):
    return hashlib.sha256((stored_hash or "").encode("utf-8")).hexdigest()


class Sessions:
    """Session id -> Session; ids are 256-bit random, compared as dictionary keys of their
    SHA-256 (a timing difference in the lookup tells nothing about a valid id)."""

    max_sessions = 1000

    def __init__(self, accounts, idle_seconds):
        self.accounts = accounts
        self.idle_seconds = idle_seconds
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
        if session_id:
            with self._lock:
                self._sessions.pop(self._key(session_id), None)


def tokens_match(expected, presented):
    """Whether a form's token is the one expected (a session's CSRF token, the sign-in
    form's cookie), in constant time."""
    return bool(expected) and bool(presented) and hmac.compare_digest(
        expected.encode("utf-8", "replace"), presented.encode("utf-8", "replace"))
