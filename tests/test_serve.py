"""`ddi-lite serve`: settings that could never serve stop it at once with one line and exit 2
(issue 9)."""

import pytest

import ddi_lite


@pytest.mark.parametrize("flag, value, message", [
    ("--port", "70000", "[server] port = '70000': must be from 1 to 65535"),
    ("--port", "-1", "[server] port = '-1': must be from 1 to 65535"),
    ("--threads", "0", "[server] threads = '0': must be from 1 to 2147483647"),
    ("--limits-login-failures", "-1",
     "[limits] login_failures = '-1': must be from 0 to 2147483647"),
])
def test_a_setting_out_of_range_exits_2_with_one_line(tmp_path, capsys, flag, value, message):
    code = ddi_lite.main(["serve", "--config", "/dev/null", "--data-dir", str(tmp_path),
                          flag, value])
    assert (code, capsys.readouterr().err) == (2, "ddi-lite: %s\n" % message)
