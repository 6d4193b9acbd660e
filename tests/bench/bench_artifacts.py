"""Artifact throughput: a device downloads a 200 MB artifact in full, and in 1 MiB ranges at
random offsets, against Bottle's own static_file serving the very same file.
"""

import hashlib
import os
import random

from bench_support import (DEVICE, MiB, Row, alternate, baseline_process, checked,
                           ddi_lite_process, device_headers, expect, median, open_data_dir,
                           request, run_load, scratch_dir, seed_assigned_target, Load)
import artifacts

NEEDS_ARTIFACT = True
CONTROLLER = "dl-1"
CONNECTIONS = 4
RANGE = MiB
FULL_SECONDS = 6  # a 200 MB download takes a while; each run should finish a few


def artifact_path(module_id):
    return "%s/%s/softwaremodules/%d/artifacts/firmware.bin" % (DEVICE, CONTROLLER, module_id)


def check_bytes(server, path, artifact):
    """The server sends the right bytes: the whole file, and a range in the middle."""
    headers = device_headers(CONTROLLER)
    full = expect(request(server.port, path, headers=headers, hash_body=True), 200,
                  server.name + " full download")
    if full.body != artifact.blob.sha256:
        raise RuntimeError("%s sent other bytes than the artifact" % server.name)
    first = random.Random(1).randint(0, artifact.size - RANGE)
    part = expect(request(server.port, path, headers=dict(
        headers, Range="bytes=%d-%d" % (first, first + RANGE - 1))), 206,
        server.name + " range")
    if hashlib.sha256(part.body).hexdigest() != artifact.slice_sha256(first, RANGE):
        raise RuntimeError("%s sent a wrong range" % server.name)


def run(plan):
    artifact = plan.artifact
    rows, notes = [], []
    with scratch_dir(plan.scratch, "artifacts") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            module, _ = seed_assigned_target(CONTROLLER, "big-fw", artifact, data_dir)
        path = artifact_path(module.id)
        blob_path = artifacts.BlobStore(os.path.join(data_dir, "artifacts")).path(
            artifact.blob.sha1)
        headers = device_headers(CONTROLLER)
        full = Load(path, headers)
        ranged = Load(path, headers, range_length=RANGE, size=artifact.size)
        with ddi_lite_process(data_dir, work, plan.threads) as ddi, \
                baseline_process("static", work, plan.threads, "--file", blob_path) as static:
            for server in (ddi.wait_listening(), static.wait_listening()):
                check_bytes(server, path, artifact)

            def measure(server, load, seconds):
                return lambda: checked(run_load(server.port, load, CONNECTIONS, seconds, work,
                                                timeout=60), "%s download" % server.name)
            seconds = max(plan.seconds, FULL_SECONDS)
            ddi_full, static_full = alternate(plan.rounds, measure(ddi, full, seconds),
                                              measure(static, full, seconds))
            ddi_mb = median([r.bytes_per_second for r in ddi_full]) / 1e6
            static_mb = median([r.bytes_per_second for r in static_full]) / 1e6
            rows.append(Row("Artifact full download, 200 MB (MB/s)", "%.0f" % ddi_mb,
                            "%.0f" % static_mb, ddi_mb / static_mb, "-", None))
            for server in (ddi, static):
                run_load(server.port, ranged, CONNECTIONS, 1, work)  # warm up
            ddi_ranges, static_ranges = alternate(plan.rounds,
                                                  measure(ddi, ranged, plan.seconds),
                                                  measure(static, ranged, plan.seconds))
            ddi_rate = median([r.rate for r in ddi_ranges])
            static_rate = median([r.rate for r in static_ranges])
            rows.append(Row("Artifact 1 MiB ranges at random offsets (req/s)",
                            "%.0f" % ddi_rate, "%.0f" % static_rate, ddi_rate / static_rate,
                            ">= 1.0x", ddi_rate >= static_rate))
            notes.append("Artifacts: %d connections; full downloads completed per round: "
                         "ddi-lite %s, static_file %s; ranges p99 %.1f ms (ddi-lite) vs "
                         "%.1f ms (static_file)."
                         % (CONNECTIONS, ", ".join(str(r.requests) for r in ddi_full),
                            ", ".join(str(r.requests) for r in static_full),
                            median([r.p99_ms for r in ddi_ranges]),
                            median([r.p99_ms for r in static_ranges])))
    return rows, notes
