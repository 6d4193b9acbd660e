"""The console's cost to a device: polls per second of the WSGI app in-process, with
`[server] console` on and off, alternated over rounds (the console adds routes, which Bottle
tries only after the device routes, and nothing else to a request). In-process, without
sockets, so that the figure is the app's own and the noise of a shared machine is small.

    .venv/bin/python tests/bench/bench_console.py [--polls N] [--rounds N]
"""

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import ddi_lite  # noqa: E402
import storage  # noqa: E402
from storage import catalog, tenant  # noqa: E402


def poll_environ():
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/DEFAULT/controller/v1/bench-1",
            "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": "TargetToken bench-token"}


def polls_per_second(console, polls):
    data_dir = tempfile.mkdtemp(prefix="ddi-lite-bench-console-")
    try:
        app = ddi_lite.create_app(ddi_lite.load_config(path=None, environ={}, overrides={
            "server.data_dir": data_dir, "server.trusted_proxies": "",
            "server.console": "true" if console else "false"}))
        tenant.store({"authentication.targettoken.enabled": True}, "bench")
        catalog.create_target("bench-1", 0, "bench", security_token="bench-token")
        statuses = []

        def start_response(status, headers, exc_info=None):
            statuses.append(status)
        for _ in range(polls // 10):  # warm-up: caches, the poll log
            b"".join(app(poll_environ(), start_response))
        started = time.perf_counter()
        for _ in range(polls):
            b"".join(app(poll_environ(), start_response))
        elapsed = time.perf_counter() - started
        assert all(status.startswith("200") for status in statuses), set(statuses)
        return polls / elapsed
    finally:
        storage.close_store()
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures = {False: [], True: []}
    for _ in range(args.rounds):
        for console in (False, True):
            figures[console].append(polls_per_second(console, args.polls))
    off, on = statistics.median(figures[False]), statistics.median(figures[True])
    print("| console | polls/s (median of %d) | every round |" % args.rounds)
    print("|---|---|---|")
    for console, median in ((False, off), (True, on)):
        print("| %s | %.0f | %s |" % ("on" if console else "off", median,
                                     " ".join("%.0f" % f for f in figures[console])))
    print("\non/off: %.3f" % (on / off))


if __name__ == "__main__":
    main()
