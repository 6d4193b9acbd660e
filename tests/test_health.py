"""Is it up, and which one is it: Spring Boot's actuator health paths that hawkBit serves
(liveness, readiness with the database, health), without credentials; `ddi-lite --version`."""

import contextlib
import importlib.metadata
import os
import subprocess
import sys

import pytest

import database
import storage
from live import PROJECT_DIR, clean_environment

UP = {"status": "UP"}
DOWN = {"status": "DOWN"}


@pytest.mark.parametrize("path", ["/actuator/health", "/actuator/health/liveness",
                                  "/actuator/health/readiness"])
def test_health_answers_up_without_credentials(server, path):
    response = server.http.get(path)
    assert (response.status_int, response.content_type, response.json) == \
        (200, "application/json", UP)


@contextlib.contextmanager
def database_away(server):
    """The database cannot be opened: the data directory is gone from under the server (a disk
    that failed or was unmounted), or on PostgreSQL the server is out of reach. The connection
    this thread held is closed first, as one would be after an error, so that the next query
    has to open the database again."""
    storage.close_store()
    if database.ON_POSTGRES:
        storage.db.database.initialize(storage.db.PostgresDatabase(NOWHERE))
        yield
        storage.db.database.initialize(
            storage.db.PostgresDatabase(server.config["database", "url"]))
        return
    data_dir = server.config["server", "data_dir"]
    os.rename(data_dir, data_dir + ".away")
    yield
    os.rename(data_dir + ".away", data_dir)


# Nothing listens there.
NOWHERE = "postgresql://ddi@127.0.0.1:1/ddi"


@pytest.fixture
def unreachable_database(server):
    with database_away(server):
        yield server


def test_readiness_is_503_down_when_the_database_does_not_answer(unreachable_database):
    response = unreachable_database.http.get("/actuator/health/readiness", status=503)
    assert (response.content_type, response.json) == ("application/json", DOWN)
    assert unreachable_database.http.get("/actuator/health", status=503).json == DOWN


def test_liveness_stays_up_when_the_database_does_not_answer(unreachable_database):
    assert unreachable_database.http.get("/actuator/health/liveness").json == UP


def test_readiness_is_up_again_once_the_database_answers(server):
    with database_away(server):
        server.http.get("/actuator/health/readiness", status=503)
    assert server.http.get("/actuator/health/readiness").json == UP


def test_version_prints_the_installed_distributions_version():
    completed = subprocess.run([sys.executable, "-m", "ddi_lite", "--version"],
                               cwd=PROJECT_DIR, env=clean_environment(), capture_output=True,
                               text=True, timeout=30)
    assert (completed.returncode, completed.stdout, completed.stderr) == \
        (0, "ddi-lite %s\n" % importlib.metadata.version("ddi-lite"), "")
