"""The server-side sub-commands that work on a server's files instead of serving them:
`ddi-lite passwd`, `backup` and `restore`, `install-service`. Each takes its parsed arguments
(and the settings schema, ddi_lite.SETTINGS, where it reads the settings), prints what it did
and returns the exit code; ddi_lite.main() dispatches to them. The rules they apply live in
storage/ (accounts, backup) and service/ (configuration, systemd).
"""

import getpass
import os
import re
import sys

import artifacts
from service import artifact_store, configuration, systemd
from service.configuration import ConfigError
from storage import accounts
from storage import backup as backups


def passwd(args):
    """`ddi-lite passwd USER`: ask for a password (twice on a terminal) and store its hash."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", args.user):
        print("ddi-lite: a user name has 1 to 64 letters, digits or _.@-", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("New password for %s: " % args.user)
        if password != getpass.getpass("Again: "):
            print("ddi-lite: the passwords differ; nothing changed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("ddi-lite: an empty password is not allowed; nothing changed", file=sys.stderr)
        return 1
    path = configuration.config_to_write(args.config)
    try:
        if path == configuration.SYSTEM_CONFIG:  # a service's settings, the first time
            os.makedirs(os.path.dirname(path), exist_ok=True)
        accounts.set_password(path, args.user, accounts.hash_password(password))
    except OSError as error:
        print("ddi-lite: cannot write %s: %s; nothing changed" % (path, error), file=sys.stderr)
        return 1
    print("ddi-lite: password of %s stored in %s (a server reading this file takes it at its "
          "next login)" % (args.user, os.path.abspath(path)))
    return 0


def copy_data(args, schema):
    """`ddi-lite backup DEST` and `ddi-lite restore SRC` (storage/backup.py), on the data
    directory `serve` uses with the same --config and --data-dir."""
    def blob_store(directory):
        # The data directory's blobs are where [artifacts] store says (a bucket, perhaps); a
        # backup folder holds its own.
        if directory == data_dir:
            return artifact_store.blob_store(config)
        return artifacts.BlobStore(os.path.join(directory, "artifacts"))
    overrides = {name: value for name, value in vars(args).items()
                 if "." in name and value is not None}
    try:
        config = configuration.load(schema, args.config, overrides=overrides)
        data_dir = config["server", "data_dir"]
        if config["database", "url"]:
            raise backups.BackupError(backups.ON_POSTGRES % args.command)
        if args.command == "backup":
            manifest = backups.backup(data_dir, args.dest, blob_store)
            done = "backup of %s in %s" % (data_dir, os.path.abspath(args.dest))
        else:
            manifest = backups.restore(args.src, data_dir, blob_store)
            done = ("restored %s (made %s by ddi-lite %s) into %s; database integrity and "
                    "every artifact's hash checked" % (os.path.abspath(args.src),
                                                       manifest["created_at"],
                                                       manifest["ddi_lite_version"], data_dir))
    except ConfigError as error:
        print("ddi-lite: %s" % error, file=sys.stderr)
        return 2
    except (OSError, backups.BackupError) as error:
        print("ddi-lite: %s" % error, file=sys.stderr)
        return 1
    rows = manifest["rows"]
    print("ddi-lite: %s: %d targets, %d actions, %d artifact files (%d bytes), database %d bytes"
          % (done, rows.get("target", 0), rows.get("action", 0),
             manifest["artifacts"]["blobs"], manifest["artifacts"]["bytes"],
             manifest["database_bytes"]))
    return 0


def install_service(args, schema):
    """`ddi-lite install-service`: the systemd unit, its user, and /etc/ddi-lite/config.ini
    with the defaults and data in /var/lib/ddi-lite (service/systemd.py). Needs root, unless
    --root DIR puts the files into DIR (packages, tests) and leaves the system alone."""
    root = os.path.abspath(args.root or "/")
    if root == "/" and os.geteuid() != 0:
        print("ddi-lite: install-service writes to /etc and creates a user: run it as root "
              "(sudo), or give --root DIR to write the files into DIR", file=sys.stderr)
        return 2

    def settings_of(path):
        # As the service will read it: no DDI_LITE_* variables there.
        config = configuration.load(schema, path, environ={})
        return config["server", "port"], config["server", "data_dir"]
    text = configuration.file_text(schema, {"server.data_dir": systemd.DATA_DIR})
    try:
        changes, notes = systemd.install(root, systemd.installed_command(), text, settings_of)
    except systemd.InstallError as error:
        print("ddi-lite: %s" % error, file=sys.stderr)
        return error.code
    except (ConfigError, OSError) as error:
        print("ddi-lite: %s" % error, file=sys.stderr)
        return 1
    for line in changes + notes:
        print("ddi-lite: %s" % line)
    if not changes:
        print("ddi-lite: nothing changed: the service was installed already")
    print("Next steps:")
    for step in systemd.NEXT_STEPS:
        print("  " + step)
    return 0
