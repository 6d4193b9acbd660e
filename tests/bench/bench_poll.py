"""Poll throughput: a registered target with a running action polls its root resource over
keep-alive connections, against a bare Bottle + Waitress endpoint that answers a constant
document of the same size. Then the same with If-None-Match carrying the ETag (304 path).
Then the deploymentBase the poll links to (one module with one artifact), against the poll
of the same server in the same rounds: what a device fetches once per update should cost
about what it asks every few minutes. Last, the poll of a server with 10 running rollouts
(the polled device's action comes from one of them) against the poll of a server without
any: a rollout's engine and its SCHEDULED actions must cost the poll nothing.
"""

import io
import json
import os
import urllib.parse

import artifacts
from bench_support import (DEVICE, USER, Row, alternate, baseline_process, checked,
                           ddi_lite_process, device_headers, expect, median, now_ms,
                           open_data_dir, request, run_load, scratch_dir, seed_assigned_target,
                           token_of, Load)
from storage import catalog, rollout_engine, rollouts

CONTROLLER = "poll-1"
CONNECTIONS = 8
TARGET_RATIO = 0.6  # issue 11: poll and 304 path >= 0.6x bare Bottle+Waitress
DEPLOYMENT_TARGET_RATIO = 0.8
ROLLOUTS = 10
ROLLOUT_TARGETS = 200  # per rollout, in two groups: half running, half scheduled
ROLLOUTS_TARGET_RATIO = 0.95
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
        rows.append(_rollouts_row(plan, work, notes))
    return rows, notes


def _seed_rollouts(controller_id):
    """ROLLOUTS running rollouts of ROLLOUT_TARGETS targets each, first group started; the
    first rollout's first group holds `controller_id`, whose running action it is."""
    catalog.create_target(controller_id, now_ms(), USER, security_token=token_of(controller_id))
    module = catalog.create_module("os", "rollout-fw", "1.0", now_ms(), USER)
    distribution_set = catalog.create_distribution_set("rollout-fw", "1.0", [module.id],
                                                       now_ms(), USER)
    for number in range(ROLLOUTS):
        prefix = "fleet-%d-" % number
        for n in range(ROLLOUT_TARGETS):
            catalog.create_target("%s%03d" % (prefix, n), now_ms(), USER,
                                  security_token=token_of("%s%03d" % (prefix, n)))
        query = "controllerId==%s*" % prefix
        if number == 0:
            query += ",controllerId==" + controller_id
        created = rollouts.create_rollout("http://bench", {
            "name": "wave-%d" % number, "distributionSetId": distribution_set.id,
            "targetFilterQuery": query, "amountGroups": 2}, USER)
        rollouts.start(created["id"], USER)
    rollout_engine.evaluate(now_ms())


def _rollouts_row(plan, work, notes):
    """The poll of a server with ROLLOUTS running rollouts against one without, two servers
    measured alternately in the same rounds."""
    servers, loads = {}, {}
    plain_dir, busy_dir = os.path.join(work, "no-rollouts"), os.path.join(work, "rollouts")
    with open_data_dir(plain_dir):
        seed_assigned_target(CONTROLLER, "poll-fw")
    with open_data_dir(busy_dir):
        _seed_rollouts(CONTROLLER)
    path = "%s/%s" % (DEVICE, CONTROLLER)
    headers = device_headers(CONTROLLER)
    with ddi_lite_process(plain_dir, work, plan.threads) as plain, \
            ddi_lite_process(busy_dir, work, plan.threads) as busy:
        for name, server in (("none", plain), ("rollouts", busy)):
            server.wait_listening()
            expect(request(server.port, path, headers=headers), 200, "first poll")
            reply = expect(request(server.port, path, headers=headers), 200, name + " poll")
            if b"deploymentBase" not in reply.body:
                raise RuntimeError("the %s poll offers no deployment: %r" % (name, reply.body))
            servers[name], loads[name] = server, Load(path, headers)
            run_load(server.port, loads[name], CONNECTIONS, 1, work)  # warm up

        def measure(name):
            return lambda: checked(run_load(servers[name].port, loads[name], CONNECTIONS,
                                            plan.seconds, work), name + " poll").rate
        busy_rates, plain_rates = alternate(plan.rounds, measure("rollouts"), measure("none"))
    ratio = median(busy_rates) / median(plain_rates)
    notes.append("Poll with %d running rollouts (%d targets each, half of them started; the "
                 "engine evaluating every 2 s) against a server without rollouts, rounds "
                 "(req/s): with %s, without %s." % (
                     ROLLOUTS, ROLLOUT_TARGETS, ", ".join("%.0f" % r for r in busy_rates),
                     ", ".join("%.0f" % r for r in plain_rates)))
    return Row("Poll with %d running rollouts vs none (req/s)" % ROLLOUTS,
               "%.0f" % median(busy_rates), "%.0f" % median(plain_rates), ratio,
               ">= %.2fx" % ROLLOUTS_TARGET_RATIO, ratio >= ROLLOUTS_TARGET_RATIO)


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
