"""The DDI routes in gateway mode, and the operators' view of the gateway.

A device's GET (root poll, deploymentBase, cancelAction, confirmationBase, installedBase,
artifact list) is answered from the last upstream answer to that device and resource. That
answer is asked for again, on the device's behalf and with at most one request in flight per
device and resource, once it is older than the device's upstream `sleep`: however often the
device polls, upstream sees one poll per interval. The poll that starts that request waits
for it at most FRESH_WAIT_SECONDS, and only while upstream answers (the whole [upstream]
timeout only when nothing is known yet); other polls do not wait: a slow or dead upstream
never holds a known device's poll.

Every link a device receives is rewritten to point at this gateway, as the request sees it
(public_url or X-Forwarded-*, service/forwarded.py); artifact links point at the gateway's
download route, which serves only artifacts of that device's relayed deployment, from the
artifact cache (gateway/cache.py).

A device's POST and PUT (reports) go to the outbox (gateway/outbox.py) and are answered 200
once they are on disk. A report that closes an action hides that action from the device's
answers until upstream no longer shows it: the device must not install it again while its
report waits.

The HTTP plumbing (authentication by the [ddi] rules, body reading, answers in JSON or CBOR,
hawkBit's error bodies) is ddi_lite.py's, handed in as `Web`: this package never imports the
web face, which imports it.
"""

import collections
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import urllib.parse

import bottle

from gateway import cache, outbox, state, upstream
from service import connections, forwarded
from service.configuration import ConfigError
from storage import ddi, schedule
from storage import errors as store_errors

log = logging.getLogger("ddi-lite.gateway")

DEVICE_ROOT = "/<tenant>/controller/v1/<controller_id>"
LOCAL_TENANT = "DEFAULT"
# How long a known device's request waits for a fresher upstream answer before it is served
# the one the gateway has: long enough for a healthy uplink, short enough not to be felt.
FRESH_WAIT_SECONDS = 0.5
# The sleep assumed for a device upstream has not yet told one (hawkBit's minimum).
DEFAULT_SLEEP_SECONDS = 30
# Upstream requests made at once on devices' behalf; more wait for a free one.
UPSTREAM_CONCURRENCY = 8
# Feedback executions (DDI §4.4) after which the device is done with the action.
CLOSING_EXECUTIONS = {"deploymentBase": {"closed"}, "cancelAction": {"closed", "canceled"}}

# ddi_lite.py's plumbing, so that gateway answers look exactly like the server's own.
# device_authenticated(environ, controller_id, origin): the [ddi] rules.
Web = collections.namedtuple(
    "Web", "device_authenticated read_body negotiate document_response error_response "
           "framework_response body_welcome body_too_large")

Device = collections.namedtuple("Device", "controller_id tenant base_url authorization address")


# Management API writes that would give relayed devices orders of the gateway's own.
CONFLICTING_WRITES = (
    ("POST", "/rest/v1/targets/<cid>/assignedDS"),
    ("POST", "/rest/v1/distributionsets/<sid>/assignedTargets"),
    ("POST", "/rest/v1/targetfilters/<fid>/autoAssignDS"),
    ("POST", "/rest/v1/rollouts"),
    ("POST", "/rest/v1/rollouts/<rid>/start"),
)

# Gateway figures for GET /metrics (service/metrics.py tables).
METRIC_FIGURES = (
    ("upstream_requests", "ddi_lite_gateway_upstream_requests",
     "Requests made to upstream (polls, reports, artifact transfers).", None),
    ("upstream_bytes", "ddi_lite_gateway_upstream_bytes", "Bytes received from upstream.", None),
    ("upstream_polls_saved", "ddi_lite_gateway_upstream_polls_saved",
     "Device polls answered without asking upstream.", None),
    ("bytes_saved", "ddi_lite_gateway_bytes_saved",
     "Artifact bytes served to devices beyond those fetched from upstream.", None),
    ("outbox_depth", "ddi_lite_gateway_outbox_depth",
     "Device reports waiting to be delivered upstream.", None),
    ("cache_hit_ratio", "ddi_lite_gateway_cache_hit_ratio",
     "Artifact requests served from the cache, as a fraction of all.", None),
)


class Problem(Exception):
    """An answer without a document: `status`, and headers."""

    def __init__(self, status, headers=None):
        super().__init__(status)
        self.status = status
        self.headers = headers


class Gateway:
    def __init__(self, config, web):
        self.web = web
        self.public_url = config["server", "public_url"]
        self.trusted_proxies = config["server", "trusted_proxies"]
        self.max_body = config["limits", "max_body_bytes"]
        self.auth_mode = config["upstream", "auth"]
        self.upstream_token = config["upstream", "gateway_token"]
        if self.auth_mode not in ("gateway_token", "pass_through"):
            raise ConfigError("[upstream] auth = %r: must be gateway_token or pass_through"
                              % self.auth_mode)
        # One process holds the per-device refreshes and the outbox's single delivery thread.
        if config["server", "workers"] != 1:
            raise ConfigError("[server] workers must be 1 in gateway mode ([upstream] url set)")
        self.timeout = config["upstream", "timeout"]
        try:
            self.upstream = upstream.Upstream(config["upstream", "url"],
                                              config["upstream", "tenant"],
                                              config["upstream", "ca_file"], self.timeout)
        except ValueError as error:
            raise ConfigError(str(error))
        data_dir = config["server", "data_dir"]
        os.makedirs(data_dir, exist_ok=True)
        self.state = state.GatewayState(os.path.join(data_dir, "gateway.sqlite"))
        self.delivery = outbox.Delivery(self.state, self.upstream, self._item_auth,
                                        self._delivered)
        # What the devices' relayed deployments name is never evicted.
        self.cache = cache.ArtifactCache(
            os.path.join(data_dir, "gateway-cache"), config["upstream", "cache_mib"] << 20,
            self.state.artifacts_in_use, float(self.timeout),
            ssl_context=self.upstream.tls_context)
        self._refreshing = {}
        self._refreshing_lock = threading.Lock()
        self._upstream_slots = threading.BoundedSemaphore(UPSTREAM_CONCURRENCY)
        self.figures = {"polls_answered": 0, "upstream_polls": 0}

    def install(self, app):
        """The DDI routes; the outbox's delivery starts (what an earlier run left included)."""
        self.delivery.start()
        routes = (
            ("GET", "", self.get),
            ("PUT", "/configData", self.report),
            ("GET", "/deploymentBase/<action_id>", self.get),
            ("POST", "/deploymentBase/<action_id>/feedback", self.report),
            ("GET", "/cancelAction/<action_id>", self.get),
            ("POST", "/cancelAction/<action_id>/feedback", self.report),
            ("GET", "/installedBase/<action_id>", self.get),
            ("PUT", "/installedBase", self.report),
            ("GET", "/confirmationBase", self.get),
            ("POST", "/confirmationBase/activateAutoConfirm", self.report),
            ("POST", "/confirmationBase/deactivateAutoConfirm", self.report),
            ("GET", "/confirmationBase/<action_id>", self.get),
            ("POST", "/confirmationBase/<action_id>/feedback", self.report),
            ("GET", "/softwaremodules/<module_id>/artifacts", self.get),
            ("GET", "/softwaremodules/<module_id>/artifacts/<filename>", self.download),
        )
        for method, path, handler in routes:
            app.route(DEVICE_ROOT + path, method, self._guarded(handler))

    # --- the wrapper every device request goes through -----------------------------------

    def _guarded(self, handler):
        def route(tenant, controller_id, **params):
            web = self.web
            try:
                device = self._device(tenant, controller_id)
                if device is None:
                    return web.body_welcome(bottle.request, self.max_body,
                                            web.body_too_large(self.max_body))
                return handler(device, **params)
            except Problem as problem:
                return web.framework_response(problem.status, problem.headers,
                                              problem.status == 401)
            except store_errors.StoreError as error:
                return web.error_response(error)
        return route

    def _device(self, tenant_name, controller_id):
        environ = bottle.request.environ
        if tenant_name.upper() != LOCAL_TENANT:
            raise Problem(401)
        origin = forwarded.Origin(environ, self.public_url, self.trusted_proxies)
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if self.auth_mode == "gateway_token":
            if not self.web.device_authenticated(environ, controller_id, origin):
                raise Problem(401)
        elif not self._known_to_upstream(controller_id, authorization):
            raise Problem(401)
        if connections.BEFORE_BODY in environ:
            return None
        return Device(controller_id, tenant_name, origin.base_url, authorization, origin.address)

    def _known_to_upstream(self, controller_id, authorization):
        """Pass-through: whether upstream accepted this Authorization for the device (its
        hash is kept, so that known devices are served while upstream is down); asked of
        upstream when not known."""
        if not authorization.strip():
            return False
        presented = _token_hash(authorization)
        known = self.state.device(controller_id)
        if known is not None and known[0] and hmac.compare_digest(known[0], presented):
            return True
        try:
            answer = self._fetch(controller_id, "", authorization)
        except upstream.UpstreamDown:
            raise Problem(503, {"Retry-After": "%d" % DEFAULT_SLEEP_SECONDS})
        return 200 <= answer.status < 300

    def _upstream_auth(self, authorization):
        if self.auth_mode == "gateway_token":
            return "GatewayToken " + self.upstream_token
        return authorization

    def _item_auth(self, item):
        return self._upstream_auth(item.auth)

    # --- GETs: the last upstream answer, refreshed once per sleep ---------------------------

    def get(self, device, **params):
        request = bottle.request
        media_type = self.web.negotiate(request.environ.get("HTTP_ACCEPT", ""))
        if media_type is None:
            raise Problem(406)
        resource = _resource(request.environ)
        if resource == "":
            # The local target (created at the first poll) carries what operators see of
            # the device here: address, last poll, poll status (README: Gateway mode).
            ddi.register_poll(ddi.device_target(device.controller_id), device.controller_id,
                              device.address, ddi.now_ms())
        stored = self._answer(device, resource)
        if stored.status != 200:
            return bottle.HTTPResponse(stored.body, stored.status,
                                       {"Content-Type": "application/json"} if stored.body else {})
        document = json.loads(stored.body.decode("utf-8"))
        document = self._hide_closed(device.controller_id, resource, document)
        document = _rewrite_links(document, device.base_url, device.tenant)
        document = _artifacts_at_gateway(document, "%s/%s/controller/v1/%s" % (
            device.base_url, device.tenant, urllib.parse.quote(device.controller_id, safe="")))
        if resource == "":
            self.figures["polls_answered"] += 1
        return self.web.document_response(document, media_type, request,
                                          "/softwaremodules/" not in resource)

    def _answer(self, device, resource):
        stored = self.state.answer(device.controller_id, resource)
        stale = stored is not None and upstream.now_ms() - stored.fetched_ms >= \
            1000 * self._sleep_seconds(device.controller_id)
        if stored is None or (stale and self.upstream.may_ask()):
            done, started = self._refresh(device, resource)
            if stored is None:
                done.wait(self.timeout + 1)
            elif started and self.upstream.answering():
                # Only the poll that asked waits, and only while upstream answers: polls
                # behind a request that hangs, or while upstream is down, wait for nothing.
                done.wait(FRESH_WAIT_SECONDS)
            stored = self.state.answer(device.controller_id, resource) or stored
        if stored is None:
            raise Problem(503, {"Retry-After": "%d" % DEFAULT_SLEEP_SECONDS})
        return stored

    def _sleep_seconds(self, controller_id):
        known = self.state.device(controller_id)
        return known[1] if known is not None and known[1] is not None else DEFAULT_SLEEP_SECONDS

    def _refresh(self, device, resource):
        """Ask upstream for the resource in a thread, unless that is under way: (an Event
        set when it is done, whether this call started it)."""
        key = (device.controller_id, resource)
        with self._refreshing_lock:
            done = self._refreshing.get(key)
            if done is not None:
                return done, False
            done = self._refreshing[key] = threading.Event()

        def run():
            try:
                self._fetch(device.controller_id, resource, device.authorization)
            except upstream.UpstreamDown:
                pass  # the last answer stays; the error is in upstream's health
            except Exception:
                log.exception("relaying %s of %s failed", resource, device.controller_id)
            finally:
                with self._refreshing_lock:
                    del self._refreshing[key]
                done.set()
        threading.Thread(target=run, name="gateway-refresh", daemon=True).start()
        return done, True

    def _fetch(self, controller_id, resource, authorization):
        """Ask upstream for a device's resource now and remember its answer."""
        headers = {"Accept": "application/json"}
        auth = self._upstream_auth(authorization)
        if auth:
            headers["Authorization"] = auth
        with self._upstream_slots:
            answer = self.upstream.request(
                "GET", self.upstream.device_path(controller_id, resource), headers)
        now = upstream.now_ms()
        if resource == "":
            self.figures["upstream_polls"] += 1
        if answer.status in (401, 403):
            if self.auth_mode == "pass_through":
                self.state.forget_token(controller_id)
            return answer
        body = answer.body if answer.status != 304 else b""
        try:
            document = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.upstream.note_error("GET %s of %s: not JSON" % (resource, controller_id))
            raise upstream.UpstreamDown("not JSON")
        self.state.store_answer(controller_id, resource, answer.status, body, now)
        token_hash = _token_hash(authorization) if self.auth_mode == "pass_through" else None
        sleep = None
        if resource == "" and isinstance(document, dict) and answer.status == 200:
            sleep = _sleep_of(document)
            self._note_root_answer(controller_id, document)
        self.state.note_device(controller_id, now, token_hash if answer.status == 200 else None,
                               sleep)
        if resource == "" and isinstance(document, dict) and answer.status == 200:
            self._prefetch(controller_id, document, authorization)
        if answer.status == 200 and isinstance(document, dict) and \
                re.match(r"^/(deploymentBase|confirmationBase)/[^/]+$", resource):
            self._note_deployment(controller_id, resource.split("/")[2].split("?")[0],
                                  document, authorization)
        return answer

    def _prefetch(self, controller_id, document, authorization):
        """The action resources a root poll links to, asked for now rather than when the
        device follows the link: it gets them even if upstream is down by then, and the
        artifact cache starts filling at once."""
        for rel in ("deploymentBase", "confirmationBase", "cancelAction"):
            href = ((document.get("_links") or {}).get(rel) or {}).get("href")
            if not href or "/controller/v1/" not in href or _action_id_of(href) is None:
                continue
            resource = href.split("/controller/v1/", 1)[1]
            resource = _resource_key(resource[len(resource.split("/")[0]):])
            if self.state.answer(controller_id, resource) is None:
                try:
                    self._fetch(controller_id, resource, authorization)
                except upstream.UpstreamDown:
                    return

    def _note_root_answer(self, controller_id, document):
        """What a fresh root poll says about the device's actions: closed ones upstream no
        longer shows are forgotten; no action shown, no artifact in use."""
        shown = _action_ids(document)
        self.state.keep_closed_actions(controller_id, shown)
        if not shown and self.state.clear_artifacts(controller_id):
            self.cache.evict()  # its artifacts may be pinned no longer: their room is free
        # Answers about actions the poll no longer links to (installedBase included) are
        # not asked for again: keeping them would grow the file by a row per action.
        linked = {_any_action_id_of(link.get("href")) for link in
                  (document.get("_links") or {}).values() if isinstance(link, dict)}
        self.state.forget_answers(controller_id, lambda resource: _any_action_id_of(
            resource) not in linked | {None})

    def _note_deployment(self, controller_id, action_id, document, authorization):
        """The artifacts of a relayed deployment: only these may the device download; the
        cache starts fetching them at once."""
        artifacts = []
        for index, chunk in enumerate(_chunks_of(document)):
            module_id = _module_id_of(chunk, index)
            for artifact in chunk.get("artifacts") or []:
                hashes = artifact.get("hashes") or {}
                links = artifact.get("_links") or {}
                href = (links.get("download") or links.get("download-http") or {}).get("href")
                sha1 = str(hashes.get("sha1") or "").lower()
                if not (re.match(r"^[0-9a-f]{40}$", sha1) and href and module_id):
                    continue  # nothing the cache could verify: not served
                artifacts.append(state.RelayedArtifact(
                    controller_id, module_id, artifact.get("filename", ""), action_id,
                    sha1, int(artifact.get("size") or 0), json.dumps(hashes), href))
        self.state.set_artifacts(controller_id, action_id, artifacts)
        for artifact in artifacts:
            self._cache_fetch(artifact, authorization)

    def _cache_fetch(self, artifact, authorization):
        """The artifact's cache entry, its upstream transfer started unless under way. The
        credentials go only to upstream itself, never to another host a link names (a
        download server or CDN that hawkBit may be configured to link to)."""
        auth = self._upstream_auth(authorization) \
            if self.upstream.is_upstream(artifact.href) else None
        return self.cache.fetch(artifact.sha1, artifact.size, json.loads(artifact.hashes),
                                artifact.href, {"Authorization": auth} if auth else {})

    def _hide_closed(self, controller_id, resource, document):
        """The device's answer without the actions it closed and upstream does not know of
        yet."""
        closed = self.state.closed_actions(controller_id)
        if not closed or not isinstance(document, dict):
            return document
        if resource == "":
            links = document.get("_links") or {}
            kept = {rel: link for rel, link in links.items()
                    if _action_id_of(link.get("href", "")) not in closed}
            document = dict(document)
            if kept:
                document["_links"] = kept
            else:
                document.pop("_links", None)
        return document

    # --- reports: into the outbox -----------------------------------------------------------

    def report(self, device, **params):
        request = bottle.request
        body = self.web.read_body(request, self.max_body,
                                  required="AutoConfirm" not in request.path)
        if body is not None and not isinstance(body, dict):
            raise store_errors.BodyNotReadable()
        resource = _resource(request.environ, with_query=False)
        parts = resource.split("/")
        # Checked here by the rules a local report meets: a report upstream would refuse
        # is the device's 400 now, not a silent drop in the outbox later.
        if len(parts) == 4 and parts[3] == "feedback":
            parse = ddi.parse_confirmation if parts[1] == "confirmationBase" \
                else ddi.parse_feedback
            parse(body)
            _action_id(parts[2])
        elif resource == "/installedBase" and not (
                isinstance(body.get("name"), str) and isinstance(body.get("version"), str)):
            raise store_errors.BodyNotReadable()
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8") \
            if body is not None else b""
        added = self.state.enqueue(device.controller_id, request.method, resource, canonical,
                                   device.authorization if self.auth_mode == "pass_through"
                                   else None, upstream.now_ms())
        if len(parts) == 4 and parts[3] == "feedback":
            execution = ((body.get("status") or {}).get("execution") or "")
            if str(execution).lower() in CLOSING_EXECUTIONS.get(parts[1], ()):
                self.state.close_action(device.controller_id, parts[2])
        if added:
            self.delivery.wake()
        return bottle.HTTPResponse(b"", 200)

    def _delivered(self, item, status):
        """After a report reached upstream, the device's next poll asks upstream afresh: its
        answer has likely changed (an action closed, attributes no longer asked for). A
        report upstream refused closes nothing: the action shows again as upstream has it."""
        self.state.make_stale(item.controller_id, "")
        parts = item.resource.split("/")
        if status >= 300 and len(parts) == 4 and parts[3] == "feedback":
            self.state.reopen_action(item.controller_id, parts[2])

    # --- downloads --------------------------------------------------------------------------

    def download(self, device, module_id, filename):
        relayed = self.state.artifact(device.controller_id, module_id, filename)
        md5sum = filename.endswith(".MD5SUM")
        if relayed is None and md5sum:
            relayed = self.state.artifact(device.controller_id, module_id, filename[:-7])
        if relayed is None:  # not this device's: it learns nothing of others' artifacts
            raise store_errors.EntityNotFound("Artifact", filename)
        entry = self.cache.get(relayed.sha1) or self._cache_fetch(relayed, device.authorization)
        if md5sum:
            status, headers, body = entry.md5sum_response(relayed.filename)
        else:
            status, headers, body = entry.response(bottle.request.environ, relayed.filename)
        return bottle.HTTPResponse(body, status, headers)

    # --- the operators' view ----------------------------------------------------------------

    def install_operator_routes(self, app, operator_only, observer):
        """GET /rest/v1/gateway and /rest/v1/gateway/devices; 409 for the Management API's
        writes that would give devices orders of the gateway's own; the metrics."""
        def answer(document):
            return bottle.HTTPResponse(json.dumps(document).encode("utf-8"), 200,
                                       {"Content-Type": "application/json"})
        app.route("/rest/v1/gateway", "GET", operator_only(lambda: answer(self.status())))
        app.route("/rest/v1/gateway/devices", "GET",
                  operator_only(lambda: answer(self.devices())))
        app.route("/rest/v1/targets/<cid>/actions", "GET", lambda cid: operator_only(
            lambda: answer(self.target_actions(cid)))())
        app.route("/rest/v1/targets/<cid>/actions/<aid>", "GET", lambda cid, aid: operator_only(
            lambda: self.target_action(cid, aid, answer))())
        # The history is upstream's: here, an empty list, so that tools reading it go on.
        app.route("/rest/v1/targets/<cid>/actions/<aid>/status", "GET",
                  lambda cid, aid: operator_only(
                      lambda: answer({"content": [], "total": 0, "size": 0}))())
        conflict = operator_only(_follows_upstream)
        for method, rule in CONFLICTING_WRITES:
            app.route(rule, method, lambda conflict=conflict, **params: conflict())
        observer.watch(self.metric_figures, METRIC_FIGURES)

    def status(self):
        """GET /rest/v1/gateway: upstream health, the outbox, the cache, the devices."""
        document = collections.OrderedDict()
        document["upstream"] = self.upstream.health()
        document["upstream"]["auth"] = self.auth_mode
        document["outbox"] = self.state.outbox_figures()
        document["outbox"]["delivered"] = self.delivery.figures["delivered"]
        document["outbox"]["pending"] = [
            {"id": row[0], "controllerId": row[1], "method": row[2], "resource": row[3],
             "createdAt": row[4], "attempts": row[5], "lastError": row[6]}
            for row in self.state.outbox_items()]
        document["cache"] = dict(self.cache.stats())
        document["cache"]["contents"] = self.cache.contents()
        document["devices"] = len(self.state.devices())
        return document

    def target_actions(self, controller_id):
        """GET /rest/v1/targets/{id}/actions in gateway mode: the device's current actions as
        upstream last showed them (upstream keeps their history)."""
        stored = self.state.answer(controller_id, "")
        links = {}
        if stored is not None and stored.status == 200 and stored.body:
            links = json.loads(stored.body.decode("utf-8")).get("_links") or {}
        closed = self.state.closed_actions(controller_id)
        actions = []
        for rel, link in sorted(links.items()):
            action_id = _action_id_of(link.get("href"))
            if action_id is None:
                continue
            document = collections.OrderedDict((
                ("id", int(action_id) if action_id.isdigit() else action_id),
                ("type", "cancel" if rel == "cancelAction" else "update"),
                ("status", "finished" if action_id in closed else
                 "canceling" if rel == "cancelAction" else
                 "wait_for_confirmation" if rel == "confirmationBase" else "running"),
                ("relayedFrom", rel), ("closedHere", action_id in closed)))
            base = self._deployment_of(controller_id, rel, action_id)
            document["forceType"] = None if base is None else {
                "forced": "forced", "skip": "downloadonly"}.get(base.get("update"), "soft")
            document["_links"] = {"self": {"href": "/rest/v1/targets/%s/actions/%s" % (
                urllib.parse.quote(controller_id, safe=""), action_id)}}
            actions.append(document)
        return {"content": actions, "total": len(actions), "size": len(actions)}

    def target_action(self, controller_id, action_id, answer):
        for action in self.target_actions(controller_id)["content"]:
            if str(action["id"]) == action_id:
                return answer(action)
        return self.web.error_response(store_errors.EntityNotFound("Action", action_id))

    def _deployment_of(self, controller_id, rel, action_id):
        stored = self.state.answer(controller_id, "/%s/%s" % (rel, action_id))
        if stored is None or stored.status != 200 or not stored.body:
            return None
        document = json.loads(stored.body.decode("utf-8"))
        return document.get("deployment") or document.get("confirmation")

    def devices(self):
        """The relayed devices and their current action as upstream last showed it."""
        listed = []
        for controller_id, first_seen, last_seen, sleep in self.state.devices():
            stored = self.state.answer(controller_id, "")
            document = {}
            if stored is not None and stored.status == 200 and stored.body:
                document = json.loads(stored.body.decode("utf-8"))
            links = document.get("_links") or {}
            listed.append(collections.OrderedDict((
                ("controllerId", controller_id), ("firstSeenAt", first_seen),
                ("lastUpstreamAnswerAt", last_seen), ("sleepSeconds", sleep),
                ("currentActions", sorted(
                    {"%s/%s" % (rel, _action_id_of(link.get("href")))
                     for rel, link in links.items() if _action_id_of(link.get("href"))})),
                ("closedHere", sorted(self.state.closed_actions(controller_id))))))
        return {"content": listed, "total": len(listed)}

    def metric_figures(self):
        cache = self.cache.stats()
        looked_up = cache.get("hits", 0) + cache.get("misses", 0)
        return {"upstream_requests": self.upstream.figures["requests"],
                "upstream_bytes": self.upstream.figures["bytes_received"]
                + cache.get("bytes_from_upstream", 0),
                "upstream_polls_saved": max(0, self.figures["polls_answered"]
                                            - self.figures["upstream_polls"]),
                "bytes_saved": max(0, cache.get("bytes_served", 0)
                                   - cache.get("bytes_from_upstream", 0)),
                "outbox_depth": self.state.outbox_figures()["depth"],
                "cache_hit_ratio": cache.get("hits", 0) / looked_up if looked_up else 0.0}


def _follows_upstream():
    body = collections.OrderedDict((
        ("exceptionClass", "org.eclipse.hawkbit.repository.exception.EntityReadOnlyException"),
        ("errorCode", "hawkbit.server.error.gateway.followsUpstream"),
        ("message", "This server is a gateway and follows its upstream server: assign "
                    "distribution sets and run rollouts there.")))
    return bottle.HTTPResponse(json.dumps(body).encode("utf-8"), 409,
                               {"Content-Type": "application/json"})


def _action_id(text):
    """An action id in a report's path: digits, as hawkBit's are (else 400)."""
    if not text.isdigit():
        raise store_errors.BodyNotReadable("The action id %r is not a number." % text[:40])
    return text


def _token_hash(authorization):
    return hashlib.sha256(authorization.strip().encode("utf-8")).hexdigest()


def _resource(environ, with_query=True):
    """The part of a device request's path after the controller id, with its query."""
    path = environ.get("PATH_INFO", "")
    controller_path = "/controller/v1/"
    rest = path[path.index(controller_path) + len(controller_path):]
    rest = rest[len(rest.split("/")[0]):]
    return _resource_key(rest + "?" + environ.get("QUERY_STRING", "")) if with_query else rest


def _resource_key(resource):
    """A resource as the gateway keeps its answer: without hawkBit's `c` parameter, a hash of
    the action's state that only busts HTTP caches, so that the link's and the device's
    request's keys agree whichever `c` each carries."""
    path, _, query = resource.partition("?")
    kept = [pair for pair in query.split("&") if pair and not pair.startswith("c=")]
    return path + ("?" + "&".join(kept) if kept else "")


def _sleep_of(document):
    try:
        text = document["config"]["polling"]["sleep"]
        return max(1, int(schedule.parse_duration(text)))
    except (KeyError, TypeError, ValueError):
        return None


_ACTION_LINK = re.compile(r"/(?:deploymentBase|cancelAction|confirmationBase)/([^/?]+)")


def _action_id_of(href):
    match = _ACTION_LINK.search(href or "")
    return urllib.parse.unquote(match.group(1)) if match else None


_ANY_ACTION_RESOURCE = re.compile(
    r"/(?:deploymentBase|cancelAction|confirmationBase|installedBase)/([^/?]+)")


def _any_action_id_of(href):
    match = _ANY_ACTION_RESOURCE.search(href or "")
    return urllib.parse.unquote(match.group(1)) if match else None


def _action_ids(document):
    links = document.get("_links") or {}
    return {_action_id_of(link.get("href")) for link in links.values()
            if isinstance(link, dict) and _action_id_of(link.get("href"))}


def _chunks_of(document):
    if not isinstance(document, dict):
        return []
    return (document.get("deployment") or document.get("confirmation") or {}).get(
        "chunks") or []


def _module_id_of(chunk, index):
    """The chunk's software module id, from its DDI links; `chunk-N` when they name none (a
    hawkBit that links artifacts to a separate download server)."""
    for artifact in chunk.get("artifacts") or []:
        for link in (artifact.get("_links") or {}).values():
            match = re.search(r"/softwaremodules/([^/]+)/artifacts/", link.get("href", ""))
            if match:
                return urllib.parse.unquote(match.group(1))
    return "chunk-%d" % index


ARTIFACT_RELS = {"download": "", "download-http": "", "md5sum": ".MD5SUM",
                 "md5sum-http": ".MD5SUM"}


def _artifacts_at_gateway(document, device_url):
    """`document` with every artifact link that still points elsewhere (a download server)
    pointing at the gateway's download route under `device_url`, which serves it from the
    cache: devices never get a link away from the gateway."""
    for index, chunk in enumerate(_chunks_of(document)):
        module_id = _module_id_of(chunk, index)
        for artifact in chunk.get("artifacts") or []:
            links = artifact.get("_links") or {}
            for rel, suffix in ARTIFACT_RELS.items():
                link = links.get(rel)
                if isinstance(link, dict) and not str(link.get("href", "")).startswith(
                        device_url + "/"):
                    link["href"] = "%s/softwaremodules/%s/artifacts/%s%s" % (
                        device_url, urllib.parse.quote(module_id, safe=""),
                        urllib.parse.quote(str(artifact.get("filename", "")), safe=""), suffix)
    return document


def _rewrite_links(document, base_url, tenant):
    """`document` with every href into a controller's DDI tree made to point at this gateway
    (`base_url`, the device's `tenant`), whatever host, path prefix or tenant upstream used."""
    if isinstance(document, dict):
        rewritten = {}
        for key, value in document.items():
            if key == "href" and isinstance(value, str) and "/controller/v1/" in value:
                tail = value[value.index("/controller/v1/"):]
                value = "%s/%s%s" % (base_url, tenant, tail)
            else:
                value = _rewrite_links(value, base_url, tenant)
            rewritten[key] = value
        return rewritten
    if isinstance(document, list):
        return [_rewrite_links(value, base_url, tenant) for value in document]
    return document
