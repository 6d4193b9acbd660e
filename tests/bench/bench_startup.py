"""Start-up: the time from spawning the server process to the first successful (200) root
poll of a registered target, against the bare Bottle + Waitress endpoint started the same way.
"""

import http.client
import os
import time

from bench_support import (DEVICE, HOST, Row, alternate, baseline_process, ddi_lite_process,
                           device_headers, median, open_data_dir, scratch_dir,
                           seed_assigned_target)

CONTROLLER = "boot-1"
LIMIT_SECONDS = 1.0
TIMEOUT = 30.0


def first_poll_seconds(server):
    """Poll until the first 200; the seconds since the process was spawned."""
    path = "%s/%s" % (DEVICE, CONTROLLER)
    headers = device_headers(CONTROLLER)
    with server:
        while time.perf_counter() - server.started_at < TIMEOUT:
            server.check_alive()
            connection = http.client.HTTPConnection(HOST, server.port, timeout=5)
            try:
                connection.request("GET", path, headers=headers)
                if connection.getresponse().status == 200:
                    return time.perf_counter() - server.started_at
            except OSError:
                time.sleep(0.005)
            finally:
                connection.close()
    raise RuntimeError("%s answered no poll within %.0f s" % (server.name, TIMEOUT))


def run(plan):
    with scratch_dir(plan.scratch, "startup") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            seed_assigned_target(CONTROLLER, "boot-fw")
        starts = 2 if plan.quick else 5
        ddi_times, bare_times = alternate(
            starts,
            lambda: first_poll_seconds(ddi_lite_process(data_dir, work, plan.threads)),
            lambda: first_poll_seconds(baseline_process("bare", work, plan.threads)))
    ddi, bare = median(ddi_times), median(bare_times)
    note = ("Start-up, %d starts each (s): ddi-lite %s; bare %s."
            % (starts, ", ".join("%.2f" % s for s in ddi_times),
               ", ".join("%.2f" % s for s in bare_times)))
    return [Row("Start-up to first successful poll (s)", "%.2f" % ddi, "%.2f" % bare,
                ddi / bare, "<= %.1f s" % LIMIT_SECONDS, ddi <= LIMIT_SECONDS)], [note]
