"""Device writes handed to one writer thread (storage.db.Writer): answered only once committed,
batched, each all or nothing, and each error answered to the request that caused it."""

import threading

import peewee
import pytest
import webtest

from conftest import DEVICE, token
from live import wait_until
from storage import db
from storage.db import database
from storage.errors import ConcurrentModification
from storage.models import ActionStatus


@pytest.fixture
def started(server):
    """The server's writer thread running, as `ddi-lite serve` runs it."""
    db.writer.start()
    yield server
    db.writer.stop()


def insert_note(text):
    database.execute_sql('INSERT INTO "tenant_config" ("key", "value", "created_at", '
                         '"created_by", "last_modified_at", "last_modified_by") '
                         'VALUES (?, \'"x"\', 0, \'test\', 0, \'test\')', (text,))
    return text


def notes():
    return {row[0] for row in database.execute_sql(
        'SELECT "key" FROM "tenant_config" WHERE "key" LIKE \'note-%\'')}


def fail_after_insert(text):
    insert_note(text)
    raise ValueError("refused " + text)


class Gate:
    """Holds the writer inside a write of its own until `open`, so that what the test hands
    in meanwhile queues up and becomes the next batch."""

    def __init__(self, writer):
        self.writer = writer
        self.entered, self.released = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=writer.run, args=(self._hold,))
        self.thread.start()
        assert self.entered.wait(5)

    def _hold(self):
        self.entered.set()
        self.released.wait(5)

    def open_when_queued(self, count):
        wait_until(lambda: self.writer._jobs.qsize() >= count, 5, "%d queued writes" % count)
        self.released.set()
        self.thread.join(5)


def in_threads(*calls):
    """Start each call in a thread; the results (or raised errors) by index, once all ended."""
    answers = [None] * len(calls)

    def call(index, function, args):
        try:
            answers[index] = function(*args)
        except Exception as error:
            answers[index] = error
    threads = [threading.Thread(target=call, args=(index, function, args))
               for index, (function, args) in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, answers


def join(threads):
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def test_a_write_is_answered_only_once_committed(started):
    assert db.writer.run(insert_note, "note-1") == "note-1"
    # Read on this thread's own connection: only a committed row is visible here.
    assert notes() == {"note-1"}


def test_writes_that_arrive_together_are_committed_in_one_transaction(started, monkeypatch):
    batches = []
    commit = db.Writer._commit
    monkeypatch.setattr(db.Writer, "_commit",
                        lambda self, jobs: batches.append(len(jobs)) or commit(self, jobs))
    gate = Gate(db.writer)
    threads, answers = in_threads(*[(db.writer.run, (insert_note, "note-%d" % n))
                                    for n in range(5)])
    gate.open_when_queued(5)
    join(threads)
    assert answers == ["note-%d" % n for n in range(5)]
    assert batches[-1] == 5
    assert notes() == {"note-%d" % n for n in range(5)}


def test_a_failing_write_is_answered_its_error_alone_and_leaves_nothing(started):
    gate = Gate(db.writer)
    threads, answers = in_threads((db.writer.run, (insert_note, "note-a")),
                                  (db.writer.run, (fail_after_insert, "note-b")),
                                  (db.writer.run, (insert_note, "note-c")))
    gate.open_when_queued(3)
    join(threads)
    assert answers[0] == "note-a" and answers[2] == "note-c"
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "refused note-b"
    assert notes() == {"note-a", "note-c"}


def test_stopping_writes_what_was_handed_in_then_writes_at_once(started):
    gate = Gate(db.writer)
    threads, answers = in_threads(*[(db.writer.run, (insert_note, "note-%d" % n))
                                    for n in range(3)])
    wait_until(lambda: db.writer._jobs.qsize() >= 3, 5, "3 queued writes")
    thread = db.writer._thread
    stopping = threading.Thread(target=db.writer.stop)
    stopping.start()
    gate.open_when_queued(3)
    join(threads + [stopping])
    assert not thread.is_alive()
    assert notes() == {"note-0", "note-1", "note-2"}
    assert db.writer.run(insert_note, "note-late") == "note-late"  # no thread: at once
    assert "note-late" in notes()


def test_a_write_inside_a_write_transaction_joins_it(started):
    with pytest.raises(ValueError):
        with db.write():
            db.writer.run(insert_note, "note-inner")
            raise ValueError("roll it all back")
    assert notes() == set()


# --- over HTTP, with the thread running --------------------------------------------------------

def feedback_body(execution="proceeding", finished="none", details=()):
    return {"status": {"execution": execution, "result": {"finished": finished},
                       "details": list(details)}}


def test_feedback_arriving_together_each_gets_its_own_answer(started):
    server = started
    good = server.deployment(controller_id="dev-1")
    other = server.deployment(controller_id="dev-2")
    crowded = server.deployment(controller_id="dev-3")
    over_quota = feedback_body(details=["line %d" % n for n in range(50)])
    over_quota["status"]["code"] = 1  # the 51st message
    clients = [webtest.TestApp(server.wsgi) for _ in range(4)]

    def post(client, controller_id, action_id, body):
        answer = client.post_json("%s/%s/deploymentBase/%d/feedback"
                                  % (DEVICE, controller_id, action_id), body,
                                  headers=token("token-" + controller_id[-1]), expect_errors=True)
        return answer.status_int, answer.json if answer.body else None
    gate = Gate(db.writer)
    threads, answers = in_threads(
        (post, (clients[0], "dev-1", good.id, feedback_body(details=["fine"]))),
        (post, (clients[1], "dev-1", other.id, feedback_body())),  # not dev-1's action
        (post, (clients[2], "dev-3", crowded.id, over_quota)),
        (post, (clients[3], "dev-2", other.id, feedback_body("closed", "success"))))
    gate.open_when_queued(4)
    join(threads)
    assert answers[0] == (200, None)
    assert answers[1][0] == 404
    assert answers[1][1]["errorCode"] == "hawkbit.server.error.repo.entityNotFound"
    assert answers[2][0] == 429
    assert answers[2][1]["errorCode"] == "hawkbit.server.error.quota.tooManyEntries"
    assert answers[3] == (200, None)
    assert [entry.messages for entry in ActionStatus.select().where(
        ActionStatus.action == good.id).order_by(ActionStatus.id)][-1] == ["fine"]
    assert [entry.status for entry in ActionStatus.select().where(
        ActionStatus.action == crowded.id)] == ["RUNNING"]  # the assignment's alone
    statuses = [entry.status for entry in ActionStatus.select().where(
        ActionStatus.action == other.id)]
    assert statuses[-1] == "FINISHED" and len(statuses) == 2  # the assignment and the close


def test_a_device_read_that_notes_retrieved_waits_for_the_note(started):
    server = started
    action = server.deployment()
    server.http.get("%s/dev-1/deploymentBase/%d" % (DEVICE, action.id), headers=token())
    newest = (ActionStatus.select().where(ActionStatus.action == action.id)
              .order_by(ActionStatus.id.desc()).first())
    assert newest.status == "RETRIEVED"


class Deadlock(Exception):
    """What psycopg2 raises when PostgreSQL broke a deadlock by giving this write up."""

    pgcode = "40P01"


def deadlocked(attempts):
    """A write whose first `attempts` tries lose a deadlock after inserting a note."""
    tries = []

    def write_note(text):
        insert_note(text + "-%d" % len(tries))
        tries.append(text)
        if len(tries) <= attempts:
            raise peewee.OperationalError(Deadlock("deadlock detected"))
        return text
    return write_note


def test_a_write_that_lost_a_deadlock_is_made_again_and_leaves_one_note(started):
    assert db.writer.run(deadlocked(2), "note-d") == "note-d"
    assert notes() == {"note-d-2"}


def test_a_write_that_keeps_losing_is_a_409_error_never_the_database_error(started):
    with pytest.raises(ConcurrentModification):
        db.writer.run(deadlocked(db.RETRIES + 1), "note-d")
    assert notes() == set()


def test_a_deadlock_in_a_write_transaction_is_a_409_error(server):
    with pytest.raises(ConcurrentModification):
        with db.write():
            deadlocked(1)("note-d")
    assert notes() == set()
