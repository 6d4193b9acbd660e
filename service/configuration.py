"""Where the server's settings come from, and where its data goes by default.

A schema (a tuple of `Setting` rows, ddi_lite.SETTINGS) is read from built-in defaults, then
the settings file (--config, else $DDI_LITE_CONFIG, else ./config.ini, else the system-wide
file), then DDI_LITE_<SECTION>_<KEY> variables, then command-line flags. Also here: the data
directory when none is set (a service's, or the user's), the file `ddi-lite passwd` writes,
and the text of a settings file as config.ini ships. The schema itself and what each setting
does belong to the server (ddi_lite.py); the [accounts] section to storage.accounts.
"""

import collections
import configparser
import difflib
import ipaddress
import os
import textwrap

from storage import schedule
from storage.db import is_database_url
from storage.accounts import (ACCOUNTS_SECTION, DEFAULT_ACCOUNTS, BadAccount, SettingsFile,
                              accounts_in)

Setting = collections.namedtuple("Setting", "section key kind default help")


class ConfigError(ValueError):
    pass


# The whole numbers a kind of setting may be (a port beyond 65535 would wrap around; SQLite
# maps at most 2 GiB of a file, and quietly less than asked beyond).
INT_RANGES = {"port": (1, 65535), "positive": (1, 2 ** 31 - 1), "count": (0, 2 ** 31 - 1),
              "mib": (0, 2047)}


def convert(setting, value):
    if not isinstance(value, str):
        return value
    text = value.strip()
    kind = setting.kind
    try:
        if kind == "int":
            return int(text)
        if kind in INT_RANGES:
            low, high = INT_RANGES[kind]
            number = int(text)
            if not low <= number <= high:
                raise ValueError("must be from %d to %d" % (low, high))
            return number
        if kind == "workers":
            if text.lower() == "auto":
                return cores()
            number = int(text)
            if number < 1:
                raise ValueError("must be auto or at least 1")
            return number
        if kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError("not a boolean")
        if kind == "duration":
            schedule.parse_duration(text)
            return text
        if kind == "networks":
            # A frozenset keeps its hash once computed: every request looks its peer up
            # with it (service.forwarded), and a tuple's hash hashes each network anew.
            return frozenset(ipaddress.ip_network(part.strip(), strict=False)
                             for part in text.split(",") if part.strip())
        if kind == "database_url":
            if text and not is_database_url(text):
                raise ValueError("must be empty (SQLite) or "
                                 "postgresql://user:password@host:port/database")
            return text
        if kind == "path":
            return os.path.abspath(os.path.expanduser(text)) if text else ""
        return text
    except ValueError as error:
        raise ConfigError("[%s] %s = %r: %s" % (setting.section, setting.key, value, error))


def cores():
    """The cores this process may run on (its CPU affinity, which a container or
    systemd's CPUAffinity= may narrow), for `workers = auto`."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def flag_name(setting):
    prefix = "" if setting.section == "server" else setting.section + "-"
    return "--" + prefix + setting.key.replace("_", "-")


def add_setting_flags(parser, schema):
    """A flag (`--section-key`, `--key` in [server]) for each setting of `schema`; its value
    lands in the parsed arguments as "section.key", as `load` takes overrides."""
    for setting in schema:
        parser.add_argument(flag_name(setting), dest="%s.%s" % (setting.section, setting.key),
                            metavar=setting.key.upper(), help=setting.help)


def env_name(setting):
    return "DDI_LITE_%s_%s" % (setting.section.upper(), setting.key.upper())


class Config:
    """Effective settings: built-in defaults < config file < environment < command line.

    `accounts` maps operator user names to password hashes ([accounts] in the file). `source`
    says where the settings came from, for the log; `path` is the settings file read (absolute),
    None with built-in defaults. `accounts_file` (storage.accounts.SettingsFile) is where the
    server re-reads the accounts when it changes: the file read, or with built-in defaults the
    one `ddi-lite passwd` would create; None: the accounts are not re-read.
    """

    def __init__(self, values, source, accounts, path=None, accounts_file=None):
        self._values = values
        self.source = source
        self.accounts = accounts
        self.path = path
        self.accounts_file = accounts_file

    def __getitem__(self, section_key):
        return self._values[section_key]


# Read by the programs that talk to a server from outside (client/), so not the server's.
CLIENT_VARIABLES = ("DDI_LITE_URL", "DDI_LITE_USER", "DDI_LITE_PASSWORD")

# The settings file of every server-side command (serve, passwd, backup, restore): --config,
# else this variable, else ./config.ini, else the system-wide file, else built-in defaults.
CONFIG_VARIABLE = "DDI_LITE_CONFIG"
LOCAL_CONFIG = "config.ini"
SYSTEM_CONFIG = "/etc/ddi-lite/config.ini"
CONFIG_HELP = ("settings file (default: $%s, else ./%s, else %s, else built-in defaults)"
               % (CONFIG_VARIABLE, LOCAL_CONFIG, SYSTEM_CONFIG))


# The data directory of a server running as root, that is, of a service.
SYSTEM_DATA_DIR = "/var/lib/ddi-lite"


def default_data_dir(environ=None):
    """The data directory when [server] data_dir is empty: a service's (SYSTEM_DATA_DIR) for
    a process running as root, else the user's, as the XDG base directories have it."""
    environ = os.environ if environ is None else environ
    if os.geteuid() == 0:
        return SYSTEM_DATA_DIR
    base = environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # the XDG specification: a relative path is to be ignored
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "ddi-lite")


def _named_config(named, environ):
    """(the file --config or $DDI_LITE_CONFIG names, which of them named it), or None."""
    if named is not None:
        return named, "--config"
    if environ.get(CONFIG_VARIABLE):
        return environ[CONFIG_VARIABLE], CONFIG_VARIABLE
    return None


def find_config(named=None, environ=None):
    """The settings file to read, None when there is none. A file that --config (`named`) or
    $DDI_LITE_CONFIG names must exist: falling back to another file, or to the defaults, would
    serve settings the operator did not give."""
    environ = os.environ if environ is None else environ
    chosen = _named_config(named, environ)
    if chosen is not None:
        path, origin = chosen
        if not os.path.exists(path):
            raise ConfigError("settings file %s (from %s) does not exist" % (path, origin))
        return path
    for path in (LOCAL_CONFIG, SYSTEM_CONFIG):
        if os.path.exists(path):
            return path
    return None


def config_to_write(named=None, environ=None):
    """The settings file `ddi-lite passwd` writes, the one the server reads: the file --config
    or $DDI_LITE_CONFIG names (created if missing), else the one find_config finds, else the
    one to create: the system-wide file when running as root (a service's), else ./config.ini."""
    environ = os.environ if environ is None else environ
    chosen = _named_config(named, environ)
    if chosen is not None:
        return chosen[0]
    found = find_config(None, environ)
    if found is not None:
        return found
    return SYSTEM_CONFIG if os.geteuid() == 0 else LOCAL_CONFIG


def _check_variable_names(schema, environ):
    """A DDI_LITE_* variable that nothing reads is a mistake (a typo, a setting that does not
    exist): refuse it, so that the server does not start on settings it was not given."""
    prefix = "DDI_LITE_"
    known = {env_name(setting) for setting in schema} | set(CLIENT_VARIABLES) | \
        {CONFIG_VARIABLE}
    for name in sorted(environ):
        if name.upper().startswith(prefix) and name not in known:
            close = difflib.get_close_matches(name.upper()[len(prefix):],
                                              sorted(k[len(prefix):] for k in known), n=1)
            hint = ("did you mean %s%s?" % (prefix, close[0]) if close else
                    "a setting is DDI_LITE_<SECTION>_<KEY>, as in DDI_LITE_SERVER_PORT")
            raise ConfigError("unknown environment variable %s (%s)" % (name, hint))


def load(schema, path=None, environ=None, overrides=None):
    """The settings of `schema` (Setting rows) from the file find_config finds (`path`: what
    --config names), then the environment; `overrides` maps "section.key" to a value (flags,
    tests)."""
    environ = os.environ if environ is None else environ
    values = {(s.section, s.key): convert(s, s.default) for s in schema}
    accounts = dict(DEFAULT_ACCOUNTS)
    source = "built-in defaults, no settings file found"
    path = find_config(path, environ)
    if path is None:
        accounts_file = SettingsFile(config_to_write(None, environ))
    else:
        accounts_file = SettingsFile(path)
        try:
            parser = accounts_file.parse()
        except (OSError, configparser.Error) as error:
            raise ConfigError("cannot read %s: %s" % (path, error))
        try:
            accounts = accounts_in(parser, path)
        except BadAccount as error:
            raise ConfigError(str(error))
        known = {(s.section, s.key): s for s in schema}
        for section in parser.sections():
            if section == ACCOUNTS_SECTION:
                continue
            for key, value in parser.items(section):
                if (section, key) not in known:
                    raise ConfigError("%s: unknown setting [%s] %s" % (path, section, key))
                values[(section, key)] = convert(known[(section, key)], value)
        path = source = os.path.abspath(path)
    for setting in schema:
        if env_name(setting) in environ:
            values[(setting.section, setting.key)] = convert(setting, environ[env_name(setting)])
    _check_variable_names(schema, environ)
    for name, value in (overrides or {}).items():
        section, _, key = name.partition(".")
        setting = next((s for s in schema if (s.section, s.key) == (section, key)), None)
        if setting is None:
            raise ConfigError("unknown setting %s" % name)
        values[(section, key)] = convert(setting, value)
    if not values[("server", "data_dir")]:
        values[("server", "data_dir")] = default_data_dir(environ)
    return Config(values, source, accounts, path, accounts_file)


def file_text(schema, values):
    """A settings file as config.ini ships: every setting of `schema` with its comment and its
    default, or its text in `values` ("section.key" -> text), then the shipped account."""
    lines = ["# ddi-lite settings. Each one can also be given as a command-line flag (shown with",
             "# `ddi-lite serve --help`) or as an environment variable DDI_LITE_<SECTION>_<KEY>."]
    section = None
    for setting in schema:  # grouped by section
        if setting.section != section:
            section = setting.section
            lines += ["", "[%s]" % section]
        default = setting.default
        if isinstance(default, bool):
            default = "true" if default else "false"
        value = values.get("%s.%s" % (setting.section, setting.key), default)
        lines += textwrap.wrap("# " + setting.help, 96, subsequent_indent="# ")
        lines.append(("%s = %s" % (setting.key, value)).rstrip())
    lines += ["", "[%s]" % ACCOUNTS_SECTION,
              "# Operator logins for the Management API: user = password hash. Set one with",
              "# `ddi-lite passwd USER`. The shipped admin/admin matches hawkBit; change it."]
    lines += ["%s = %s" % account for account in DEFAULT_ACCOUNTS.items()]
    return "\n".join(lines) + "\n"
