"""Operator accounts in the settings file: where `ddi-lite passwd` writes (the file the server
reads, by the same lookup) and how (created 0600, an existing file's mode and owner kept,
replaced at once)."""

import io
import os
import stat
import sys

import pytest

import ddi_lite
from storage import accounts as operator_accounts


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty working directory (work/) and a system-wide file path that does not exist yet
    (etc/ddi-lite/config.ini stands in for /etc/ddi-lite/config.ini); not root."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    system = tmp_path / "etc" / "ddi-lite" / "config.ini"
    monkeypatch.setattr(ddi_lite, "SYSTEM_CONFIG", str(system))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("DDI_LITE_CONFIG", raising=False)
    return {"local": work / "config.ini", "system": system}


def passwd(monkeypatch, user, password, *flags):
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
        assert passwd(monkeypatch, "admin", "n3w") == 0
    finally:
        os.umask(old_umask)
    assert mode(places["local"]) == 0o600
    assert not places["system"].exists()
    assert logs_in(None, "admin", "n3w") and not logs_in(None, "admin", "admin")


def test_passwd_as_root_without_any_settings_file_creates_the_system_wide_one_0600(
        places, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert passwd(monkeypatch, "admin", "n3w") == 0
    assert mode(places["system"]) == 0o600
    assert not places["local"].exists()
    assert logs_in(None, "admin", "n3w")


def test_passwd_creates_the_file_ddi_lite_config_names_and_serve_reads_it(places, monkeypatch,
                                                                          tmp_path):
    named = tmp_path / "named.ini"
    places["local"].write_text("[server]\nport = 1111\n")
    monkeypatch.setenv("DDI_LITE_CONFIG", str(named))
    assert passwd(monkeypatch, "ops", "s3cret") == 0
    assert mode(named) == 0o600
    assert "[accounts]" not in places["local"].read_text()
    assert logs_in(None, "ops", "s3cret")


def test_passwd_writes_the_file_serve_finds(places, monkeypatch):
    places["system"].parent.mkdir(parents=True)
    places["system"].write_text("[server]\nport = 1111\n")
    assert passwd(monkeypatch, "admin", "n3w") == 0
    assert not places["local"].exists()
    assert ddi_lite.load_config().path == str(places["system"])
    assert logs_in(None, "admin", "n3w")


def test_passwd_keeps_the_mode_of_an_existing_file_and_replaces_it(places, monkeypatch):
    places["local"].write_text("# mine\n[server]\nport = 1\n")
    os.chmod(str(places["local"]), 0o640)
    inode = os.stat(str(places["local"])).st_ino
    assert passwd(monkeypatch, "admin", "n3w", "--config", "config.ini") == 0
    assert mode(places["local"]) == 0o640
    assert os.stat(str(places["local"])).st_ino != inode
    assert places["local"].read_text().startswith("# mine\n[server]\nport = 1\n\n[accounts]\n")
    assert os.listdir(str(places["local"].parent)) == ["config.ini"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_passwd_keeps_the_owner_and_group_of_an_existing_file(places, monkeypatch):
    places["local"].write_text("[server]\nport = 1\n")
    os.chown(str(places["local"]), 4321, 4322)
    assert passwd(monkeypatch, "admin", "n3w") == 0
    written = os.stat(str(places["local"]))
    assert (written.st_uid, written.st_gid) == (4321, 4322)


def test_a_failed_write_leaves_the_file_as_it_was_and_no_temporary_file(places, monkeypatch,
                                                                        capsys):
    places["local"].write_text("[server]\nport = 1\n")

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    assert passwd(monkeypatch, "admin", "n3w") == 1
    assert places["local"].read_text() == "[server]\nport = 1\n"
    assert os.listdir(str(places["local"].parent)) == ["config.ini"]
    assert "No space left on device" in capsys.readouterr().err


def test_passwd_through_a_symbolic_link_writes_the_file_it_points_to(places, monkeypatch,
                                                                     tmp_path):
    target = tmp_path / "real.ini"
    target.write_text("[server]\nport = 1\n")
    places["local"].symlink_to(target)
    assert passwd(monkeypatch, "admin", "n3w") == 0
    assert places["local"].is_symlink()
    assert "[accounts]" in target.read_text()
