"""Shared fixtures: a fresh ddi-lite per test (own data directory) driven through WebTest,
and helpers that seed targets, modules, sets and assignments through `storage/`. With
DDI_TEST_DATABASE_URL set, every test's database is PostgreSQL (tests/database.py)."""

import io
import time

import pytest
import webtest

import database
import ddi_lite
import storage
from storage import assignments, catalog, ddi, tenant
from storage.db import write

DEVICE = "/DEFAULT/controller/v1"


def now_ms():
    return int(time.time() * 1000)


def pytest_sessionfinish(session):
    database.drop()


if database.ON_POSTGRES:
    # Every configuration a test makes for a data directory, and every store it opens there,
    # gets the database that stands for it (tests/database.py), as on SQLite the file in it.
    _load_config = ddi_lite.load_config

    def _load_config_on_postgres(path=None, environ=None, overrides=None):
        overrides = dict(overrides or {})
        if "server.data_dir" in overrides and "database.url" not in overrides:
            overrides["database.url"] = database.url_for_directory(overrides["server.data_dir"])
        return _load_config(path, environ, overrides)

    ddi_lite.load_config = _load_config_on_postgres

    _open_store = storage.open_store

    def _open_store_on_postgres(data_dir, now, *args, database_url="", **kwargs):
        return _open_store(data_dir, now, *args,
                           database_url=database_url or database.url_for_directory(data_dir),
                           **kwargs)

    storage.open_store = _open_store_on_postgres


@pytest.fixture
def config(tmp_path):
    overrides = {"server.data_dir": str(tmp_path / "data"), "server.trusted_proxies": ""}
    if database.ON_POSTGRES:
        overrides["database.url"] = database.fresh_url(tmp_path / "data")
    return ddi_lite.load_config(path=None, environ={}, overrides=overrides)


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
