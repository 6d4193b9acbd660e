"""Poll throughput: a registered target with a running action polls its root resource over
keep-alive connections, against a bare Bottle + Waitress endpoint that answers a constant
document of the same size. Then the same with If-None-Match carrying the ETag (304 path).
Last, the deploymentBase the poll links to (one module with one artifact), against the poll
of the same server in the same rounds: what a device fetches once per update should cost
about what it asks every few minutes.
"""

import io
import json
import os
import urllib.parse

import artifacts
from bench_support import (DEVICE, USER, Row, alternate, baseline_process, checked,
                           ddi_lite_process, device_headers, expect, median, now_ms,
                           open_data_dir, request, run_load, scratch_dir, seed_assigned_target,
                           Load)
from storage import catalog

CONTROLLER = "poll-1"
CONNECTIONS = 8
TARGET_RATIO = 0.6  # issue 11: poll and 304 path >= 0.6x bare Bottle+Waitress
DEPLOYMENT_TARGET_RATIO = 0.8
ARTIFACT_BYTES = 64 * 1024


def run(plan):
    rows, notes = [], []
    with scratch_dir(plan.scratch, "poll") as work:
        data_dir = os.path.join(work, "data")
        with open_data_dir(data_dir):
            module, _ = seed_assigned_target(CONTROLLER, "poll-fw")
            blobs = artifacts.BlobStore(os.path.join(data_dir, "artifacts"))
            blob = blobs.put(io.BytesIO(os.urandom(ARTIFACT_BYTES)))
            catalog.add_artifact(module, "poll-fw.swu", blob, now_ms(), USER)
        path = "%s/%s" % (DEVICE, CONTROLLER)
        headers = device_headers(CONTROLLER)
        with ddi_lite_process(data_dir, work, plan.threads) as ddi:
            ddi.wait_listening()
            expect(request(ddi.port, path, headers=headers), 200, "first poll")
            reply = expect(request(ddi.port, path, headers=headers), 200, "ddi-lite poll")
            if b"deploymentBase" not in reply.body:
                raise RuntimeError("the poll offers no deployment: %r" % reply.body)
            with baseline_process("bare", work, plan.threads,
                                  "--body-size", str(len(reply.body))) as bare:
                bare.wait_listening()
                bare_reply = expect(request(bare.port, path, headers=headers), 200, "bare poll")
                if len(bare_reply.body) != len(reply.body):
                    raise RuntimeError("baseline body %d bytes, ddi-lite %d"
                                       % (len(bare_reply.body), len(reply.body)))
                notes.append("Poll: %d-byte reply, %d keep-alive connections, Waitress %d "
                             "threads for both servers." % (len(reply.body), CONNECTIONS,
                                                           plan.threads))
                for label, conditional in (("200", False), ("ETag/304", True)):
                    loads = {}
                    for server, answer in ((ddi, reply), (bare, bare_reply)):
                        extra = {"If-None-Match": answer.headers["etag"]} if conditional else {}
                        loads[server] = Load(path, dict(headers, **extra))
                        status = 304 if conditional else 200
                        expect(request(server.port, path, headers=loads[server].headers),
                               status, "%s %s poll" % (server.name, label))
                        run_load(server.port, loads[server], CONNECTIONS, 1, work)  # warm up

                    def measure(server):
                        return lambda: checked(run_load(server.port, loads[server], CONNECTIONS,
                                                        plan.seconds, work),
                                               "%s %s poll" % (server.name, label)).rate
                    ddi_rates, bare_rates = alternate(plan.rounds, measure(ddi), measure(bare))
                    ratio = median(ddi_rates) / median(bare_rates)
                    rows.append(Row("Poll throughput, %s (req/s)" % label,
                                    "%.0f" % median(ddi_rates), "%.0f" % median(bare_rates),
                                    ratio, ">= %.1fx" % TARGET_RATIO, ratio >= TARGET_RATIO))
                    notes.append("Poll %s rounds (req/s): ddi-lite %s, bare %s." % (
                        label, ", ".join("%.0f" % r for r in ddi_rates),
                        ", ".join("%.0f" % r for r in bare_rates)))
            rows.append(_deployment_row(plan, ddi, path, headers, reply, work, notes))
    return rows, notes


def _deployment_row(plan, ddi, poll_path, headers, reply, work, notes):
    """deploymentBase against the poll, both on `ddi`, alternating in the same rounds."""
    href = json.loads(reply.body)["_links"]["deploymentBase"]["href"]
    parts = urllib.parse.urlsplit(href)
    deployment_path = parts.path + ("?" + parts.query if parts.query else "")
    # The first GET notes RETRIEVED on the action; every later one only reads.
    expect(request(ddi.port, deployment_path, headers=headers), 200, "first deploymentBase")
    answer = expect(request(ddi.port, deployment_path, headers=headers), 200,
                    "ddi-lite deploymentBase")
    if b'"artifacts":[{' not in answer.body:
        raise RuntimeError("the deploymentBase lists no artifact: %r" % answer.body[:300])
    loads = {"deploymentBase": Load(deployment_path, headers), "poll": Load(poll_path, headers)}
    for name, load in loads.items():
        run_load(ddi.port, load, CONNECTIONS, 1, work)  # warm up

    def measure(name):
        return lambda: checked(run_load(ddi.port, loads[name], CONNECTIONS, plan.seconds, work),
                               "ddi-lite " + name).rate
    deployment_rates, poll_rates = alternate(plan.rounds, measure("deploymentBase"),
                                             measure("poll"))
    ratio = median(deployment_rates) / median(poll_rates)
    notes.append("deploymentBase: %d-byte reply (one module, one artifact), %d keep-alive "
                 "connections; its baseline is ddi-lite's own poll, measured in the same rounds."
                 % (len(answer.body), CONNECTIONS))
    notes.append("deploymentBase rounds (req/s): deploymentBase %s, poll %s." % (
        ", ".join("%.0f" % r for r in deployment_rates),
        ", ".join("%.0f" % r for r in poll_rates)))
    return Row("deploymentBase throughput vs the poll (req/s)",
               "%.0f" % median(deployment_rates), "%.0f" % median(poll_rates), ratio,
               ">= %.1fx" % DEPLOYMENT_TARGET_RATIO, ratio >= DEPLOYMENT_TARGET_RATIO)
