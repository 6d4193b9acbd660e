"""Settings: one schema behind config.ini, DDI_LITE_* variables and flags; operator accounts."""

import configparser
import io
import os
import re
import subprocess
import sys

import pytest

import database
import ddi_lite
from service import configuration
import storage
from storage import accounts as operator_accounts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shipped_config():
    with open(os.path.join(REPO, "config.ini"), encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_shipped_config_lists_every_setting_with_a_comment_and_its_default():
    lines = shipped_config()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string("\n".join(lines))
    for setting in ddi_lite.SETTINGS:
        assert parser.has_option(setting.section, setting.key), setting
        line = next(i for i, text in enumerate(lines)
                    if text.split("=")[0].strip() == setting.key)
        assert lines[line - 1].startswith("# "), "no comment above %s" % setting.key
        shipped = configuration.convert(setting, parser.get(setting.section, setting.key))
        assert shipped == configuration.convert(setting, setting.default), setting.key


def test_shipped_config_has_no_setting_outside_the_schema():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string("\n".join(shipped_config()))
    known = {(s.section, s.key) for s in ddi_lite.SETTINGS}
    for section in parser.sections():
        if section != operator_accounts.ACCOUNTS_SECTION:
            assert {(section, key) for key in parser.options(section)} <= known


def write(tmp_path, text):
    path = tmp_path / "settings.ini"
    path.write_text(text)
    return str(path)


def test_environment_overrides_the_file_and_flags_override_the_environment(tmp_path):
    path = write(tmp_path, "[server]\nport = 1111\n")
    assert ddi_lite.load_config(path, environ={})["server", "port"] == 1111
    environ = {"DDI_LITE_SERVER_PORT": "2222"}
    assert ddi_lite.load_config(path, environ=environ)["server", "port"] == 2222
    assert ddi_lite.load_config(path, environ=environ,
                                overrides={"server.port": "3333"})["server", "port"] == 3333


def test_every_setting_has_a_flag_and_an_environment_variable():
    flags = {configuration.flag_name(s) for s in ddi_lite.SETTINGS}
    assert {"--host", "--port", "--data-dir", "--ddi-min-polling-time"} <= flags
    assert len(flags) == len(ddi_lite.SETTINGS)
    assert configuration.env_name(ddi_lite.SETTINGS[0]) == "DDI_LITE_SERVER_HOST"


def test_data_dir_is_expanded_to_an_absolute_path(tmp_path):
    config = ddi_lite.load_config(environ={}, overrides={"server.data_dir": "~/x"})
    assert config["server", "data_dir"] == os.path.join(os.path.expanduser("~"), "x")


@pytest.mark.parametrize("text", ["[server]\nport = eighty\n", "[server]\nnope = 1\n",
                                  "[ddi]\npolling_time = soon\n",
                                  "[server]\ntrusted_proxies = everyone\n", "not ini"])
def test_a_bad_settings_file_is_a_config_error(tmp_path, text):
    with pytest.raises(ddi_lite.ConfigError):
        ddi_lite.load_config(write(tmp_path, text), environ={})


def test_serve_with_a_bad_flag_value_exits_2_with_a_message(capsys):
    assert ddi_lite.main(["serve", "--port", "eighty", "--config", os.devnull]) == 2
    assert "port" in capsys.readouterr().err


def test_passwd_stores_a_hash_that_logs_in_and_keeps_the_rest_of_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "# mine\n[server]\nport = 1\n\n[accounts]\nadmin = old\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    assert ddi_lite.main(["passwd", "operator", "--config", path]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("n3w\n"))
    assert ddi_lite.main(["passwd", "admin", "--config", path]) == 0
    text = open(path).read()
    assert text.startswith("# mine\n[server]\nport = 1\n")
    accounts = operator_accounts.Accounts(ddi_lite.load_config(path, environ={}).accounts)
    assert accounts.verify("operator", "s3cret")
    assert accounts.verify("admin", "n3w")
    assert not accounts.verify("admin", "admin")
    assert not accounts.verify("operator", "S3cret")


def test_password_hashes_are_salted():
    assert operator_accounts.hash_password("same") != operator_accounts.hash_password("same")


def test_the_shipped_admin_password_is_recognised_as_the_default():
    accounts = operator_accounts.Accounts(operator_accounts.DEFAULT_ACCOUNTS)
    assert accounts.default_password_in_use()
    assert not operator_accounts.Accounts({"admin": operator_accounts.hash_password("x")}) \
        .default_password_in_use()


def test_serve_logs_where_it_listens_and_which_config_and_data_it_uses(tmp_path):
    import live
    server = live.DdiLite(tmp_path)
    try:
        lines = [line for line in server.log().splitlines() if "listening on" in line]
    finally:
        server.stop()
    assert len(lines) == 1
    assert lines[0].endswith("ddi-lite listening on http://127.0.0.1:%d (config: %s, data: %s)"
                             % (server.port, server.config_path, tmp_path / "data"))


def test_serve_without_a_settings_file_logs_that_it_uses_the_built_in_defaults(tmp_path):
    import live
    port = live.free_port()
    log_path = tmp_path / "server.log"
    # The system-wide file is one that does not exist, in case this machine has the real one.
    script = ("import sys, ddi_lite; ddi_lite.configuration.SYSTEM_CONFIG = sys.argv[1]; "
              "sys.exit(ddi_lite.main(sys.argv[2:]))")
    with open(str(log_path), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "etc.ini"), "serve", "--host",
             "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=str(tmp_path), env=live.clean_environment(), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT)
    try:
        line = live.wait_until(
            lambda: [text for text in log_path.read_text().splitlines() if "listening" in text],
            live.STARTUP_TIMEOUT, "ddi-lite start-up", on_timeout=log_path.read_text)
    finally:
        live.stop_process(process)
    assert line[0].endswith("listening on http://127.0.0.1:%d (config: built-in defaults, no "
                            "settings file found, data: %s)" % (port, tmp_path / "data"))


# --- DDI_LITE_* variables that are not settings ----------------------------------------------

def test_an_unknown_ddi_lite_variable_is_a_config_error_naming_it():
    with pytest.raises(ddi_lite.ConfigError) as raised:
        ddi_lite.load_config(environ={"DDI_LITE_SERVER_PROT": "9090"})
    message = str(raised.value)
    assert "DDI_LITE_SERVER_PROT" in message and "DDI_LITE_SERVER_PORT" in message
    assert "\n" not in message


def test_a_ddi_lite_variable_in_the_wrong_case_is_a_config_error():
    with pytest.raises(ddi_lite.ConfigError, match="ddi_lite_server_port"):
        ddi_lite.load_config(environ={"ddi_lite_server_port": "9090"})


def test_serve_with_an_unknown_ddi_lite_variable_exits_2_naming_it(tmp_path, monkeypatch,
                                                                  capsys):
    served = []
    monkeypatch.setattr(ddi_lite, "serve", served.append)
    monkeypatch.setenv("DDI_LITE_LIMITS_MAX_BODY", "10")
    code = ddi_lite.main(["serve", "--config", os.devnull, "--data-dir", str(tmp_path)])
    error = capsys.readouterr().err
    assert (code, served) == (2, [])
    assert error.count("\n") == 1 and "DDI_LITE_LIMITS_MAX_BODY" in error


def test_the_variables_of_the_client_programs_do_not_stop_the_server():
    environ = {"DDI_LITE_URL": "http://gw:8080", "DDI_LITE_USER": "ops",
               "DDI_LITE_PASSWORD": "secret", "DDI_LITE_SERVER_PORT": "9090"}
    assert ddi_lite.load_config(environ=environ)["server", "port"] == 9090


def test_every_ddi_lite_variable_the_client_programs_read_is_allowed():
    client_dir = os.path.join(REPO, "client")
    read = set()
    for name in os.listdir(client_dir):
        if name.endswith(".py"):
            with open(os.path.join(client_dir, name), encoding="utf-8") as handle:
                read |= set(re.findall(r"\bDDI_LITE_[A-Z_]+", handle.read()))
    assert read and read <= set(configuration.CLIENT_VARIABLES)


# --- [accounts] values that are not password hashes ------------------------------------------

GOOD_HASH = operator_accounts.hash_password("s3cret", salt="c2FsdHNhbHQ", iterations=1000)
DIGEST = GOOD_HASH.rsplit("$", 1)[1]


@pytest.mark.parametrize("stored", [
    "", "s3cret", "pbkdf2_sha256$1000$c2FsdHNhbHQ", "md5$1000$c2FsdHNhbHQ$" + DIGEST,
    "pbkdf2_sha256$0$c2FsdHNhbHQ$" + DIGEST, "pbkdf2_sha256$many$c2FsdHNhbHQ$" + DIGEST,
    "pbkdf2_sha256$%d$c2FsdHNhbHQ$%s" % (2 ** 31, DIGEST), "pbkdf2_sha256$1000$$" + DIGEST,
    "pbkdf2_sha256$1000$s\u00e4lt$" + DIGEST, "pbkdf2_sha256$1000$c2FsdHNhbHQ$" + DIGEST[:-1],
    "pbkdf2_sha256$1000$c2FsdHNhbHQ$" + DIGEST + "=", GOOD_HASH + "$",
    "pbkdf2_sha256$" + "1" * 5000 + "$c2FsdHNhbHQ$" + DIGEST,
], ids=["empty", "plain password", "no hash", "other scheme", "no iterations",
        "iterations not a number", "iterations beyond hashlib", "empty salt", "non-ASCII salt",
        "hash too short", "padded hash", "a fifth field", "5000-digit iterations"])
def test_a_malformed_password_hash_is_a_config_error_naming_the_account(tmp_path, stored):
    path = write(tmp_path, "[accounts]\nadmin = %s\nops = %s\n" % (GOOD_HASH, stored))
    with pytest.raises(ddi_lite.ConfigError) as raised:
        ddi_lite.load_config(path, environ={})
    message = str(raised.value)
    assert "[accounts] ops" in message and "ddi-lite passwd ops" in message
    assert "\n" not in message


def test_serve_with_a_malformed_password_hash_exits_2_naming_the_account(tmp_path, monkeypatch,
                                                                        capsys):
    served = []
    monkeypatch.setattr(ddi_lite, "serve", served.append)
    path = write(tmp_path, "[accounts]\nadmin = changeme\n")
    code = ddi_lite.main(["serve", "--config", path, "--data-dir", str(tmp_path / "data")])
    error = capsys.readouterr().err
    assert (code, served) == (2, [])
    assert error.count("\n") == 1 and "[accounts] admin" in error


def test_hashes_of_ddi_lite_passwd_and_the_shipped_default_are_accepted(tmp_path):
    path = write(tmp_path, "[accounts]\nops = %s\nadmin = %s\n" % (
        operator_accounts.hash_password("x"), operator_accounts.DEFAULT_ACCOUNTS["admin"]))
    assert set(ddi_lite.load_config(path, environ={}).accounts) == {"ops", "admin"}


# --- which settings file: --config, $DDI_LITE_CONFIG, ./config.ini, /etc/ddi-lite/config.ini --

@pytest.fixture
def places(tmp_path, monkeypatch):
    """A settings file at every place of the lookup, each with its own port: the working
    directory is work/, the system-wide file (/etc/ddi-lite/config.ini) is etc/config.ini."""
    work = tmp_path / "work"
    (tmp_path / "etc").mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    files = {"flag": tmp_path / "flag.ini", "variable": tmp_path / "variable.ini",
             "local": work / "config.ini", "system": tmp_path / "etc" / "config.ini"}
    for port, path in enumerate(files.values(), 1001):
        path.write_text("[server]\nport = %d\n" % port)
    monkeypatch.setattr(configuration, "SYSTEM_CONFIG", str(files["system"]))
    return files


def used(flag=None, variable=None):
    """(the file read, the port it gave, the source the log names)."""
    config = ddi_lite.load_config(flag and str(flag), environ={"DDI_LITE_CONFIG": str(variable)}
                                  if variable else {})
    return config.path, config["server", "port"], config.source


def test_the_flag_names_the_settings_file_before_the_variable_and_the_usual_places(places):
    assert used(places["flag"], places["variable"]) == (str(places["flag"]), 1001,
                                                        str(places["flag"]))


def test_the_variable_names_the_settings_file_before_the_usual_places(places):
    assert used(variable=places["variable"])[:2] == (str(places["variable"]), 1002)


def test_without_a_name_the_local_config_ini_is_read_before_the_system_wide_one(places):
    assert used()[:2] == (str(places["local"]), 1003)
    places["local"].unlink()
    assert used()[:2] == (str(places["system"]), 1004)


def test_without_any_settings_file_the_built_in_defaults_are_used_and_said(places):
    places["local"].unlink()
    places["system"].unlink()
    assert used() == (None, 8080, "built-in defaults, no settings file found")


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_named_settings_file_that_does_not_exist_is_an_error_not_a_fallback(places, how):
    missing = places["local"].parent / "missing.ini"
    with pytest.raises(ddi_lite.ConfigError) as raised:
        used(**{how: missing})
    origin = "--config" if how == "flag" else "DDI_LITE_CONFIG"
    assert str(raised.value) == "settings file %s (from %s) does not exist" % (missing, origin)


@pytest.mark.parametrize("command", [["serve"], [], ["backup", "dest"], ["restore", "src"]])
@pytest.mark.parametrize("how", ["flag", "variable"])
def test_server_commands_with_a_missing_named_settings_file_exit_2_naming_it(
        places, monkeypatch, capsys, command, how):
    monkeypatch.setattr(ddi_lite, "serve", pytest.fail)
    missing = str(places["local"].parent / "missing.ini")
    if how == "flag":
        command = command + ["--config", missing]
    else:
        monkeypatch.setenv("DDI_LITE_CONFIG", missing)
    assert ddi_lite.main(command) == 2
    assert capsys.readouterr().err == "ddi-lite: settings file %s (from %s) does not exist\n" % (
        missing, "--config" if how == "flag" else "DDI_LITE_CONFIG")


def test_serve_reads_the_file_ddi_lite_config_names(places, monkeypatch):
    served = []
    monkeypatch.setattr(ddi_lite, "serve", served.append)
    monkeypatch.setenv("DDI_LITE_CONFIG", str(places["variable"]))
    assert ddi_lite.main(["serve", "--data-dir", str(places["local"].parent)]) == 0
    assert (served[0].path, served[0]["server", "port"]) == (str(places["variable"]), 1002)


@database.sqlite_only("backup copies the SQLite file (PostgreSQL: pg_dump)")
def test_backup_reads_the_data_directory_from_the_file_ddi_lite_config_names(
        places, monkeypatch, tmp_path):
    places["variable"].write_text("[server]\ndata_dir = %s\n" % (tmp_path / "data"))
    storage.open_store(str(tmp_path / "data"), 0)
    storage.close_store()
    monkeypatch.setenv("DDI_LITE_CONFIG", str(places["variable"]))
    assert ddi_lite.main(["backup", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy" / "manifest.json").exists()


def test_the_help_of_each_server_command_gives_the_lookup_order(capsys):
    for command in (["serve"], ["passwd", "admin"], ["backup", "x"], ["restore", "x"]):
        with pytest.raises(SystemExit):
            ddi_lite.main(command + ["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "$DDI_LITE_CONFIG, else ./config.ini, else /etc/ddi-lite/config.ini" in text, \
            command


# --- the default data directory -----------------------------------------------------------------

SHIPPED = os.path.join(REPO, "config.ini")


def test_the_data_directory_of_a_server_running_as_root_is_var_lib_ddi_lite(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    environ = {"XDG_DATA_HOME": "/home/ops/.data"}
    assert configuration.default_data_dir(environ) == "/var/lib/ddi-lite"
    assert ddi_lite.load_config(SHIPPED, environ=environ)["server", "data_dir"] == \
        "/var/lib/ddi-lite"


def test_the_data_directory_of_a_user_is_under_xdg_data_home(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    environ = {"XDG_DATA_HOME": "/home/ops/.data"}
    assert configuration.default_data_dir(environ) == "/home/ops/.data/ddi-lite"
    assert ddi_lite.load_config(SHIPPED, environ=environ)["server", "data_dir"] == \
        "/home/ops/.data/ddi-lite"


@pytest.mark.parametrize("environ", [{}, {"XDG_DATA_HOME": ""}, {"XDG_DATA_HOME": "data"}],
                         ids=["unset", "empty", "relative"])
def test_without_a_usable_xdg_data_home_a_users_data_is_in_local_share(monkeypatch, environ):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert configuration.default_data_dir(environ) == os.path.join(
        os.path.expanduser("~"), ".local", "share", "ddi-lite")


def test_a_data_directory_that_is_set_wins_over_the_default(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert ddi_lite.load_config(SHIPPED, environ={"DDI_LITE_SERVER_DATA_DIR": str(tmp_path)})[
        "server", "data_dir"] == str(tmp_path)
