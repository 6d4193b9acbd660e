"""Fixtures of the real-client tier: a live ddi-lite per test, recording proxies, SWUpdate
processes and rauc-hawkbit clients, each stopped in a finalizer with bounded waits.

A missing client skips its tests with the package to install; when CI=true it fails them
instead, so that CI can never pass by skipping.
"""

import contextlib
import os
import shutil

import pytest
from live import DdiLite

from . import rauc, swupdate
from .harness import Operator
from .proxy import RecordingProxy
from .swu import SigningKey

POLLING_TIME = "00:00:01"


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(message):
    if in_ci():
        pytest.fail("CI=true: " + message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def swupdate_installed():
    if swupdate.binary() is None:
        missing("SWUpdate is not installed: needs the Debian package 'swupdate' "
                "(apt-get install swupdate)")
    if shutil.which("openssl") is None:
        missing("openssl is not installed: needs the Debian package 'openssl' to sign .swu "
                "images (apt-get install openssl)")


@pytest.fixture(scope="session")
def rauc_hawkbit_installed():
    error = rauc.import_error()
    if error is not None:
        missing("rauc-hawkbit is not importable (%s): needs the PyPI packages 'rauc-hawkbit' "
                "(pip install --no-deps rauc-hawkbit) and 'aiohttp'" % error)


class Server:
    """A running ddi-lite and its operator."""

    def __init__(self, process):
        self.process = process
        self.url = process.url
        self.port = process.port
        self.host = "127.0.0.1:%d" % process.port
        self.operator = Operator(process.url)

    def log(self):
        return "--- ddi-lite log ---\n" + self.process.log()


@contextlib.contextmanager
def serving(process):
    """A Server on the started DdiLite `process`, whose tenant polls every second with
    target tokens on; the process stops when the block ends."""
    try:
        running = Server(process)
        running.operator.set_config("pollingTime", POLLING_TIME)
        running.operator.set_config("authentication.targettoken.enabled", True)
        yield running
    finally:
        process.stop()


@pytest.fixture
def server(tmp_path):
    """A fresh ddi-lite process: own port, data directory and config.ini, minimum polling
    time 1 s; the tenant polls every second with target tokens on."""
    with serving(DdiLite(tmp_path / "server")) as running:
        yield running


@pytest.fixture
def proxy(server):
    """proxy(cut_download_after=None): a RecordingProxy in front of the server."""
    proxies = []

    def make(cut_download_after=None):
        created = RecordingProxy(server.port, cut_download_after=cut_download_after)
        proxies.append(created)
        return created
    yield make
    for created in proxies:
        created.close()


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory, swupdate_installed):
    return SigningKey(tmp_path_factory.mktemp("signing"))


@pytest.fixture
def start_swupdate(tmp_path, signing_key, swupdate_installed):
    """start_swupdate(name, url, controller_id, **options): a running SWUpdate device."""
    devices = []

    def start(name, url, controller_id, **options):
        device = swupdate.Swupdate(tmp_path / ("swupdate-" + name), url, controller_id,
                                   signing_key.cert, **options)
        devices.append(device)
        return device
    yield start
    for device in devices:
        device.stop()


@pytest.fixture
def rauc_device(tmp_path, server, rauc_hawkbit_installed):
    """rauc_device(controller_id, token): a rauc-hawkbit DDI client for the server."""
    devices = []

    def make(controller_id, token):
        device = rauc.RaucDevice(server.host, controller_id, token,
                                 tmp_path / ("rauc-" + controller_id))
        devices.append(device)
        return device
    yield make
    for device in devices:
        device.close()
