"""Server memory (VmRSS from /proc): idle; after its devices polled with 1k and 100k
registered targets, and the one against the other; and at its peak while 50 clients download
a 200 MB artifact at once. The baselines are the bare Bottle + Waitress poll endpoint under the
same poll load, and Bottle's static_file under the same downloads.
"""

import os
import time

from bench_support import (DEVICE, MiB, Row, baseline_process, checked,
                           ddi_lite_process, device_headers, expect, open_data_dir,
                           request, run_load, scratch_dir,
                           seed_assigned_target, seed_fleet, Load, token_of)
from live import RssSampler, reset_peak_rss, rss_bytes
import artifacts

NEEDS_ARTIFACT = True
POLL_CONNECTIONS = 8
DOWNLOAD_CLIENTS = 50
FEW_CLIENTS = 5
LIMIT = 60 * MiB
FLEETS = (1000, 100000)
# Issue 11: memory stays flat as the fleet grows, and idle costs little over the framework.
FLEET_RATIO = 1.15
IDLE_RATIO = 1.3


def poll_load(prefix, count):
    return Load("%s/{device}" % DEVICE, {"Authorization": "TargetToken " + token_of("{device}")},
                variants=[{"device": "%s%d" % (prefix, n)} for n in range(1, count + 1)])


def settled_rss(pid):
    time.sleep(0.5)
    return rss_bytes(pid)


def mib(value):
    return "%.1f MiB" % (value / MiB)


def peak_under(server, load, clients, seconds, work):
    """The highest RSS of `server` while `clients` run `load` (sampled and VmHWM)."""
    hwm_reset = reset_peak_rss(server.pid)
    with RssSampler(server.pid) as sampler:
        result = checked(run_load(server.port, load, clients, seconds, work, threads=2,
                                  timeout=120), "%s under %d clients" % (server.name, clients),
                         complete=False)
    peak = sampler.peak
    if hwm_reset:
        peak = max(peak, rss_bytes(server.pid, "VmHWM"))
    return peak, result


def run(plan):
    rows, notes = [], []
    with scratch_dir(plan.scratch, "memory") as work:
        small_dir = os.path.join(work, "small")
        with open_data_dir(small_dir):
            module, _ = seed_assigned_target("mem-1", "mem-fw", plan.artifact, small_dir)
        blob_path = artifacts.BlobStore(os.path.join(small_dir, "artifacts")).path(
            plan.artifact.blob.sha1)
        one_device = Load("%s/mem-1" % DEVICE, device_headers("mem-1"))
        with ddi_lite_process(small_dir, work, plan.threads) as ddi, \
                baseline_process("bare", work, plan.threads) as bare:
            for server in (ddi.wait_listening(), bare.wait_listening()):
                expect(request(server.port, one_device.path, headers=one_device.headers), 200,
                       server.name + " poll")
                run_load(server.port, one_device, POLL_CONNECTIONS, 1, work)
            ddi_idle, bare_idle = settled_rss(ddi.pid), settled_rss(bare.pid)
            idle_ratio = ddi_idle / bare_idle
            rows.append(Row("RSS idle, 1 target (after 1 s of polls)", mib(ddi_idle),
                            mib(bare_idle), idle_ratio, "<= %.1fx" % IDLE_RATIO,
                            idle_ratio <= IDLE_RATIO))
            fleet_rss = {}
            for count in FLEETS:
                checked(run_load(bare.port, poll_load("fleet-", count), POLL_CONNECTIONS,
                                 2 * plan.seconds, work), "bare polls")
                row, fleet_rss[count] = _fleet_row(plan, work, count, settled_rss(bare.pid),
                                                   notes)
                rows.append(row)
            small, large = FLEETS
            growth = fleet_rss[large] / fleet_rss[small]
            rows.append(Row("RSS, %dk vs %dk targets (after the same polls)"
                            % (large // 1000, small // 1000), mib(fleet_rss[large]),
                            mib(fleet_rss[small]), growth, "<= %.2fx" % FLEET_RATIO,
                            growth <= FLEET_RATIO))

            path = "%s/mem-1/softwaremodules/%d/artifacts/firmware.bin" % (DEVICE, module.id)
            download = Load(path, device_headers("mem-1"))
            with baseline_process("static", work, plan.threads, "--file", blob_path) as static:
                static.wait_listening()
                expect(request(static.port, path, method="HEAD"), 200, "static_file HEAD")
                seconds = max(plan.seconds, 5)
                few_peak, _ = peak_under(ddi, download, FEW_CLIENTS, seconds, work)
                ddi_peak, ddi_result = peak_under(ddi, download, DOWNLOAD_CLIENTS, seconds, work)
                static_peak, _ = peak_under(static, download, DOWNLOAD_CLIENTS, seconds, work)
            rows.append(Row("RSS peak, %d clients downloading 200 MB" % DOWNLOAD_CLIENTS,
                            mib(ddi_peak), mib(static_peak), ddi_peak / static_peak,
                            "<= %s" % mib(LIMIT), ddi_peak <= LIMIT))
            notes.append("Memory: with %d download clients ddi-lite peaked at %s, with %d at %s "
                         "(idle %s); the %d clients moved %.0f MB in %.0f s."
                         % (FEW_CLIENTS, mib(few_peak), DOWNLOAD_CLIENTS, mib(ddi_peak),
                            mib(ddi_idle), DOWNLOAD_CLIENTS, ddi_result.bytes / 1e6,
                            ddi_result.seconds))
    return rows, notes


def _fleet_row(plan, work, count, bare_rss, notes):
    with scratch_dir(work, "fleet-%d" % count) as data_dir:
        with open_data_dir(data_dir):
            seed_fleet(count, "fleet-")
        load = poll_load("fleet-", count)
        with ddi_lite_process(data_dir, work, plan.threads) as ddi:
            ddi.wait_listening()
            expect(request(ddi.port, "%s/fleet-1" % DEVICE, headers=device_headers("fleet-1")),
                   200, "fleet poll")
            reset_peak_rss(ddi.pid)
            result = checked(run_load(ddi.port, load, POLL_CONNECTIONS, 2 * plan.seconds,
                                      work), "fleet polls")
            after = settled_rss(ddi.pid)
            notes.append("Memory, %d targets: %d polls of random targets, VmHWM %s."
                         % (count, result.requests, mib(rss_bytes(ddi.pid, "VmHWM"))))
    return Row("RSS, %dk targets (after %.0f s of polls of random targets)"
               % (count // 1000, 2 * plan.seconds), mib(after),
               mib(bare_rss), after / bare_rss, "-", None), after
