"""The systemd unit (service/ddi-lite.service) and `ddi-lite install-service`, which puts it
in place with a config.ini the service alone can read.

install-service runs with `--root DIR` here, as a packager would: it writes the unit and the
configuration under DIR and leaves the system (users, owners, systemctl) alone. The unit it
writes is checked by systemd's own parser, `systemd-analyze verify` (Debian package
`systemd`), and its ExecStart= is run.
"""

import configparser
import io
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from live import PROJECT_DIR, clean_environment

import ddi_lite
from service import configuration, connections, systemd
from storage.accounts import DEFAULT_ACCOUNTS, Accounts

UNIT = "etc/systemd/system/ddi-lite.service"
CONFIG = "etc/ddi-lite/config.ini"
HASH = DEFAULT_ACCOUNTS["admin"]
# The console script setup.cfg declares, as pip installed it beside this Python.
CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "ddi-lite")


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def install_service(root, *options):
    """`ddi-lite install-service --root ROOT` through the console script: (exit code, output)."""
    completed = subprocess.run([CONSOLE_SCRIPT, "install-service", "--root", str(root)] +
                               list(options), cwd=str(root.parent), env=clean_environment(),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
    return completed.returncode, completed.stdout + completed.stderr


def unit_settings(root):
    """The unit's [Service] settings: key -> list of values, in file order."""
    settings = {}
    section = None
    for line in (root / UNIT).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def mode(path):
    return os.stat(str(path)).st_mode & 0o777


@pytest.fixture
def installed(tmp_path):
    root = tmp_path / "root"
    code, output = install_service(root)
    assert code == 0, output
    return root


def test_install_service_writes_the_unit_and_a_config_only_the_service_may_read(installed):
    assert mode(installed / UNIT) == 0o644
    assert mode(installed / "etc/ddi-lite") == 0o750
    assert mode(installed / CONFIG) == 0o640
    config = ddi_lite.load_config(str(installed / CONFIG), environ={})
    assert config["server", "data_dir"] == "/var/lib/ddi-lite" == systemd.DATA_DIR
    for setting in ddi_lite.SETTINGS:
        if setting.key != "data_dir":
            assert config[setting.section, setting.key] == \
                configuration.convert(setting, setting.default), setting.key
    assert config.accounts == DEFAULT_ACCOUNTS


def test_install_service_a_second_time_changes_nothing_and_says_so(installed):
    before = {path: (path.read_bytes(), os.stat(str(path)).st_mtime_ns)
              for path in (installed / UNIT, installed / CONFIG)}
    code, output = install_service(installed)
    assert code == 0, output
    assert "ddi-lite: nothing changed: the service was installed already" in output
    assert "wrote" not in output
    assert {path: (path.read_bytes(), os.stat(str(path)).st_mtime_ns) for path in before} \
        == before


def test_install_service_keeps_an_existing_config_but_makes_it_private(tmp_path):
    root = tmp_path / "root"
    (root / "etc/ddi-lite").mkdir(parents=True)
    text = "[server]\nport = 443\ndata_dir = /srv/ddi-lite\n"
    (root / CONFIG).write_text(text)
    os.chmod(str(root / CONFIG), 0o644)
    code, output = install_service(root)
    assert code == 0, output
    assert (root / CONFIG).read_text() == text
    assert mode(root / CONFIG) == 0o640
    assert "kept %s, now mode 0640 (was 0644)" % (root / CONFIG) in output
    # Port 443 needs the one capability; /srv/ddi-lite must be writable under ProtectSystem.
    unit = unit_settings(root)
    assert unit["CapabilityBoundingSet"] == unit["AmbientCapabilities"] == \
        ["CAP_NET_BIND_SERVICE"]
    assert unit["ReadWritePaths"] == ["/srv/ddi-lite"]
    assert "chown -R ddi-lite: /srv/ddi-lite" in output


@pytest.mark.parametrize("text, expected", [
    ("# mine\n[server]\nport = 8080\ndata_dir =\n\n[accounts]\n",
     "# mine\n[server]\nport = 8080\ndata_dir = /var/lib/ddi-lite\n\n[accounts]\n"),
    ("[accounts]\nadmin = %s\n" % HASH,
     "[accounts]\nadmin = %s\n\n[server]\ndata_dir = /var/lib/ddi-lite\n" % HASH),
    ("[server]\nport = 8080\n", "[server]\ndata_dir = /var/lib/ddi-lite\nport = 8080\n"),
], ids=["empty", "no [server] (made by passwd)", "not set"])
def test_install_service_gives_an_existing_config_without_data_dir_the_services(
        tmp_path, text, expected):
    """Left empty, data_dir would be the home of whoever runs ddi-lite: the service's user
    and an operator's backup as root would use different directories."""
    root = tmp_path / "root"
    (root / "etc/ddi-lite").mkdir(parents=True)
    (root / CONFIG).write_text(text)
    code, output = install_service(root)
    assert code == 0, output
    assert (root / CONFIG).read_text() == expected
    assert "set data_dir = /var/lib/ddi-lite in %s" % (root / CONFIG) in output
    assert "nothing changed" in install_service(root)[1]


def test_install_service_without_root_and_without_root_option_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert ddi_lite.main(["install-service"]) == 2
    assert capsys.readouterr().err == (
        "ddi-lite: install-service writes to /etc and creates a user: run it as root (sudo), "
        "or give --root DIR to write the files into DIR\n")


def test_a_ddi_lite_the_service_cannot_see_is_named(tmp_path, monkeypatch, capsys):
    command = tmp_path / "ddi-lite"
    command.write_text("#!/home/op/venv/bin/python3\n")
    monkeypatch.setattr(systemd, "installed_command", lambda: str(command))
    monkeypatch.setattr(systemd, "HIDDEN_FROM_SERVICE", ("/home/", str(tmp_path) + "/"))
    assert ddi_lite.main(["install-service", "--root", str(tmp_path / "root")]) == 0
    out = capsys.readouterr().out
    assert ("ddi-lite: warning: the ddi-lite command, %s, is under /%s, which the service "
            "cannot see (ProtectHome=yes)" % (command, command.parts[1])) in out
    assert ("ddi-lite: warning: the Python it runs on, /home/op/venv/bin/python3, is under "
            "/home, which the service cannot see (ProtectHome=yes)") in out


def test_passwd_keeps_the_installed_config_private(installed, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n3w password\n"))
    umask = os.umask(0o022)  # a new file would be 0644
    try:
        assert ddi_lite.main(["passwd", "admin", "--config", str(installed / CONFIG)]) == 0
    finally:
        os.umask(umask)
    assert mode(installed / CONFIG) == 0o640
    accounts = Accounts(ddi_lite.load_config(str(installed / CONFIG), environ={})
                                 .accounts)
    assert accounts.verify("admin", "n3w password")


@pytest.mark.parametrize("config", [None, "[server]\nport = 443\ndata_dir = /srv/ddi-lite\n"],
                         ids=["defaults", "low port and own data_dir"])
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path, config):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        message = "systemd-analyze is not installed: needs the Debian package 'systemd'"
        if in_ci():
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip(message)
    root = tmp_path / "root"
    if config is not None:
        (root / "etc/ddi-lite").mkdir(parents=True)
        (root / CONFIG).write_text(config)
    assert install_service(root)[0] == 0
    verified = subprocess.run([tool, "verify", str(root / UNIT)], capture_output=True,
                              text=True, timeout=60)
    # Unknown keys and bad values are only warnings on stderr; any line about the unit fails.
    assert (verified.returncode, verified.stderr) == (0, ""), verified.stderr


def test_the_unit_runs_the_ddi_lite_console_script_serving_the_installed_config(installed):
    entry_points = configparser.ConfigParser()
    entry_points.read(os.path.join(PROJECT_DIR, "setup.cfg"))
    assert entry_points["options.entry_points"]["console_scripts"].split() == \
        ["ddi-lite", "=", "ddi_lite:main"]
    command = shlex.split(unit_settings(installed)["ExecStart"][0])
    assert command == [os.path.realpath(CONSOLE_SCRIPT), "serve", "--config",
                       "/etc/ddi-lite/config.ini"]
    assert "from ddi_lite import main" in open(command[0]).read()
    helped = subprocess.run(command[:2] + ["--help"], env=clean_environment(),
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: ddi-lite serve")


def test_the_unit_is_a_hardened_notify_service_of_its_own_user(installed):
    unit = unit_settings(installed)
    expected = {
        "Type": ["notify"], "User": ["ddi-lite"], "Group": ["ddi-lite"],
        # serve re-reads the accounts on SIGHUP.
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "StateDirectory": ["ddi-lite"], "Restart": ["on-failure"],
        "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"], "PrivateDevices": ["yes"],
        # AF_UNIX: the datagram to systemd's notify socket.
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "CapabilityBoundingSet": [""], "AmbientCapabilities": [""], "ReadWritePaths": [""],
    }
    assert {key: unit.get(key) for key in expected} == expected
    stop_timeout = next(s.default for s in ddi_lite.SETTINGS if s.key == "stop_timeout")
    # The stop's bound, a turn of the event loop (1 s) and the commit fit in with room.
    assert int(unit["TimeoutStopSec"][0]) >= 2 * stop_timeout + 5
    max_connections = next(s.default for s in ddi_lite.SETTINGS if s.key == "max_connections")
    assert unit["LimitNOFILE"] == [str(3 * max_connections + connections.OTHER_OPEN_FILES)]


def test_an_installed_wheel_carries_the_unit():
    """What setuptools copies into a wheel besides the modules (setup.cfg package_data)."""
    found = subprocess.run(
        [sys.executable, "-c",
         "from setuptools.dist import Distribution\n"
         "dist = Distribution()\n"
         "dist.parse_config_files()\n"
         "build = dist.get_command_obj('build_py')\n"
         "build.ensure_finalized()\n"
         "print(*[package + '/' + name for package, _, _, names in build.data_files\n"
         "        for name in names])\n"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    # The console's templates and static files travel as package data too.
    console = [os.path.relpath(os.path.join(folder, name), PROJECT_DIR)
               for part in ("views", "static")
               for folder, _, names in os.walk(os.path.join(PROJECT_DIR, "console", part))
               for name in names]
    assert len(console) >= 2
    assert sorted(found.stdout.split()) == sorted(["service/ddi-lite.service"] + console), \
        found.stderr


def test_readme_shows_the_steps_install_service_prints():
    with open(os.path.join(PROJECT_DIR, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    part = readme[readme.index("### Run it as a service"):]
    part = part[:part.index("\n### ", 1)]
    for step in ("ddi-lite install-service",) + systemd.NEXT_STEPS:
        assert step.split("    #")[0] in part, step
    assert "stop_timeout" in part and "journalctl -u ddi-lite" in part
