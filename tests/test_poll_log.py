"""Poll times are collected in memory and written in batches (storage.ddi.PollLog)."""

import time

from conftest import DEVICE, token
from storage import ddi


def last_poll(controller_id):
    return ddi.find_target(controller_id).last_target_query


def test_polls_within_the_interval_are_written_together_by_the_next_due_poll(server,
                                                                             monkeypatch):
    server.target("dev-1", "token-1")
    server.http.get(DEVICE + "/dev-1", headers=token())  # first poll: written at once
    first = last_poll("dev-1")
    monkeypatch.setattr(ddi.poll_log, "interval_ms", 3600 * 1000)
    later = first + 5000
    monkeypatch.setattr(ddi, "now_ms", lambda: later)
    server.http.get(DEVICE + "/dev-1", headers=token())
    assert last_poll("dev-1") == first  # still only in memory
    ddi.poll_log.flush()
    assert last_poll("dev-1") == later


def test_a_flush_never_moves_a_poll_time_backwards(server):
    target = server.target("dev-1", "token-1")
    server.http.get(DEVICE + "/dev-1", headers=token())
    newest = last_poll("dev-1")
    ddi.poll_log.record(target.id, newest - 60000)
    ddi.poll_log.flush()
    assert last_poll("dev-1") == newest


def test_the_writer_thread_writes_pending_times_without_a_request(server):
    target = server.target("dev-1", "token-1")
    log = ddi.PollLog()
    log.interval_ms = 50
    log.start_writer()
    log.record(target.id, 1234567)
    deadline = time.monotonic() + 5
    while last_poll("dev-1") != 1234567 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert last_poll("dev-1") == 1234567


def test_the_management_api_shows_a_poll_still_in_memory(server, monkeypatch):
    server.target("dev-1", "token-1")
    server.http.get(DEVICE + "/dev-1", headers=token())
    monkeypatch.setattr(ddi.poll_log, "interval_ms", 3600 * 1000)
    later = last_poll("dev-1") + 7000
    monkeypatch.setattr(ddi, "now_ms", lambda: later)
    server.http.get(DEVICE + "/dev-1", headers=token())
    server.http.set_authorization(("Basic", ("admin", "admin")))
    shown = server.http.get("/rest/v1/targets/dev-1").json["lastControllerRequestAt"]
    assert shown == later


def test_stopping_the_writer_ends_its_thread_and_writes_what_is_pending(server):
    target = server.target("dev-1", "token-1")
    log = ddi.PollLog()
    log.interval_ms = 3600 * 1000  # the thread alone would not write for an hour
    log.start_writer()
    writer = log._writer
    log.record(target.id, 7654321)
    log.stop_writer()
    assert not writer.is_alive()
    assert last_poll("dev-1") == 7654321
