"""Operator accounts: the [accounts] section of the settings file, user = password hash.

What is here: the password hash `ddi-lite passwd` writes and the check of a login against it
(with the rationing of wrong logins), the shipped admin/admin account, reading [accounts] from
a settings file and re-reading it when it changes or when asked (serve asks on SIGHUP), and
writing one account into it (`set_password`).

Boundaries: no HTTP. A login refused before its password was checked is `PasswordNotChecked`,
which the web face (ddi_lite.basic_user) answers with 429. Which settings file is meant (the
--config lookup) is decided by the caller, and so is when to reload (serve's SIGHUP). The other
sections of the file belong to the settings schema (ddi_lite.load_config, which parses the
file with `SettingsFile`); writing an account keeps them as they are.
"""

import base64
import collections
import configparser
import fcntl
import hashlib
import hmac
import logging
import os
import re
import stat
import tempfile
import threading
import time

ACCOUNTS_SECTION = "accounts"
# hawkBit's admin/admin, for drop-in compatibility; the server warns while it is unchanged.
DEFAULT_ACCOUNTS = {"admin": "pbkdf2_sha256$260000$PtJOMpsUikUNsHELyu5A0A$"
                             "XKT9sl6BpbsS9YOhL+pq/EwpjxRi68V+NjUUX8NmEQQ"}
PASSWORD_ITERATIONS = 260000
# What `ddi-lite passwd` writes (hash_password): pbkdf2_sha256$<iterations>$<salt>$<hash>, the
# salt ASCII without '$', the hash 32 bytes in unpadded base64. Any other value would refuse
# every login of its account without a word.
PASSWORD_HASH = re.compile(
    r"pbkdf2_sha256\$([1-9][0-9]{0,9})\$[!-#%-~]+\$[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]")

log = logging.getLogger("ddi-lite")


class BadAccount(ValueError):
    """An [accounts] value that is not a password hash."""


class PasswordNotChecked(Exception):
    """A login not checked: the client made too many wrong ones, or too many checks run.
    `seconds`: how long the client should wait before it tries again."""

    def __init__(self, seconds):
        super().__init__(seconds)
        self.seconds = seconds


def hash_password(password, salt=None, iterations=PASSWORD_ITERATIONS):
    """A salted, slow PBKDF2-SHA256 hash in the form pbkdf2_sha256$<iterations>$<salt>$<hash>."""
    salt = salt or base64.b64encode(os.urandom(16)).decode("ascii").rstrip("=")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"),
                                 iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (
        iterations, salt, base64.b64encode(digest).decode("ascii").rstrip("="))


def _password_matches(password, stored):
    try:
        scheme, iterations, salt, _ = stored.split("$")
        iterations = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    return hmac.compare_digest(hash_password(password, salt, iterations), stored)


def accounts_in(parser, path):
    """The accounts of a parsed settings file `path`: user -> hash, the shipped admin/admin
    when it has no [accounts] section. BadAccount names a value that is not a hash."""
    if not parser.has_section(ACCOUNTS_SECTION):
        return dict(DEFAULT_ACCOUNTS)
    accounts = {user: value.strip() for user, value in parser.items(ACCOUNTS_SECTION)}
    for user, stored in accounts.items():
        match = PASSWORD_HASH.fullmatch(stored)
        # hashlib takes at most 2**31 - 1 iterations.
        if match is None or int(match.group(1)) >= 2 ** 31:
            raise BadAccount("%s: [accounts] %s is not a password hash; set it with "
                             "`ddi-lite passwd %s --config %s`" % (path, user, user, path))
    return accounts


class SettingsFile:
    """The settings file the accounts come from, and whether it changed since it was read.

    A change is told by the file's device, inode, size and modification time, one stat:
    `ddi-lite passwd` replaces the file (a new inode), an editor writes it (a new size or
    time). A file that does not exist has no stamp, and may appear later.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.stamp = None

    def _current_stamp(self):
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns

    def changed(self):
        return self._current_stamp() != self.stamp

    def parse(self):
        """The file's contents as a ConfigParser; OSError or configparser.Error when it cannot
        be read. The stamp is taken first, so that a change while it is read counts as one."""
        self.stamp = self._current_stamp()
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # user names in [accounts] keep their case
        with open(self.path, encoding="utf-8") as handle:
            parser.read_file(handle)
        return parser


class Accounts:
    """Operator accounts from config.ini's [accounts] section: user = password hash.

    Basic authentication sends the password with every request, and the hash is slow on
    purpose: a verified (user, password, hash) triple is remembered as a keyed digest, so only
    the first request of a client pays for it. A wrong password costs as much, so guesses are
    rationed before they can take the CPU and the worker threads from the devices: after
    `login_failures` wrong logins a client gets 429 for `login_pause` seconds without a check,
    and beyond `password_checks` hashes at once every login gets 429. A remembered login is
    let in all the same.

    With a `settings_file`, a new password needs no restart: a login looks at the file at most
    once per `look_interval` seconds and re-reads the accounts when it changed; `reload` does
    it at once (SIGHUP). Only operator logins look: device requests never come here. A file
    that cannot be read or holds a value that is not a hash leaves the accounts as they were,
    with a warning: an operator's typo must not lock every operator out.
    """

    _key = os.urandom(32)
    _dummy = "pbkdf2_sha256$%d$ddi-lite$" % PASSWORD_ITERATIONS
    # Clients whose wrong logins are counted; the least recent is forgotten first.
    remembered_clients = 4096
    look_interval = 1.0

    def __init__(self, hashes, login_failures=0, login_pause=30, password_checks=1,
                 settings_file=None):
        self.hashes = dict(hashes)
        self.settings_file = settings_file
        self._next_look = 0.0
        self._reload_lock = threading.Lock()
        self.login_failures = login_failures
        self.login_pause = login_pause
        self._checks = threading.BoundedSemaphore(password_checks)
        self._failures = collections.OrderedDict()  # client -> (failures, paused until)
        self._failures_lock = threading.Lock()
        # Per server: a login verified by one app must not skip another's pause or accounts.
        self._verified = collections.OrderedDict()
        self._verified_lock = threading.Lock()

    def verify(self, user, password, client=None):
        """Whether the password is right; PasswordNotChecked when it was not checked."""
        self._reload_if_changed()
        stored = self.hashes.get(user)
        token = hmac.new(self._key, ("%s\0%s\0%s" % (user, password, stored)).encode("utf-8"),
                         hashlib.sha256).digest()
        if stored is not None and token in self._verified:
            return True
        if not self._checks.acquire(blocking=False):
            raise PasswordNotChecked(1)
        try:
            self._count_attempt(client)
            # An unknown user costs as much as a wrong password: no hint that the name exists.
            right = _password_matches(password, stored if stored is not None else self._dummy) \
                and stored is not None
        finally:
            self._checks.release()
        if not right:
            return False
        with self._verified_lock:
            self._verified[token] = True
            while len(self._verified) > 256:
                self._verified.popitem(last=False)
        with self._failures_lock:
            self._failures.pop(client, None)
        return True

    def _count_attempt(self, client):
        """Count a login as wrong before it is checked (a right one is forgiven after), so
        that clients trying at once cannot all pass; PasswordNotChecked while the client
        pauses."""
        if not self.login_failures:
            return
        now = time.monotonic()
        with self._failures_lock:
            failures, paused_until = self._failures.pop(client, (0, 0.0))
            if paused_until > now:
                self._failures[client] = (failures, paused_until)
                raise PasswordNotChecked(paused_until - now)
            if paused_until:  # a pause is over: the client may try as often again
                failures = 0
            failures += 1
            paused_until = now + self.login_pause if failures >= self.login_failures else 0.0
            self._failures[client] = (failures, paused_until)
            while len(self._failures) > self.remembered_clients:
                self._failures.popitem(last=False)

    def _reload_if_changed(self):
        if self.settings_file is None:
            return
        now = time.monotonic()
        # One login looks; those at the same moment go on with the accounts as they are.
        if now < self._next_look or not self._reload_lock.acquire(blocking=False):
            return
        try:
            self._next_look = now + self.look_interval
            if self.settings_file.changed():
                self._reload("the file changed")
        finally:
            self._reload_lock.release()

    def reload(self, why):
        """Re-read the accounts from the settings file now; `why` is said in the log line."""
        with self._reload_lock:
            self._reload(why)

    def _reload(self, why):
        path = self.settings_file.path
        try:
            hashes = accounts_in(self.settings_file.parse(), path)
        except (OSError, ValueError, configparser.Error) as error:
            log.warning("operator accounts NOT reloaded (%s): cannot read %s: %s; the accounts "
                        "read before stay in use", why, path, " ".join(str(error).split()))
            return
        self.hashes = hashes
        log.info("operator accounts reloaded from %s (%s): %d %s; other settings change only "
                 "when the server restarts", path, why, len(hashes),
                 "account" if len(hashes) == 1 else "accounts")

    def default_password_in_use(self):
        stored = self.hashes.get("admin")
        return stored is not None and _password_matches("admin", stored)


def set_password(path, user, password_hash):
    """Write `user = hash` into the [accounts] section of the settings file `path`, keeping the
    rest of the file (comments included) as it is; a missing file is created.

    The file is replaced at once (`_replace_file`): a server re-reading its accounts sees the
    old file or the new one, never half of one."""
    path = os.path.realpath(path)  # a symbolic link to the settings file stays one
    # Two passwd runs at once would each read the file, and the second rename would drop the
    # first one's account: they take turns on a lock of the file's folder (no extra file).
    folder = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        _set_password_locked(path, user, password_hash)
    finally:
        os.close(folder)  # releases the lock


def _set_password_locked(path, user, password_hash):
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        before = os.stat(path)
    except FileNotFoundError:
        lines, before = ["# Operator accounts, user = password hash: `ddi-lite passwd USER`."], None
    entry = "%s = %s" % (user, password_hash)
    section = None
    start = end = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            if section == ACCOUNTS_SECTION:
                start = end = index + 1
            continue
        if section != ACCOUNTS_SECTION:
            continue
        end = index + 1
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        if key == user and not stripped.startswith(("#", ";")):
            lines[index] = entry
            break
    else:
        if start is None:
            lines += (["", "[%s]" % ACCOUNTS_SECTION, entry] if before is not None
                      else ["[%s]" % ACCOUNTS_SECTION, entry])
        else:
            lines.insert(end, entry)
    _replace_file(path, "\n".join(lines) + "\n", before)


def _replace_file(path, text, before):
    """Write `text` to a new file beside `path` and move it over `path`, durably. The new file
    has the mode, owner and group of the one it replaces (`before`, its os.stat, or None): an
    operator's passwd as root must not take the file from the service's user. A file that did
    not exist is created 0600 and stays so: its hashes are worth guessing at offline, so no
    one else may read them, not even for a moment before a chmod."""
    directory = os.path.dirname(path)
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                             dir=directory)  # created 0600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            if before is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(before.st_mode))
                made = os.fstat(handle.fileno())
                if (made.st_uid, made.st_gid) != (before.st_uid, before.st_gid):
                    try:
                        os.fchown(handle.fileno(), before.st_uid, before.st_gid)
                    except PermissionError as error:
                        raise PermissionError(
                            error.errno, "cannot keep the owner and group of %s (uid %d, gid "
                            "%d); run this as its owner or as root" % (path, before.st_uid,
                                                                      before.st_gid))
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    folder = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself
    finally:
        os.close(folder)
