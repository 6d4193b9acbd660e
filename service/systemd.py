"""ddi-lite under systemd: telling the service manager how the server is doing, and putting
the service in place.

`notify()` speaks the sd_notify protocol with the standard library: one datagram of
`NAME=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (an address starting with
'@' is in the abstract namespace). Without $NOTIFY_SOCKET it does nothing, so the server
calls it whether or not systemd started it.

`install()` is `ddi-lite install-service`: the unit shipped beside this module
(`ddi-lite.service`, package data) with this installation's command in ExecStart=, the
system user it runs as, and /etc/ddi-lite/config.ini. It is given the text of that file and
a way to read settings from it, and knows nothing else of the server.
"""

import configparser
import grp
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

log = logging.getLogger("ddi-lite")


###############################################################################
# Notifications (sd_notify) ###################################################
###############################################################################

def notify(*assignments):
    """Send `assignments` ("READY=1", "STATUS=serving", ...) in one datagram to $NOTIFY_SOCKET.
    Returns whether it was sent: False when the variable is unset or names no socket this
    speaks to (systemd's vsock: addresses), and after a failure, which is logged."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    message = "".join(assignment + "\n" for assignment in assignments).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sender:
            sender.sendto(message, address)
    except OSError as error:
        log.warning("cannot notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], error)
        return False
    return True


###############################################################################
# Installation ################################################################
###############################################################################

UNIT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ddi-lite.service")
UNIT_PATH = "/etc/systemd/system/ddi-lite.service"
CONFIG_PATH = "/etc/ddi-lite/config.ini"
USER = "ddi-lite"
# StateDirectory=ddi-lite in the unit: systemd creates it and gives it to USER.
DATA_DIR = "/var/lib/ddi-lite"
# ProtectHome= in the unit makes these empty for the service: a command there cannot start.
HIDDEN_FROM_SERVICE = ("/home/", "/root/", "/run/user/")
# What an operator does after install-service, in this order; README shows the same lines.
NEXT_STEPS = (
    "ddi-lite passwd admin --config %s    # replace the shipped admin/admin" % CONFIG_PATH,
    "systemctl enable --now ddi-lite",
    "systemctl status ddi-lite",
)


class InstallError(Exception):
    """install-service cannot go on; `code` is the exit code (2: how it was called)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def installed_command():
    """The absolute path of the running `ddi-lite` console script: the one that was run, or
    the one beside this Python (`python -m ddi_lite`); None when there is none."""
    candidates = [sys.argv[0], os.path.join(os.path.dirname(sys.executable), "ddi-lite")]
    for candidate in candidates:
        if os.path.basename(candidate) == "ddi-lite" and os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def unit_text(command, port, data_dir):
    """The shipped unit for this installation: `command` in ExecStart=, the right to bind
    `port` when it is below 1024, and `data_dir` writable when it is not DATA_DIR."""
    with open(UNIT_FILE, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    capabilities = "CAP_NET_BIND_SERVICE" if port < 1024 else ""
    values = {
        "ExecStart": "%s serve --config %s" % (command, CONFIG_PATH),
        "CapabilityBoundingSet": capabilities,
        "AmbientCapabilities": capabilities,
        "ReadWritePaths": "" if data_dir == DATA_DIR else data_dir,
    }
    for index, line in enumerate(lines):
        key = line.split("=", 1)[0]
        if "=" in line and key in values:
            lines[index] = "%s=%s" % (key, values[key])
    return "\n".join(lines) + "\n"


def install(root, command, config_text, settings_of):
    """Put the service in place under `root` ("/" for this system). Returns what it changed
    (nothing when all was in place already) and what the operator should know, one line each.

    `config_text` is written to CONFIG_PATH when there is no such file; `settings_of(path)`
    reads (port, data_dir) from it. Under another root nothing outside it is touched: no
    user is created, no owner changed, no systemctl run."""
    system = root == "/"
    changes, notes = [], []
    if command is None:
        raise InstallError("cannot find the ddi-lite command to run (install ddi-lite with "
                           "pip, then run its ddi-lite install-service)")
    for what, path in (("the ddi-lite command", command),
                       ("the Python it runs on", _interpreter(command))):
        if path.startswith(HIDDEN_FROM_SERVICE):
            message = ("%s, %s, is under %s, which the service cannot see (ProtectHome=yes): "
                       "install ddi-lite elsewhere, e.g. /usr/bin/python3 -m venv "
                       "/opt/ddi-lite" % (what, path, "/" + path.split("/")[1]))
            if system:
                raise InstallError(message, code=2)
            notes.append("warning: " + message)
    group = None
    if system:
        if not _user_exists():
            _create_user()
            changes.append("created the system user %s" % USER)
        try:
            group = grp.getgrnam(USER).gr_gid
        except KeyError:
            raise InstallError("the user %s exists, the group %s (Group= in the unit) does "
                               "not: create it (groupadd --system %s)" % (USER, USER, USER))
    config_path = _under(root, CONFIG_PATH)
    changes += _config_dir(os.path.dirname(config_path), group)
    if not os.path.exists(config_path):
        _write(config_path, config_text, 0o640, group)
        changes.append("wrote %s: the defaults, data in %s (mode 0640%s)"
                       % (config_path, DATA_DIR, ", group %s" % USER if system else ""))
    else:
        changes += _data_dir_set(config_path)
        changes += _keep_private(config_path, 0o640, group)
    port, data_dir = settings_of(config_path)
    unit_path = _under(root, UNIT_PATH)
    unit = unit_text(command, port, data_dir)
    if _read(unit_path) != unit:
        os.makedirs(os.path.dirname(unit_path), exist_ok=True)
        _write(unit_path, unit, 0o644, None)
        changes.append("wrote %s: ExecStart=%s serve --config %s"
                       % (unit_path, command, CONFIG_PATH))
        if system and _daemon_reload():
            changes.append("ran systemctl daemon-reload")
        elif system:
            notes.append("systemd is not running here: run `systemctl daemon-reload` once it "
                         "is (or boot), before the steps below")
    if data_dir != DATA_DIR:
        notes.append("note: data_dir = %s is not %s: the unit lets the service write it "
                     "(ReadWritePaths=), and it must belong to %s (chown -R %s: %s)"
                     % (data_dir, DATA_DIR, USER, USER, data_dir))
    return changes, notes


def _interpreter(command):
    """The real path of the program a script's #! line names ("" when there is none)."""
    with open(command, "rb") as script:
        first = script.readline()
    words = first[2:].decode("utf-8", "replace").split() if first.startswith(b"#!") else []
    return os.path.realpath(words[0]) if words else ""


def _under(root, path):
    return os.path.join(root, path.lstrip("/"))


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path, text, mode, group):
    """Write a whole file at once (a temporary file renamed), `mode` and `group` (unless
    None; the owner is root then) set before a byte is in it."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".install-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            if group is not None:
                os.fchown(handle.fileno(), 0, group)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _data_dir_set(path):
    """An existing config.ini whose [server] data_dir is empty or missing (as in the shipped
    config.ini, or one `ddi-lite passwd` created) gets DATA_DIR. Left empty, data_dir depends
    on who runs the command: the service (user ddi-lite) would use its home's
    ~/.local/share/ddi-lite, a `ddi-lite backup` as root /var/lib/ddi-lite."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        parser.read_string(text, path)
    except configparser.Error as error:
        raise InstallError("cannot read %s: %s" % (path, error))
    if parser.get("server", "data_dir", fallback="").strip():
        return []
    lines = text.splitlines()
    entry = "data_dir = " + DATA_DIR
    section = header = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            if section == "server" and header is None:
                header = index
        elif section == "server" and stripped.split("=", 1)[0].strip() == "data_dir":
            lines[index] = entry
            break
    else:
        if header is None:
            lines += ["", "[server]", entry]
        else:
            lines.insert(header + 1, entry)
    status = os.stat(path)
    _write(path, "\n".join(lines) + "\n", status.st_mode & 0o777, None)
    if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
        os.chown(path, status.st_uid, status.st_gid)
    return ["set data_dir = %s in %s (it was empty: the data directory would depend on "
            "who runs ddi-lite)" % (DATA_DIR, path)]


def _config_dir(path, group):
    """The configuration directory, made if missing: mode 0750, and group `group`."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o750)
        os.chmod(path, 0o750)  # whatever the umask
        if group is not None:
            os.chown(path, 0, group)
        return ["made %s (mode 0750%s)" % (path, ", group %s" % USER if group is not None
                                             else "")]
    return _keep_private(path, 0o750, group)


def _keep_private(path, mode, group):
    """An existing file or directory: made readable by root and `group` only, if it is not
    already. ddi-lite passwd as root may have created config.ini, root's alone."""
    status = os.stat(path)
    changed = []
    if status.st_mode & 0o777 != mode:
        os.chmod(path, mode)
        changed.append("mode %04o (was %04o)" % (mode, status.st_mode & 0o777))
    if group is not None and (status.st_uid, status.st_gid) != (0, group):
        os.chown(path, 0, group)
        changed.append("owner root:%s (was %s:%s)" % (USER, _name(pwd.getpwuid, status.st_uid),
                                                       _name(grp.getgrgid, status.st_gid)))
    return ["kept %s, now %s" % (path, " and ".join(changed))] if changed else []


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def _user_exists():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def _create_user():
    """A system user and group of that name, without a home or a login shell: the service
    only needs it to own its data directory and read its configuration."""
    useradd = shutil.which("useradd")
    if useradd is None:
        raise InstallError("cannot create the user %s: useradd not found (create a system "
                           "user and group %s, then run install-service again)" % (USER, USER))
    shell = next((path for path in ("/usr/sbin/nologin", "/sbin/nologin")
                  if os.path.exists(path)), "/bin/false")
    created = subprocess.run(
        [useradd, "--system", "--user-group", "--home-dir", DATA_DIR, "--no-create-home",
         "--shell", shell, "--comment", "ddi-lite update server", USER],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True)
    if created.returncode != 0:
        raise InstallError("useradd failed: %s" % created.stdout.strip())


def _daemon_reload():
    """Tell systemd that the unit changed; False when systemd does not run here (what
    sd_booted() checks)."""
    if not os.path.isdir("/run/systemd/system"):
        return False
    reloaded = subprocess.run(["systemctl", "daemon-reload"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
    if reloaded.returncode != 0:
        raise InstallError("systemctl daemon-reload failed: %s" % reloaded.stdout.strip())
    return True
