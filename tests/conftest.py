"""Shared fixtures: a fresh ddi-lite per test (own data directory) driven through WebTest,
and helpers that seed targets, modules, sets and assignments through `storage/`."""

import io
import time

import pytest
import webtest

import ddi_lite
import storage
from storage import assignments, catalog, ddi, tenant
from storage.db import write

DEVICE = "/DEFAULT/controller/v1"


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def config(tmp_path):
    return ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": str(tmp_path / "data"),
        "server.trusted_proxies": ""})


class Server:
    """A ddi-lite app under test plus the seeding helpers tests use."""

    def __init__(self, config):
        self.config = config
        self.wsgi = ddi_lite.create_app(config)
        self.http = webtest.TestApp(self.wsgi, extra_environ={"REMOTE_ADDR": "192.0.2.10"})
        self.blobs = storage_blobs(config)

    def configure(self, **values):
        """Set tenant configuration keys (hawkBit names; dots as given)."""
        tenant.store(values, "test")

    def target(self, controller_id="dev-1", token="token-1", **fields):
        return catalog.create_target(controller_id, now_ms(), "admin", security_token=token,
                                     **fields)

    def module(self, name="fw", version="1.0", type_key="os", files=None, **fields):
        module = catalog.create_module(type_key, name, version, now_ms(), "admin", **fields)
        for filename, content in (files or {}).items():
            blob = self.blobs.put(io.BytesIO(content))
            catalog.add_artifact(module, filename, blob, now_ms(), "admin")
        return module

    def distribution_set(self, modules, name="fw-set", version="1.0", type_key="os_app"):
        return catalog.create_distribution_set(name, version, [m.id for m in modules],
                                               now_ms(), "admin", type_key=type_key)

    def assign(self, distribution_set, controller_id="dev-1", **options):
        with write():
            target = ddi.find_target(controller_id)
            window = options.pop("window", None)
            if window is not None:
                window = assignments.MaintenanceWindow(*window)
            return assignments.assign(distribution_set, target, now_ms(), "admin",
                                      window=window, **options)

    def deployment(self, files=None, controller_id="dev-1", **options):
        """A target (if missing), a one-module set with these files, assigned: the action."""
        if ddi.find_target(controller_id) is None:
            self.target(controller_id, "token-" + controller_id.split("-")[-1])
        module = self.module(files=files if files is not None else {"fw.swu": b"x" * 100},
                             name="fw-%d" % time.monotonic_ns())
        return self.assign(self.distribution_set([module], name="set-%d" % time.monotonic_ns()),
                           controller_id, **options)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """Moto's S3 server (tests/s3stand.py), one process for the session."""
    import s3stand
    s3stand._needed("boto3")
    s3stand._needed("moto")
    server = s3stand.MotoServer(str(tmp_path_factory.mktemp("moto")))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto):
    """A new bucket on Moto's server: its name."""
    return moto.new_bucket()


@pytest.fixture(params=["local", "s3"])
def store_kind(request):
    """Each backend in turn, for the tests that must hold for both."""
    return request.param


@pytest.fixture
def backend_settings(request, store_kind):
    """The [artifacts] settings of `store_kind`: none for the data directory, else a new
    bucket (with a prefix, as an operator would share one bucket) on Moto's server."""
    if store_kind == "local":
        return {}
    moto = request.getfixturevalue("moto")
    return moto.settings("s3://%s/ddi-lite" % moto.new_bucket())


def storage_blobs(config):
    from service import artifact_store
    return artifact_store.blob_store(config)


@pytest.fixture
def server(config):
    server = Server(config)
    server.configure(**{"authentication.targettoken.enabled": True})
    yield server
    storage.close_store()


@pytest.fixture
def api(server):
    """The server with the test client logged in as admin/admin."""
    server.http.set_authorization(("Basic", ("admin", "admin")))
    return server


# The rollout tests' fleet: dev-0..dev-9 with tokens token-0..token-9.
ROLLOUT_TARGETS = 10


@pytest.fixture
def fleet(api):
    """Ten targets dev-0..dev-9 and a complete set (`fleet.set`); the logged-in server."""
    for n in range(ROLLOUT_TARGETS):
        api.target("dev-%d" % n, "token-%d" % n)
    api.set = api.distribution_set([api.module()])
    return api


def token(value="token-1"):
    return {"Authorization": "TargetToken " + value}
