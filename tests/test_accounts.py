"""Operator accounts in the settings file: where `ddi-lite passwd` writes (the file the server
reads, by the same lookup) and how (created 0600, an existing file's mode and owner kept,
replaced at once), and how a running server takes the new password without a restart (a login
looks whether the file changed, SIGHUP re-reads it), in-process and between real processes."""

import base64
import io
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import live
import pytest
import webtest
from conftest import DEVICE

import ddi_lite
from service import configuration
from storage import accounts as operator_accounts


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty working directory (work/) and a system-wide file path that does not exist yet
    (etc/ddi-lite/config.ini stands in for /etc/ddi-lite/config.ini); not root."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    system = tmp_path / "etc" / "ddi-lite" / "config.ini"
    monkeypatch.setattr(configuration, "SYSTEM_CONFIG", str(system))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("DDI_LITE_CONFIG", raising=False)
    return {"local": work / "config.ini", "system": system}


def passwd_here(monkeypatch, user, password, *flags):
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return ddi_lite.main(["passwd", user, *flags])


def logs_in(path, user, password):
    """Whether the server, reading its settings as `serve` does, lets this login in."""
    config = ddi_lite.load_config(None if path is None else str(path))
    return operator_accounts.Accounts(config.accounts).verify(user, password)


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_passwd_without_any_settings_file_creates_config_ini_here_mode_0600(places,
                                                                              monkeypatch):
    old_umask = os.umask(0)  # a file created 0666 and narrowed afterwards would show
    try:
        assert passwd_here(monkeypatch, "admin", "n3w") == 0
    finally:
        os.umask(old_umask)
    assert mode(places["local"]) == 0o600
    assert not places["system"].exists()
    assert logs_in(None, "admin", "n3w") and not logs_in(None, "admin", "admin")


def test_passwd_as_root_without_any_settings_file_creates_the_system_wide_one_0600(
        places, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert passwd_here(monkeypatch, "admin", "n3w") == 0
    assert mode(places["system"]) == 0o600
    assert not places["local"].exists()
    assert logs_in(None, "admin", "n3w")


def test_passwd_creates_the_file_ddi_lite_config_names_and_serve_reads_it(places, monkeypatch,
                                                                          tmp_path):
    named = tmp_path / "named.ini"
    places["local"].write_text("[server]\nport = 1111\n")
    monkeypatch.setenv("DDI_LITE_CONFIG", str(named))
    assert passwd_here(monkeypatch, "ops", "s3cret") == 0
    assert mode(named) == 0o600
    assert "[accounts]" not in places["local"].read_text()
    assert logs_in(None, "ops", "s3cret")


def test_passwd_writes_the_file_serve_finds(places, monkeypatch):
    places["system"].parent.mkdir(parents=True)
    places["system"].write_text("[server]\nport = 1111\n")
    assert passwd_here(monkeypatch, "admin", "n3w") == 0
    assert not places["local"].exists()
    assert ddi_lite.load_config().path == str(places["system"])
    assert logs_in(None, "admin", "n3w")


def test_passwd_keeps_the_mode_of_an_existing_file_and_replaces_it(places, monkeypatch):
    places["local"].write_text("# mine\n[server]\nport = 1\n")
    os.chmod(str(places["local"]), 0o640)
    inode = os.stat(str(places["local"])).st_ino
    assert passwd_here(monkeypatch, "admin", "n3w", "--config", "config.ini") == 0
    assert mode(places["local"]) == 0o640
    assert os.stat(str(places["local"])).st_ino != inode
    assert places["local"].read_text().startswith("# mine\n[server]\nport = 1\n\n[accounts]\n")
    assert os.listdir(str(places["local"].parent)) == ["config.ini"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_passwd_keeps_the_owner_and_group_of_an_existing_file(places, monkeypatch):
    places["local"].write_text("[server]\nport = 1\n")
    os.chown(str(places["local"]), 4321, 4322)
    assert passwd_here(monkeypatch, "admin", "n3w") == 0
    written = os.stat(str(places["local"]))
    assert (written.st_uid, written.st_gid) == (4321, 4322)


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temporary_file(places, monkeypatch,
                                                                        capsys):
    places["local"].write_text("[server]\nport = 1\n")

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    assert passwd_here(monkeypatch, "admin", "n3w") == 1
    assert places["local"].read_text() == "[server]\nport = 1\n"
    assert os.listdir(str(places["local"].parent)) == ["config.ini"]
    assert "No space left on device" in capsys.readouterr().err


def test_passwd_runs_at_the_same_moment_keep_every_account(tmp_path):
    """Each run reads the file, adds its account and renames a new file over it: without
    taking turns, a later rename drops what an earlier run wrote."""
    path = tmp_path / "config.ini"
    path.write_text("[server]\nport = 8080\n")
    users = ["op%d" % number for number in range(16)]
    start = threading.Barrier(len(users))

    def run(user):
        start.wait()
        operator_accounts.set_password(str(path), user, operator_accounts.DEFAULT_ACCOUNTS[
            "admin"])
    threads = [threading.Thread(target=run, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    stored = operator_accounts.SettingsFile(str(path)).parse()
    assert sorted(stored.options(operator_accounts.ACCOUNTS_SECTION)) == sorted(users)
    assert stored.get("server", "port") == "8080"


def test_passwd_through_a_symbolic_link_writes_the_file_it_points_to(places, monkeypatch,
                                                                     tmp_path):
    target = tmp_path / "real.ini"
    target.write_text("[server]\nport = 1\n")
    places["local"].symlink_to(target)
    assert passwd_here(monkeypatch, "admin", "n3w") == 0
    assert places["local"].is_symlink()
    assert "[accounts]" in target.read_text()


# --- a new password without a restart: in-process ------------------------------------------------

FAST = {"iterations": 1000}


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode("ascii")


@pytest.fixture
def clock(monkeypatch):
    """The monotonic clock the accounts see, moved by the test: [now]."""
    now = [1000.0]
    monkeypatch.setattr(operator_accounts.time, "monotonic", lambda: now[0])
    return now


@pytest.fixture
def looks(monkeypatch):
    """How often a login looked whether a settings file changed (one stat each): [count]."""
    count = [0]
    changed = operator_accounts.SettingsFile.changed

    def counting(self):
        count[0] += 1
        return changed(self)
    monkeypatch.setattr(operator_accounts.SettingsFile, "changed", counting)
    return count


def settings(tmp_path, password="admin"):
    """A settings file with admin's password, and the accounts a server reading it checks."""
    path = tmp_path / "settings.ini"
    path.write_text("[server]\nport = 1\n\n[accounts]\nadmin = %s\n"
                    % operator_accounts.hash_password(password, **FAST))
    return path, ddi_lite.operator_accounts(ddi_lite.load_config(str(path), environ={}))


def change_password(path, user, password):
    operator_accounts.set_password(str(path), user,
                                   operator_accounts.hash_password(password, **FAST))


def test_a_login_after_the_file_changed_checks_the_new_password(tmp_path, clock):
    path, accounts = settings(tmp_path)
    assert accounts.verify("admin", "admin")
    change_password(path, "admin", "n3w")
    clock[0] += 1
    assert accounts.verify("admin", "n3w")
    assert not accounts.verify("admin", "admin")


def test_logins_look_at_the_settings_file_at_most_once_a_second(tmp_path, clock, looks):
    path, accounts = settings(tmp_path)
    looks[0] = 0
    for _ in range(5):
        accounts.verify("admin", "admin")
    assert looks[0] == 1
    change_password(path, "admin", "n3w")
    clock[0] += 0.9
    assert accounts.verify("admin", "admin") and looks[0] == 1
    clock[0] += 0.1
    assert accounts.verify("admin", "n3w") and looks[0] == 2


def test_device_requests_never_look_at_the_settings_file(server, looks):
    server.target()
    looks[0] = 0
    for _ in range(3):
        server.http.get(DEVICE + "/dev-1", headers={"Authorization": "TargetToken token-1"},
                        status=200)
    server.http.get(DEVICE + "/dev-1", headers={"Authorization": "TargetToken nope"},
                    status=401)
    assert looks[0] == 0
    server.http.get("/rest/v1/targets", headers={"Authorization": basic("admin", "admin")},
                    status=200)
    assert looks[0] == 1


@pytest.mark.parametrize("breakage", ["not ini", "malformed hash", "not UTF-8", "deleted"])
def test_a_settings_file_that_cannot_be_read_keeps_the_accounts_and_warns(
        tmp_path, clock, caplog, breakage):
    path, accounts = settings(tmp_path)
    config = ddi_lite.load_config(str(path), environ={},
                                  overrides={"server.data_dir": str(tmp_path / "data")})
    http = webtest.TestApp(ddi_lite.create_app(config, accounts))
    if breakage == "deleted":
        path.unlink()
    else:
        path.write_bytes({"not ini": b"admin = n3w\n",
                          "malformed hash": b"[accounts]\nadmin = n3w\n",
                          "not UTF-8": b"[accounts]\nadmin = \xff\n"}[breakage])
    clock[0] += 1
    http.get("/rest/v1/targets", headers={"Authorization": basic("admin", "admin")}, status=200)
    http.get("/rest/v1/targets", headers={"Authorization": basic("admin", "n3w")}, status=401)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(
        "operator accounts NOT reloaded (the file changed): cannot read %s: " % path)
    clock[0] += 1  # the same broken file is not read again
    http.get("/rest/v1/targets", headers={"Authorization": basic("admin", "admin")}, status=200)
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


def test_a_file_mended_after_a_failed_reload_is_read(tmp_path, clock):
    path, accounts = settings(tmp_path)
    path.write_text("[accounts]\nadmin = n3w\n")
    clock[0] += 1
    assert accounts.verify("admin", "admin")
    change_password(path, "admin", "n3w")
    clock[0] += 1
    assert accounts.verify("admin", "n3w")


def test_reload_reads_the_file_at_once_and_says_only_the_accounts_were_reloaded(tmp_path,
                                                                                caplog):
    path, accounts = settings(tmp_path)
    change_password(path, "ops", "s3cret")
    with caplog.at_level("INFO", logger="ddi-lite"):
        accounts.reload("SIGHUP")
    assert accounts.verify("ops", "s3cret")
    assert caplog.records[-1].getMessage() == (
        "operator accounts reloaded from %s (SIGHUP): 2 accounts; other settings change only "
        "when the server restarts" % path)


def test_a_server_without_a_settings_file_takes_the_one_passwd_creates(places, monkeypatch,
                                                                       clock):
    config = ddi_lite.load_config()
    assert config.path is None
    accounts = ddi_lite.operator_accounts(config)
    assert accounts.verify("admin", "admin")
    assert passwd_here(monkeypatch, "admin", "n3w") == 0
    clock[0] += 1
    assert accounts.verify("admin", "n3w")
    assert not accounts.verify("admin", "admin")


# --- a new password without a restart: a real server and a real `ddi-lite passwd` ----------------

def login_status(url, user, password):
    request = urllib.request.Request(url + "/rest/v1/targets",
                                     headers={"Authorization": basic(user, password)})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def run_passwd(user, password, cwd, **environment):
    """`ddi-lite passwd USER` as the operator runs it: its own process, the password on stdin."""
    completed = subprocess.run([sys.executable, "-m", "ddi_lite", "passwd", user],
                               input=password + "\n", cwd=str(cwd), capture_output=True,
                               text=True, timeout=30,
                               env=live.clean_environment(**environment))
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture
def running(tmp_path):
    """`ddi-lite serve --config FILE` whose [accounts] has admin/admin, with no pause after
    wrong logins (the tests try the new password until it is taken)."""
    server = live.DdiLite(tmp_path, config_lines=[
        "[limits]", "login_failures = 0",
        "[accounts]", "admin = " + operator_accounts.hash_password("admin")])
    try:
        assert login_status(server.url, "admin", "admin") == 200
        yield server
    finally:
        server.stop()


def test_a_running_server_takes_the_password_passwd_writes_when_the_file_changes(running,
                                                                                 tmp_path):
    said = run_passwd("admin", "n3w-secret", tmp_path, DDI_LITE_CONFIG=str(running.config_path))
    assert str(running.config_path) in said
    live.wait_until(lambda: login_status(running.url, "admin", "n3w-secret") == 200, 10,
                    "the new password taken", on_timeout=running.log)
    assert login_status(running.url, "admin", "admin") == 401
    assert "operator accounts reloaded from %s (the file changed): 1 account;" \
        % running.config_path in running.log()


def test_a_running_server_takes_the_password_on_sighup_when_the_file_looks_unchanged(running,
                                                                                     tmp_path):
    """The new file's bytes are written into the old file in place, with its size and time
    kept, so that a login cannot see the change: only SIGHUP can make the server read it."""
    path = running.config_path
    before = os.stat(str(path))
    side = tmp_path / "side.ini"
    shutil.copyfile(str(path), str(side))
    run_passwd("admin", "n3w-secret", tmp_path, DDI_LITE_CONFIG=str(side))
    new = side.read_bytes()
    assert len(new) == before.st_size  # a hash is as long as the one it replaces
    with open(str(path), "r+b") as handle:
        handle.write(new)
    os.utime(str(path), ns=(before.st_atime_ns, before.st_mtime_ns))
    time.sleep(operator_accounts.Accounts.look_interval + 0.2)
    assert login_status(running.url, "admin", "n3w-secret") == 401  # the file was looked at
    assert "operator accounts reloaded" not in running.log()

    running.process.send_signal(signal.SIGHUP)
    live.wait_until(lambda: "operator accounts reloaded from %s (SIGHUP): 1 account; other "
                    "settings change only when the server restarts" % path in running.log(), 10,
                    "the SIGHUP log line", on_timeout=running.log)
    assert login_status(running.url, "admin", "n3w-secret") == 200
    assert login_status(running.url, "admin", "admin") == 401
    assert running.process.poll() is None
