"""The SQLite page cache and memory map are the server's settings, on every connection it
opens (one per thread), and values SQLite cannot take are refused at start."""

import threading

import pytest

import database
import ddi_lite
import storage

MiB = 1024 * 1024


@pytest.fixture
def app_with(tmp_path):
    def create(**storage_settings):
        overrides = {"server.data_dir": str(tmp_path / "data")}
        overrides.update(("storage." + key, str(value))
                         for key, value in storage_settings.items())
        return ddi_lite.create_app(ddi_lite.load_config(environ={}, overrides=overrides))
    yield create
    storage.close_store()


def pragmas_of_a_new_thread():
    """cache_size and mmap_size on the connection a fresh thread opens, as a worker does."""
    found = {}

    def read():
        for name in ("cache_size", "mmap_size"):
            found[name] = storage.database.execute_sql("PRAGMA " + name).fetchone()[0]
        storage.database.close()
    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    return found


@database.sqlite_only("its page cache and memory map")
def test_the_page_cache_and_mmap_of_every_connection_are_the_settings(app_with):
    app_with(cache_kib=3000, mmap_mib=5)
    assert storage.database.execute_sql("PRAGMA cache_size").fetchone()[0] == -3000
    assert storage.database.execute_sql("PRAGMA mmap_size").fetchone()[0] == 5 * MiB
    assert pragmas_of_a_new_thread() == {"cache_size": -3000, "mmap_size": 5 * MiB}


@database.sqlite_only("its page cache and memory map")
def test_without_settings_connections_get_the_shipped_defaults(app_with):
    app_with()
    assert pragmas_of_a_new_thread() == {"cache_size": -storage.db.CACHE_KIB,
                                         "mmap_size": storage.db.MMAP_MIB * MiB}


@pytest.mark.parametrize("key, value", [("cache_kib", "-1"), ("cache_kib", "lots"),
                                        ("mmap_mib", "2048"), ("mmap_mib", "1.5"),
                                        ("cache_kib", "")])
def test_a_page_cache_or_mmap_sqlite_cannot_take_is_a_config_error(key, value):
    with pytest.raises(ddi_lite.ConfigError, match=key):
        ddi_lite.load_config(environ={}, overrides={"storage." + key: value})


def test_the_storage_settings_come_from_the_environment_too():
    config = ddi_lite.load_config(environ={"DDI_LITE_STORAGE_CACHE_KIB": "7",
                                           "DDI_LITE_STORAGE_MMAP_MIB": "0"})
    assert (config["storage", "cache_kib"], config["storage", "mmap_mib"]) == (7, 0)
