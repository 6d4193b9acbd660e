"""service.cli: the argparse definitions of the sub-commands that work on a server's own files
instead of serving: `passwd`, `backup`, `restore` and `install-service`.

`ddi_lite.main()` adds them beside `serve` and the client commands; each sets `handler`, the
function that runs it (`args.handler(args)` is the exit code), which imports
service.commands only when the command runs: a serving process never needs it.
"""

from service import configuration


def add_commands(commands, settings):
    """Add the sub-commands to `ddi-lite`'s parsers; `settings` is the server's schema (the
    backup and install commands read the settings file by it)."""
    passwd = commands.add_parser("passwd", help="set an operator's password in the settings file")
    passwd.add_argument("user")
    passwd.add_argument(
        "--config", metavar="FILE",
        help="settings file to write, created (mode 0600) if missing (default: the one serve "
             "reads: $%s, else ./%s, else %s; with none, %s as root, else ./%s)"
             % (configuration.CONFIG_VARIABLE, configuration.LOCAL_CONFIG,
                configuration.SYSTEM_CONFIG, configuration.SYSTEM_CONFIG,
                configuration.LOCAL_CONFIG))
    passwd.set_defaults(handler=_run("passwd"))
    backup = commands.add_parser(
        "backup", help="copy the database and artifacts into a new folder, also while serving")
    backup.add_argument("dest", metavar="DEST", help="the new folder (must not exist)")
    restore = commands.add_parser(
        "restore", help="put a backup into an empty data directory no server uses")
    restore.add_argument("src", metavar="SRC", help="a folder made by ddi-lite backup")
    for parser in (backup, restore):
        parser.add_argument("--config", metavar="FILE",
                            help="the server's " + configuration.CONFIG_HELP)
        parser.add_argument("--data-dir", dest="server.data_dir", metavar="DATA_DIR",
                            help="the server's data directory (as for serve)")
        parser.set_defaults(handler=_run("copy_data", settings))
    install = commands.add_parser(
        "install-service", help="install the systemd unit, its user ddi-lite and "
                                "/etc/ddi-lite/config.ini (as root)")
    install.add_argument("--root", metavar="DIR",
                         help="write the files under DIR instead (packages, tests): no user, "
                              "no owners, no systemctl; root not needed")
    install.set_defaults(handler=_run("install_service", settings))


def _run(function_name, *extra):
    def handler(args):
        from service import commands
        return getattr(commands, function_name)(args, *extra)
    return handler
