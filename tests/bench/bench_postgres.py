"""PostgreSQL against SQLite ([database] url), one worker each: the same devices poll their root
resource, then POST `proceeding` feedback (one durable status entry each), against ddi-lite on
a PostgreSQL database (figure) and on its SQLite file (baseline), fresh servers one at a time,
the order alternating each round. PostgreSQL is the server at DDI_LITE_BENCH_DATABASE_URL
(default: the local one, database `test`); the run makes a database of its own there and drops
it. No target: the row says what sharing a database between nodes costs one of them.
"""

import json
import os
import urllib.parse

from bench_feedback import BODY, DEVICES
from bench_support import (DEVICE, Load, Row, checked, ddi_lite_process, median, open_data_dir,
                           run_load, scratch_dir, seed_fleet, token_of)
from storage.models import Action, Target

SERVER_URL = os.environ.get("DDI_LITE_BENCH_DATABASE_URL",
                            "postgresql://postgres@127.0.0.1:5432/test")
CONNECTIONS = 16


class BenchDatabase:
    """A PostgreSQL database of this run's own, dropped at the end; `url` names it."""

    def __enter__(self):
        import psycopg2
        self.name = "ddi_lite_bench_%d" % os.getpid()
        self.server = psycopg2.connect(SERVER_URL)
        self.server.autocommit = True
        with self.server.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
            cursor.execute('CREATE DATABASE "%s"' % self.name)
        parts = urllib.parse.urlsplit(SERVER_URL)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))
        return self

    def __exit__(self, *exc):
        with self.server.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        self.server.close()


def seeded(data_dir, database_url):
    """The fleet in a data directory (and database); its loads: (poll, feedback)."""
    with open_data_dir(data_dir, database_url):
        seed_fleet(DEVICES, "pg-")
        actions = dict(Action.select(Target.controller_id, Action.id).join(Target).tuples())
    variants = [{"device": device, "action": action} for device, action in actions.items()]
    headers = {"Authorization": "TargetToken " + token_of("{device}")}
    poll = Load("%s/{device}" % DEVICE, headers=headers, variants=variants)
    feedback = Load("%s/{device}/deploymentBase/{action}/feedback" % DEVICE, method="POST",
                    body=BODY, headers=dict(headers, **{"Content-Type": "application/json"}),
                    variants=variants)
    return poll, feedback


def run(plan):
    rates = {(engine, kind): [] for engine in ("postgres", "sqlite")
             for kind in ("poll", "feedback")}
    with scratch_dir(plan.scratch, "postgres") as work, BenchDatabase() as database:
        places = {"postgres": (os.path.join(work, "pg-data"), database.url),
                  "sqlite": (os.path.join(work, "data"), "")}
        loads = {engine: seeded(*place) for engine, place in places.items()}
        for number in range(plan.rounds):
            for engine in (("postgres", "sqlite") if number % 2 == 0 else ("sqlite", "postgres")):
                data_dir, url = places[engine]
                poll, feedback = loads[engine]
                with ddi_lite_process(data_dir, work, plan.threads, database_url=url) as ddi:
                    ddi.wait_listening()
                    run_load(ddi.port, poll, CONNECTIONS, 1, work)  # warm up
                    for kind, load in (("poll", poll), ("feedback", feedback)):
                        rates[engine, kind].append(checked(
                            run_load(ddi.port, load, CONNECTIONS, plan.seconds, work),
                            "%s %s" % (engine, kind)).rate)
    rows = []
    for kind, label in (("poll", "Polls"), ("feedback", "Feedback writes")):
        figure, reference = median(rates["postgres", kind]), median(rates["sqlite", kind])
        rows.append(Row("%s/s, PostgreSQL vs SQLite (1 worker)" % label, "%.0f" % figure,
                        "%.0f" % reference, figure / reference, "-", None))
    notes = ["PostgreSQL: %d devices over %d keep-alive connections, 1 worker, %s; rounds "
             "(req/s): %s." % (DEVICES, CONNECTIONS, json.dumps(urllib.parse.urlsplit(
                 SERVER_URL).hostname), "; ".join(
                 "%s %s %s" % (engine, kind, ", ".join("%.0f" % r for r in values))
                 for (engine, kind), values in sorted(rates.items())))]
    return rows, notes
