"""The rooms keep to themselves at run time: the server starts without loading the programs
that talk to it from outside (client/), and those programs load nothing of the server.

Each test imports in a fresh interpreter and reads its `sys.modules`, so that what this test
process happens to have imported already does not count.
"""

import json
import subprocess
import sys

import live

CLIENT_PROGRAMS = {"client.http", "client.commands", "client.simulator"}
SERVER_MODULES = {"ddi_lite", "storage", "artifacts", "bottle", "peewee", "waitress"}

# `ddi-lite serve` through the real parser and serve(), with waitress's serve() stubbed out
# so that the process does not start listening; create_app(config) called directly as well,
# as a WSGI host would.
SERVER_START = """
import os, sys
served = []
import ddi_lite
ddi_lite.serve = lambda config: served.append(config)  # the parser path, without a socket
config = ddi_lite.load_config(path=None, environ={}, overrides={
    "server.data_dir": os.path.join(sys.argv[1], "app"), "server.trusted_proxies": ""})
ddi_lite.create_app(config)
code = ddi_lite.main(["serve", "--config", os.devnull, "--port", "8080",
                      "--data-dir", os.path.join(sys.argv[1], "serve")])
assert code == 0 and served, code
"""


def modules_after(code, tmp_path):
    """The names in sys.modules of a fresh interpreter (in the project directory) that ran
    `code` with argv[1] = tmp_path."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=live.PROJECT_DIR,
                            env=live.clean_environment(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_server_starts_without_loading_the_client_programs(tmp_path):
    loaded = modules_after(SERVER_START, tmp_path)
    assert {"ddi_lite", "waitress", "client.cli"} <= loaded
    assert loaded & CLIENT_PROGRAMS == set()


def test_the_client_programs_load_nothing_of_the_server(tmp_path):
    loaded = modules_after("import client.commands, client.simulator", tmp_path)
    assert CLIENT_PROGRAMS <= loaded
    assert {name.split(".")[0] for name in loaded} & SERVER_MODULES == set()
