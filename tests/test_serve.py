"""`ddi-lite serve`: settings that could never serve stop it at once with one line and exit 2
(issue 9), and the "listening on" line comes only once the port is bound."""

import socket
import subprocess
import sys

import pytest
from live import PROJECT_DIR, clean_environment

import ddi_lite


@pytest.mark.parametrize("flag, value, message", [
    ("--port", "70000", "[server] port = '70000': must be from 1 to 65535"),
    ("--port", "-1", "[server] port = '-1': must be from 1 to 65535"),
    ("--threads", "0", "[server] threads = '0': must be from 1 to 2147483647"),
    ("--max-connections", "0", "[server] max_connections = '0': must be from 1 to 2147483647"),
    ("--limits-login-failures", "-1",
     "[limits] login_failures = '-1': must be from 0 to 2147483647"),
])
def test_a_setting_out_of_range_exits_2_with_one_line(tmp_path, capsys, flag, value, message):
    code = ddi_lite.main(["serve", "--config", "/dev/null", "--data-dir", str(tmp_path),
                          flag, value])
    assert (code, capsys.readouterr().err) == (2, "ddi-lite: %s\n" % message)


def test_a_port_in_use_exits_2_without_claiming_to_listen(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [sys.executable, "-m", "ddi_lite", "serve", "--config", "/dev/null",
             "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=PROJECT_DIR, env=clean_environment(), capture_output=True, text=True,
            timeout=30)
    assert completed.returncode == 2
    assert "listening on" not in completed.stderr
    assert completed.stderr.splitlines()[-1] == "ddi-lite: [Errno 98] Address already in use"
