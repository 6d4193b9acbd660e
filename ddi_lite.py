"""ddi-lite: a lightweight update server speaking Eclipse hawkBit's DDI API v1.

This module is the web face: the configuration schema, the app factory, the route table,
authentication, content negotiation, the mapping of errors to hawkBit's error bodies, and the
command line. Rules live in `storage/`, bytes in `artifacts/`; what runs the app as a service
(connections, settings lookup, systemd) in `service/`; the programs that talk to a server from
outside (operator commands, simulator) in `client/`; the operators' web console, which
create_app mounts at /ui, in `console/`. Sections:

    Configuration      SETTINGS, the whole settings schema (read by service.configuration)
    HTTP plumbing      bodies, media types, errors, links
    Device API (DDI)   /{tenant}/controller/v1/{controllerId}/...
    Management API     /rest/v1/...
    Application        create_app(config) -> WSGI app
    Command line       serve, and `main()`, which dispatches every sub-command: passwd, backup,
                       restore, install-service (service.cli) and the client commands
                       (client.cli)
"""

import argparse
import base64
import collections
import datetime
import functools
import hashlib
import hmac
import json
import logging
import math
import re
import signal
import sys
import threading
import urllib.parse

import bottle

import artifacts
import console
import gateway
import storage
from client import cli
from service import (access_log, artifact_store, configuration, connections, forwarded,
                     metrics, systemd, workers)
from service import cli as service_cli
from service.configuration import ConfigError
from service.settings import SERVER_SETTINGS, TENANT_DEFAULTS
from storage import chunks, coerce, counts, ddi, filters, fleet, query, software, tenant
from storage import rollouts, software_types, tags, target_types
from storage import errors as store_errors
from storage import transitions
from storage.accounts import Accounts, PasswordNotChecked
from storage.tenant import InvalidConfigKey, InvalidConfigValue

log = logging.getLogger("ddi-lite")

DEFAULT_TENANT = "DEFAULT"


###############################################################################
# Configuration ###############################################################
###############################################################################

# Every setting: the server's own (service/settings.py), then where artifacts are kept and
# gateway mode's, which their modules describe.
SETTINGS = SERVER_SETTINGS + artifact_store.SETTINGS + gateway.SETTINGS


def load_config(path=None, environ=None, overrides=None):
    """The server's settings (SETTINGS): the settings file found (`path`: what --config names),
    then DDI_LITE_* variables, then `overrides` ("section.key" -> value: flags, tests)."""
    return configuration.load(SETTINGS, path, environ, overrides)


###############################################################################
# HTTP plumbing ###############################################################
###############################################################################

HAL_JSON = "application/hal+json"
JSON = "application/json"
CBOR = "application/cbor"
JSON_MEDIA_TYPES = (HAL_JSON, JSON, CBOR)

HTTP_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                405: "Method Not Allowed", 406: "Not Acceptable", 413: "Payload Too Large",
                415: "Unsupported Media Type", 429: "Too Many Requests",
                500: "Internal Server Error"}

class UploadRejected(store_errors.UploadFailed):
    """A broken multipart request."""


class UploadTooLarge(store_errors.FileSizeQuotaExceeded):
    """An upload beyond [limits] max_artifact_bytes: 413, nothing stored."""


# The one place where the store's errors become HTTP statuses (the most specific class wins).
ERROR_STATUS = {
    store_errors.StoreError: 500,
    store_errors.EmptyNotFound: 404,
    store_errors.EntityNotFound: 404,
    store_errors.ModuleNotAssigned: 404,
    store_errors.Deleted: 404,
    store_errors.QuotaExceeded: 429,
    store_errors.FileSizeQuotaExceeded: 429,
    store_errors.StorageQuotaExceeded: 429,
    store_errors.NotCancelable: 405,
    store_errors.NotForceQuitable: 405,
    store_errors.NotDeletable: 405,
    store_errors.AutoConfirmAlreadyActive: 409,
    store_errors.EntityAlreadyExists: 409,
    store_errors.ConcurrentModification: 409,
    store_errors.TargetTypeInUse: 409,
    store_errors.IncompatibleTargetType: 400,
    store_errors.TargetTypeKeyOrNameRequired: 400,
    store_errors.EntityReadOnly: 403,
    store_errors.EmptyGone: 410,
    store_errors.BinaryDeleted: 410,
    store_errors.Locked: 423,
    store_errors.BodyNotReadable: 400,
    store_errors.EmptyBadRequest: 400,
    store_errors.ConstraintViolation: 400,
    store_errors.InvalidTargetAttributes: 400,
    store_errors.IncompleteDistributionSet: 400,
    store_errors.InvalidDistributionSet: 400,
    store_errors.InvalidMaintenanceSchedule: 400,
    store_errors.MultiAssignment: 400,
    store_errors.ModulesUnsupported: 400,
    store_errors.EncryptionNotSupported: 400,
    store_errors.InvalidAutoAssignActionType: 400,
    store_errors.RolloutIllegalState: 400,
    store_errors.UploadFailed: 400,
    UploadTooLarge: 413,
    InvalidConfigKey: 400,
    InvalidConfigValue: 400,
    coerce.BadParameter: 400,
    query.RsqlSyntax: 400,
    query.RsqlInvalidField: 400,
    query.SortSyntax: 400,
    query.SortInvalidField: 400,
    query.SortInvalidDirection: 400,
}
# Errors hawkBit answers without a body.
EMPTY_ERRORS = (store_errors.EmptyNotFound, store_errors.EmptyBadRequest, store_errors.EmptyGone)


class HttpProblem(Exception):
    """A failure before the rules are reached: bad parameter, media type, method, auth."""

    def __init__(self, status, headers=None, empty=False):
        super().__init__(status)
        self.status = status
        self.headers = headers or {}
        self.empty = empty


def _json_bytes(document):
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_status(error):
    """The HTTP status of a store error (the most specific class in ERROR_STATUS)."""
    return next(ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in ERROR_STATUS)


def error_response(error):
    """hawkBit's error body for a store error; an empty body where hawkBit sends none."""
    status = error_status(error)
    if isinstance(error, EMPTY_ERRORS):
        return bottle.HTTPResponse(b"", status)
    body = collections.OrderedDict((("exceptionClass", error.exception_class),
                                    ("errorCode", error.error_code),
                                    ("message", error.message)))
    if error.info:
        body["info"] = error.info
    return bottle.HTTPResponse(_json_bytes(body), status, {"Content-Type": JSON})


def framework_response(status, headers=None, empty=False):
    """Spring's body for errors found before the domain logic (mgmt contract §3.3)."""
    if empty:
        return bottle.HTTPResponse(b"", status, headers)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    body = collections.OrderedDict((("timestamp", stamp), ("status", status),
                                    ("error", HTTP_REASONS.get(status, "Error"))))
    all_headers = {"Content-Type": JSON}
    all_headers.update(headers or {})
    return bottle.HTTPResponse(_json_bytes(body), status, all_headers)


@functools.lru_cache(maxsize=256)
def negotiate(accept):
    """The media type to answer a JSON resource with, or None (406)."""
    if not accept:
        return HAL_JSON
    ranges = []
    for position, part in enumerate(accept.split(",")):
        fields = part.split(";")
        media = fields[0].strip().lower()
        quality = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranges.append((-quality, position, media))
    for _, _, media in sorted(ranges):
        if media in ("*/*", "application/*"):
            return HAL_JSON
        if media in JSON_MEDIA_TYPES:
            return media
    return None


def accepts_text(accept):
    if not accept:
        return True
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("*/*", "text/*", "text/plain"):
            return True
    return False


def _cbor2():
    """cbor2, imported when the first CBOR body comes or goes: few devices speak it, and an
    idle server is 1.4 MiB smaller without it (as without openapi and the sub-commands)."""
    import cbor2
    return cbor2


def encode(document, media_type):
    if media_type == CBOR:
        return _cbor2().dumps(document)
    return _json_bytes(document)


def document_response(document, media_type, request, etag=True):
    """200 with the document; a GET gets hawkBit's shallow ETag and may be answered 304."""
    body = encode(document, media_type)
    headers = {"Content-Type": media_type}
    if etag and request.method == "GET":
        etag = '"0%s"' % hashlib.md5(body).hexdigest()
        headers["ETag"] = etag
        if etag_matches(request.environ.get("HTTP_IF_NONE_MATCH"), etag):
            return bottle.HTTPResponse(b"", 304, headers)
    return bottle.HTTPResponse(body, 200, headers)


def etag_matches(if_none_match, etag):
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == "*" or tag == etag:
            return True
    return False


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


# Behind `serve`, the app is asked before a body is read (service.connections): the request
# carries BEFORE_BODY, and each route answers right after authentication with `body_welcome`
# or a refusal.


def body_welcome(request, max_bytes, too_large):
    """The answer to BEFORE_BODY: 100 Continue when a body of the declared length may come
    (BODY_LIMIT bounds a chunked one), else the error `too_large`."""
    if request.content_length > max_bytes:
        raise too_large
    request.environ[connections.BODY_LIMIT] = max_bytes
    return bottle.HTTPResponse(b"", 100)


def body_too_large(max_bytes):
    return store_errors.BodyNotReadable("The request body is larger than %d bytes." % max_bytes)


def read_body(request, max_bytes, required=True):
    """The request body as a Python value. JSON or CBOR; a body without a Content-Type is read
    as JSON, because some device clients send none."""
    media = request.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if media not in ("", JSON, CBOR):
        raise HttpProblem(415)
    length = request.content_length
    if length > max_bytes:
        raise body_too_large(max_bytes)
    raw = request.body.read(max_bytes + 1) if length != 0 else b""
    if len(raw) > max_bytes:
        raise body_too_large(max_bytes)
    if not raw:
        if required:
            raise store_errors.BodyNotReadable()
        return None
    # cbor2 before 6.0 (the last for Python 3.9) lets decimal's errors out of a decimal
    # fraction or bigfloat with a huge exponent: ArithmeticError, not CBORDecodeError.
    unreadable = (ValueError, UnicodeError, RecursionError, ArithmeticError)
    try:
        if media == CBOR:
            cbor2 = _cbor2()
            unreadable += (cbor2.CBORDecodeError,)
            value = cbor2.loads(raw)
        else:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        _check_json_value(value)
    except unreadable:
        raise store_errors.BodyNotReadable()
    return value


# The JSON parser reads integers of up to 4300 digits (Python's guard against CVE-2020-10735);
# a CBOR bignum has no such limit, and the store could not even print it.
INTEGER_DIGITS = 4300
_INTEGER_LIMIT = 10 ** INTEGER_DIGITS


def _check_json_value(value):
    """Only what JSON can say, as the store can keep it: text keys, valid UTF-8 text (no lone
    surrogates from `\\ud800` escapes), finite numbers, integers the JSON parser would read.
    CBOR may carry more (tags, byte strings, undefined, longer bignums); it is refused, so that
    a document gets the same answer in either encoding."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be text")
            key.encode("utf-8")
            _check_json_value(item)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("numbers must be finite")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
            raise ValueError("integers have at most %d digits" % INTEGER_DIGITS)
    elif value is not None and not isinstance(value, bool):
        raise ValueError("unsupported value %r" % type(value))


def int_parameter(text, default=None):
    """A decimal path or query parameter; anything else is a 400."""
    if text is None or text == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise HttpProblem(400)
    value = int(text)
    if not -2 ** 63 <= value < 2 ** 63:
        raise HttpProblem(400)
    return value


def file_response(response, size):
    """A download response for Bottle. A body that runs to the end of the file goes out as
    the file itself, which Bottle hands to the server's `wsgi.file_wrapper`."""
    body = response.body
    if isinstance(body, artifacts.FileBody):
        body = body.open_tail(size) or body
    return bottle.HTTPResponse(body, response.status, response.headers)


###############################################################################
# Device API (DDI) ############################################################
###############################################################################

# `action` is the target's current action, read with it, on the resources that register.
Device = collections.namedtuple(
    "Device", "tenant controller_id target action device_url artifact_url address now")

DEVICE_ROOT = "/<tenant>/controller/v1/<controller_id>"


def authenticated(environ, controller_id, target, settings, origin, header_names):
    """Whether the request may act as `controller_id` (contract §2); first success wins."""
    if settings["authentication.header.enabled"] and origin.via_trusted_proxy:
        if _certificate_headers_match(environ, controller_id,
                                      settings["authentication.header.authority"], header_names):
            return True
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    scheme = scheme.lower()
    token = token.strip().encode("utf-8")
    if scheme == "targettoken" and settings["authentication.targettoken.enabled"]:
        if target is not None and token and hmac.compare_digest(
                token, target.security_token.encode("utf-8")):
            return True
    if scheme == "gatewaytoken" and settings["authentication.gatewaytoken.enabled"]:
        key = settings["authentication.gatewaytoken.key"].encode("utf-8")
        if key and token and hmac.compare_digest(token, key):
            return True
    return False


CertificateHeaders = collections.namedtuple("CertificateHeaders", "controller_id authority")

# Current hawkBit (>= 1.0) and older hawkBit (<= 0.10) name the proxy's headers differently;
# existing nginx configurations use either.
CERTIFICATE_HEADERS = (
    CertificateHeaders("HTTP_X_CONTROLLER_ID", "HTTP_X_AUTHORITY"),
    CertificateHeaders("HTTP_X_SSL_CLIENT_CN", "HTTP_X_SSL_ISSUER_HASH"),
)


def _certificate_headers_match(environ, controller_id, authority_setting, header_names):
    accepted = {value.strip().lower() for value in re.split(r"[;,]", authority_setting)
                if value.strip()}
    if not accepted:
        return False
    for names in header_names:
        if environ.get(names.controller_id) != controller_id:
            continue
        presented = []
        if environ.get(names.authority):
            presented = re.split(r"[;,]", environ[names.authority])
        else:
            for index in range(0, 64):
                value = environ.get("%s_%d" % (names.authority, index))
                if value is None and index > 0:
                    break
                if value is not None:
                    presented.append(value)
        if any(value.strip().lower() in accepted for value in presented):
            return True
    return False


class DeviceApi:
    """The DDI resources. Each handler parses, calls one storage rule, and shapes the answer."""

    def __init__(self, config, blobs):
        self.public_url = config["server", "public_url"]
        self.trusted_proxies = config["server", "trusted_proxies"]
        self.max_body = config["limits", "max_body_bytes"]
        self.blobs = blobs
        self.redirect = config["artifacts", "redirect"] and config["artifacts", "redirect_seconds"]
        # The sets' chunks (storage/chunks.py), this app's own: an app serves one database,
        # and what it cached must never be served from another.
        self.chunk_cache = chunks.ChunkCache()

    def install(self, app):
        json_get, json_put, json_post = self._json("GET"), self._json("PUT"), self._json("POST")
        routes = (
            ("GET", "", json_get(self.root_poll, registers=True)),
            ("PUT", "/configData", json_put(self.config_data)),
            ("GET", "/deploymentBase/<action_id>", json_get(self.deployment_base)),
            ("POST", "/deploymentBase/<action_id>/feedback",
             json_post(self.deployment_feedback)),
            ("GET", "/cancelAction/<action_id>", json_get(self.cancel_action)),
            ("POST", "/cancelAction/<action_id>/feedback", json_post(self.cancel_feedback)),
            ("GET", "/installedBase/<action_id>", json_get(self.installed_base)),
            ("PUT", "/installedBase", json_put(self.report_installed)),
            ("GET", "/confirmationBase", json_get(self.confirmation_base, registers=True)),
            ("POST", "/confirmationBase/activateAutoConfirm",
             json_post(self.activate_auto_confirm)),
            ("POST", "/confirmationBase/deactivateAutoConfirm",
             json_post(self.deactivate_auto_confirm)),
            ("GET", "/confirmationBase/<action_id>", json_get(self.confirmation_base_action)),
            ("POST", "/confirmationBase/<action_id>/feedback",
             json_post(self.confirmation_feedback)),
            # hawkBit's ETag filter leaves out the artifact sub-tree.
            ("GET", "/softwaremodules/<module_id>/artifacts",
             json_get(self.artifact_list, etag=False)),
            ("GET", "/softwaremodules/<module_id>/artifacts/<filename>",
             self._guarded(self.download)),
        )
        for method, path, handler in routes:
            app.route(DEVICE_ROOT + path, method, handler)

    # --- the wrapper every device request goes through -----------------------------------

    def _device(self, tenant_name, controller_id, registers):
        """The authenticated device; None when only that was asked (BEFORE_BODY)."""
        request = bottle.request
        if tenant_name.upper() != DEFAULT_TENANT:
            raise HttpProblem(401, empty=True)
        environ = request.environ
        origin = forwarded.Origin(environ, self.public_url, self.trusted_proxies)
        action = None
        if registers:
            target, action = ddi.device_target_and_shown_action(controller_id)
        else:
            target = ddi.device_target(controller_id)
        if not authenticated(environ, controller_id, target, tenant.settings(), origin,
                             CERTIFICATE_HEADERS):
            raise HttpProblem(401, empty=True)
        if connections.BEFORE_BODY in environ:
            return None
        now = ddi.now_ms()
        if registers:
            target = ddi.register_poll(target, controller_id, origin.address, now)
        else:
            ddi.require_target(target, controller_id)
        quoted_id = _quote_segment(controller_id)
        return Device(
            tenant=tenant_name, controller_id=controller_id, target=target, action=action,
            device_url="%s/%s/controller/v1/%s" % (origin.base_url, tenant_name, quoted_id),
            artifact_url="%s/%s/controller/v1/%s" % (origin.base_url, DEFAULT_TENANT, quoted_id),
            address=origin.address, now=now)

    def _guarded(self, handler, media_check=None, registers=False):
        def route(tenant, controller_id, **params):
            try:
                device = self._device(tenant, controller_id, registers)
                if device is None:
                    return body_welcome(bottle.request, self.max_body,
                                        body_too_large(self.max_body))
                media_type = media_check() if media_check else None
                return handler(device, media_type, **params)
            except HttpProblem as problem:
                return framework_response(problem.status, problem.headers, problem.empty)
            except store_errors.StoreError as error:
                return error_response(error)
        return route

    def _json(self, method):
        def bind(handler, registers=False, etag=True):
            def media_check():
                if method != "GET":
                    return JSON
                media_type = negotiate(bottle.request.environ.get("HTTP_ACCEPT", ""))
                if media_type is None:
                    raise HttpProblem(406)
                return media_type

            def answered(device, media_type, **params):
                result = handler(device, **params)
                if isinstance(result, bottle.HTTPResponse):
                    return result
                if result is None:
                    return bottle.HTTPResponse(b"", 200)
                return document_response(result, media_type, bottle.request, etag)
            return self._guarded(answered, media_check, registers)
        return bind

    # --- resources ---------------------------------------------------------------------------

    def root_poll(self, device):
        return ddi.root_poll(device.target, device.device_url, device.now, device.action)

    def config_data(self, device):
        body = read_body(bottle.request, self.max_body)
        if not isinstance(body, dict):
            raise store_errors.BodyNotReadable()
        ddi.update_attributes(device.target, body.get("data"), body.get("mode"), device.now)

    def deployment_base(self, device, action_id):
        action_id = int_parameter(action_id)
        int_parameter(bottle.request.query.get("c"))
        history = int_parameter(bottle.request.query.get("actionHistory"), 0)
        return ddi.deployment_base(device.target, action_id, history, device.artifact_url,
                                   device.now, self.chunk_cache)

    def deployment_feedback(self, device, action_id):
        return self._feedback(device, action_id, transitions.DEPLOYMENT)

    def cancel_action(self, device, action_id):
        return ddi.cancel_action(device.target, int_parameter(action_id), device.now)

    def cancel_feedback(self, device, action_id):
        return self._feedback(device, action_id, transitions.CANCEL)

    def _feedback(self, device, action_id, channel):
        action_id = int_parameter(action_id)
        report = ddi.parse_feedback(read_body(bottle.request, self.max_body))
        ddi.feedback(device.target, action_id, channel, report, device.now)

    def installed_base(self, device, action_id):
        action_id = int_parameter(action_id)
        history = int_parameter(bottle.request.query.get("actionHistory"), 0)
        return ddi.installed_base(device.target, action_id, history, device.artifact_url,
                                  device.now, self.chunk_cache)

    def report_installed(self, device):
        body = read_body(bottle.request, self.max_body)
        name = body.get("name") if isinstance(body, dict) else None
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(name, str) or not isinstance(version, str):
            raise store_errors.BodyNotReadable()
        if ddi.report_installed(device.target, name, version, device.now):
            return bottle.HTTPResponse(b"", 201)
        return None

    def confirmation_base(self, device):
        return ddi.confirmation_base(device.target, device.device_url, device.now,
                                     device.action)

    def confirmation_base_action(self, device, action_id):
        if action_id in ("activateAutoConfirm", "deactivateAutoConfirm"):
            raise HttpProblem(405, {"Allow": "POST"})
        action_id = int_parameter(action_id)
        int_parameter(bottle.request.query.get("c"))
        history = int_parameter(bottle.request.query.get("actionHistory"), 0)
        return ddi.confirmation_base_action(device.target, action_id, history,
                                            device.artifact_url, device.now, self.chunk_cache)

    def confirmation_feedback(self, device, action_id):
        action_id = int_parameter(action_id)
        report = ddi.parse_confirmation(read_body(bottle.request, self.max_body))
        ddi.feedback(device.target, action_id, transitions.CONFIRMATION, report, device.now)

    def activate_auto_confirm(self, device):
        body = read_body(bottle.request, self.max_body, required=False)
        if body is None:
            initiator, remark = None, ddi.DEFAULT_REMARK
        elif isinstance(body, dict):
            initiator, remark = body.get("initiator"), body.get("remark")
            if not all(value is None or isinstance(value, str) for value in (initiator, remark)):
                raise store_errors.BodyNotReadable()
        else:
            raise store_errors.BodyNotReadable()
        ddi.activate_auto_confirm(device.target, initiator, remark, device.now,
                                  device.controller_id)

    def deactivate_auto_confirm(self, device):
        ddi.deactivate_auto_confirm(device.target)

    def artifact_list(self, device, module_id):
        return ddi.artifact_list(device.target, int_parameter(module_id), device.artifact_url,
                                 self.chunk_cache)

    def download(self, device, media_type, module_id, filename):
        request = bottle.request
        module_id = int_parameter(module_id)
        artifact, action, md5sum = ddi.artifact_for_download(device.target, module_id, filename)
        environ = request.environ
        whole_file_get = request.method == "GET" and "HTTP_RANGE" not in environ
        response = None
        if md5sum:
            if not accepts_text(environ.get("HTTP_ACCEPT")):
                raise HttpProblem(406)
            response = artifacts.md5sum_response(artifact.md5, artifact.filename)
        elif self.redirect and request.method == "GET" and not (
                {"HTTP_IF_MATCH", "HTTP_IF_RANGE"} & set(environ)):  # README: Artifact storage
            response = artifacts.redirect_response(self.blobs.presigned_url(
                artifact.sha1, self.redirect, artifact.filename))
        if response is None:
            response = artifacts.file_response(
                self.blobs.source(artifact.sha1), artifact.size, artifact.sha1,
                artifact.created_at, artifact.filename, request.method,
                {"range": environ.get("HTTP_RANGE"), "if-range": environ.get("HTTP_IF_RANGE"),
                 "if-match": environ.get("HTTP_IF_MATCH")})
        # Range requests are never logged: range-streaming clients would fill the history
        # (hawkBit #1249). HEAD is not a download either (SWUpdate sends one before each GET).
        if whole_file_get and response.status in (200, 302):
            ddi.note_download(action, request.path, device.now)
        return file_response(response, artifact.size)


def _quote_segment(text):
    return urllib.parse.quote(text, safe="")


###############################################################################
# Management API (/rest/v1) ###################################################
###############################################################################

class LoginPaused(HttpProblem):
    """A login whose password was not checked (storage.accounts.PasswordNotChecked): 429,
    with the seconds the client should wait."""

    def __init__(self, seconds):
        super().__init__(429, {"Retry-After": "%d" % max(1, math.ceil(seconds))})


def basic_user(environ, accounts, client=None):
    """The authenticated operator, or None. `TENANT\\user` logins name the DEFAULT tenant.
    `client` (its address) is whom wrong logins are counted against."""
    scheme, _, encoded = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    if not separator:
        return None
    if "\\" in user:
        tenant_name, _, user = user.partition("\\")
        if tenant_name.upper() != DEFAULT_TENANT:
            return None
    try:
        return user if accounts.verify(user, password, client) else None
    except PasswordNotChecked as paused:
        raise LoginPaused(paused.seconds)


CHECKSUM_ERRORS = {"md5": store_errors.Md5Mismatch, "sha1": store_errors.Sha1Mismatch,
                   "sha256": store_errors.Sha256Mismatch}


MgmtRequest = collections.namedtuple("MgmtRequest", "base user query request")


def _listing(ctx):
    """The paging, sorting and filtering parameters of a collection request."""
    query = ctx.query
    return (query.get("q") or None, query.get("sort") or None,
            coerce.query_int(query.get("offset"), None), coerce.query_int(query.get("limit"), None))


class ManagementApi:
    """The Tier 1 Management API, target filters, tags, types and rollouts. Each handler reads its parameters,
    calls one rule in `storage.fleet`, `storage.software` or `storage.filters`, and answers
    with hawkBit's status code."""

    def __init__(self, config, blobs, accounts):
        self.public_url = config["server", "public_url"]
        self.trusted_proxies = config["server", "trusted_proxies"]
        self.max_body = config["limits", "max_body_bytes"]
        self.max_artifact = config["limits", "max_artifact_bytes"]
        # An upload's multipart body: the artifact and the small form fields around it.
        self.max_upload = self.max_artifact + artifacts.MultipartUpload.max_field_bytes
        self.blobs = blobs
        self.accounts = accounts

    def install(self, app):
        body = self._body
        F, S = fleet, software
        routes = (
            # targets (§6)
            ("GET", "/targets", 200, lambda c: F.list_targets(c.base, *_listing(c))),
            ("POST", "/targets", 201, lambda c: F.create_targets(c.base, body(c), c.user)),
            ("GET", "/targets/<cid>", 200, lambda c, cid: F.get_target(c.base, cid)),
            ("PUT", "/targets/<cid>", 200,
             lambda c, cid: F.update_target(c.base, cid, body(c), c.user)),
            ("DELETE", "/targets/<cid>", 204, lambda c, cid: F.delete_target(cid)),
            ("GET", "/targets/<cid>/attributes", 200,
             lambda c, cid: F.target_attributes(cid)),
            ("GET", "/targets/<cid>/assignedDS", 200,
             lambda c, cid: F.target_assigned_ds(c.base, cid)),
            ("GET", "/targets/<cid>/assignedDs", 200,
             lambda c, cid: F.target_assigned_ds(c.base, cid)),
            ("GET", "/targets/<cid>/installedDS", 200,
             lambda c, cid: F.target_installed_ds(c.base, cid)),
            ("GET", "/targets/<cid>/installedDs", 200,
             lambda c, cid: F.target_installed_ds(c.base, cid)),
            ("POST", "/targets/<cid>/assignedDS", 200,
             lambda c, cid: S.assign_from_target(c.base, cid, body(c), _offline(c), c.user)),
            ("GET", "/targets/<cid>/autoConfirm", 200,
             lambda c, cid: F.auto_confirm_state(c.base, cid)),
            ("POST", "/targets/<cid>/autoConfirm/activate", 204,
             lambda c, cid: F.activate_auto_confirm(cid, body(c, required=False), c.user)),
            ("POST", "/targets/<cid>/autoConfirm/deactivate", 204,
             lambda c, cid: F.deactivate_auto_confirm(cid)),
            ("GET", "/targets/<cid>/metadata", 200, lambda c, cid: F.list_target_metadata(cid)),
            ("POST", "/targets/<cid>/metadata", 201,
             lambda c, cid: F.create_target_metadata(cid, body(c), c.user)),
            ("GET", "/targets/<cid>/metadata/<key>", 200,
             lambda c, cid, key: F.get_target_metadata(cid, key)),
            ("PUT", "/targets/<cid>/metadata/<key>", 204,
             lambda c, cid, key: F.put_target_metadata(cid, key, body(c), c.user)),
            ("DELETE", "/targets/<cid>/metadata/<key>", 204,
             lambda c, cid, key: F.delete_target_metadata(cid, key)),
            # actions (§7)
            ("GET", "/targets/<cid>/actions", 200,
             lambda c, cid: F.list_target_actions(c.base, cid, *_listing(c))),
            ("DELETE", "/targets/<cid>/actions", 204,
             lambda c, cid: F.purge_target_actions(
                 cid, coerce.query_int(c.query.get("keepLast"), None),
                 body(c, required=False))),
            ("GET", "/targets/<cid>/actions/<aid>", 200,
             lambda c, cid, aid: F.get_target_action(c.base, cid, _id(aid))),
            ("DELETE", "/targets/<cid>/actions/<aid>", 204,
             lambda c, cid, aid: F.cancel_target_action(
                 cid, _id(aid), bool(coerce.query_bool(c.query.get("force"))), c.user)),
            ("PUT", "/targets/<cid>/actions/<aid>", 200,
             lambda c, cid, aid: F.update_target_action(c.base, cid, _id(aid), body(c), c.user)),
            ("PUT", "/targets/<cid>/actions/<aid>/confirmation", 204,
             lambda c, cid, aid: F.confirm_target_action(cid, _id(aid), body(c), c.user)),
            ("GET", "/targets/<cid>/actions/<aid>/status", 200,
             lambda c, cid, aid: F.action_status_list(cid, _id(aid), *_listing(c)[1:])),
            ("GET", "/actions", 200,
             lambda c: F.list_actions(c.base, *_listing(c),
                                      full=c.query.get("representation") == "full")),
            ("DELETE", "/actions", 204,
             lambda c: F.delete_actions(c.query.get("q") or None,
                                        None if c.query.get("q") else body(c, required=False))),
            ("GET", "/actions/<aid>", 200, lambda c, aid: F.get_action(c.base, _id(aid))),
            ("DELETE", "/actions/<aid>", 204, lambda c, aid: F.delete_action(_id(aid))),
            # types (§8)
            ("GET", "/softwaremoduletypes", 200,
             lambda c: S.list_module_types(c.base, *_listing(c))),
            ("GET", "/softwaremoduletypes/<tid>", 200,
             lambda c, tid: S.get_module_type(c.base, _id(tid))),
            ("GET", "/distributionsettypes", 200, lambda c: S.list_set_types(c.base, *_listing(c))),
            ("GET", "/distributionsettypes/<tid>", 200,
             lambda c, tid: S.get_set_type(c.base, _id(tid))),
            ("GET", "/distributionsettypes/<tid>/mandatorymoduletypes", 200,
             lambda c, tid: S.set_type_module_types(c.base, _id(tid), True)),
            ("GET", "/distributionsettypes/<tid>/optionalmoduletypes", 200,
             lambda c, tid: S.set_type_module_types(c.base, _id(tid), False)),
            ("GET", "/distributionsettypes/<tid>/mandatorymoduletypes/<mid>", 200,
             lambda c, tid, mid: S.get_set_type_module_type(c.base, _id(tid), _id(mid), True)),
            ("GET", "/distributionsettypes/<tid>/optionalmoduletypes/<mid>", 200,
             lambda c, tid, mid: S.get_set_type_module_type(c.base, _id(tid), _id(mid), False)),
            # software modules and artifacts (§9)
            ("POST", "/softwaremodules", 201, lambda c: S.create_modules(c.base, body(c), c.user)),
            ("GET", "/softwaremodules", 200,
             lambda c: S.list_modules(c.base, *_listing(c), deleted_mode=_deleted_mode(c))),
            ("GET", "/softwaremodules/<sid>", 200, lambda c, sid: S.get_module(c.base, _id(sid))),
            ("PUT", "/softwaremodules/<sid>", 200,
             lambda c, sid: S.update_module(c.base, _id(sid), body(c), c.user)),
            ("DELETE", "/softwaremodules/<sid>", 204,
             lambda c, sid: S.delete_module(_id(sid), self.blobs)),
            ("GET", "/softwaremodules/<sid>/metadata", 200,
             lambda c, sid: S.list_module_metadata(_id(sid))),
            ("POST", "/softwaremodules/<sid>/metadata", 201,
             lambda c, sid: S.create_module_metadata(_id(sid), body(c), c.user)),
            ("GET", "/softwaremodules/<sid>/metadata/<key>", 200,
             lambda c, sid, key: S.get_module_metadata(_id(sid), key)),
            ("PUT", "/softwaremodules/<sid>/metadata/<key>", 204,
             lambda c, sid, key: S.put_module_metadata(_id(sid), key, body(c), c.user)),
            ("DELETE", "/softwaremodules/<sid>/metadata/<key>", 204,
             lambda c, sid, key: S.delete_module_metadata(_id(sid), key)),
            ("POST", "/softwaremodules/<sid>/artifacts", 201,
             lambda c, sid: self.upload(c, _id(sid))),
            ("GET", "/softwaremodules/<sid>/artifacts", 200,
             lambda c, sid: S.list_artifacts(c.base, _id(sid),
                                             c.query.get("representation") == "full")),
            ("GET", "/softwaremodules/<sid>/artifacts/<aid>", 200,
             lambda c, sid, aid: S.get_artifact(c.base, _id(sid), _id(aid))),
            ("DELETE", "/softwaremodules/<sid>/artifacts/<aid>", 204,
             lambda c, sid, aid: S.delete_artifact(_id(sid), _id(aid), self.blobs)),
            ("GET", "/softwaremodules/<sid>/artifacts/<aid>/download", 200,
             lambda c, sid, aid: self.download(c, _id(sid), _id(aid))),
            # distribution sets and assignments (§10)
            ("POST", "/distributionsets", 201, lambda c: S.create_sets(c.base, body(c), c.user)),
            ("GET", "/distributionsets", 200,
             lambda c: S.list_sets(c.base, *_listing(c), deleted_mode=_deleted_mode(c))),
            ("GET", "/distributionsets/<did>", 200, lambda c, did: S.get_set(c.base, _id(did))),
            ("PUT", "/distributionsets/<did>", 200,
             lambda c, did: S.update_set(c.base, _id(did), body(c), c.user)),
            ("DELETE", "/distributionsets/<did>", 204,
             lambda c, did: S.delete_set(_id(did), self.blobs)),
            ("GET", "/distributionsets/<did>/assignedSM", 200,
             lambda c, did: S.set_modules(c.base, _id(did), *_listing(c)[1:])),
            ("POST", "/distributionsets/<did>/assignedSM", 204,
             lambda c, did: S.add_set_modules(_id(did), body(c), self.blobs, c.user)),
            ("DELETE", "/distributionsets/<did>/assignedSM/<sid>", 204,
             lambda c, did, sid: S.remove_set_module(_id(did), _id(sid), self.blobs)),
            ("GET", "/distributionsets/<did>/assignedTargets", 200,
             lambda c, did: fleet.targets_assigned_set(c.base, _id(did), *_listing(c))),
            ("POST", "/distributionsets/<did>/assignedTargets", 200,
             lambda c, did: S.assign_targets(c.base, _id(did), body(c), _offline(c), c.user)),
            ("GET", "/distributionsets/<did>/installedTargets", 200,
             lambda c, did: fleet.targets_installed_set(c.base, _id(did), *_listing(c))),
            ("GET", "/distributionsets/<did>/metadata", 200,
             lambda c, did: S.list_set_metadata(_id(did))),
            ("POST", "/distributionsets/<did>/metadata", 201,
             lambda c, did: S.create_set_metadata(_id(did), body(c), c.user)),
            ("GET", "/distributionsets/<did>/metadata/<key>", 200,
             lambda c, did, key: S.get_set_metadata(_id(did), key)),
            ("PUT", "/distributionsets/<did>/metadata/<key>", 204,
             lambda c, did, key: S.put_set_metadata(_id(did), key, body(c), c.user)),
            ("DELETE", "/distributionsets/<did>/metadata/<key>", 204,
             lambda c, did, key: S.delete_set_metadata(_id(did), key)),
            # target filters and their auto-assignment (§12.1)
            ("GET", "/targetfilters", 200,
             lambda c: filters.list_filters(c.base, *_listing(c),
                                            full=c.query.get("representation") == "full")),
            ("POST", "/targetfilters", 201,
             lambda c: filters.create_filter(c.base, body(c), c.user)),
            ("GET", "/targetfilters/<fid>", 200,
             lambda c, fid: filters.get_filter(c.base, _id(fid))),
            ("PUT", "/targetfilters/<fid>", 200,
             lambda c, fid: filters.update_filter(c.base, _id(fid), body(c), c.user)),
            ("DELETE", "/targetfilters/<fid>", 204,
             lambda c, fid: filters.delete_filter(_id(fid))),
            ("GET", "/targetfilters/<fid>/autoAssignDS", 200,
             lambda c, fid: S.filter_auto_assign_set(c.base, _id(fid))),
            ("POST", "/targetfilters/<fid>/autoAssignDS", 200,
             lambda c, fid: filters.set_auto_assign(c.base, _id(fid), body(c), c.user)),
            ("DELETE", "/targetfilters/<fid>/autoAssignDS", 204,
             lambda c, fid: filters.remove_auto_assign(_id(fid), c.user)),
            ("GET", "/distributionsets/<did>/autoAssignTargetFilters", 200,
             lambda c, did: filters.filters_of_set(c.base, _id(did), *_listing(c))),
            # system configuration (§11)
            ("GET", "/system/configs", 200, lambda c: F.all_configs(c.base)),
            ("PUT", "/system/configs", 204, lambda c: F.put_configs(c.base, body(c), c.user)),
            ("GET", "/system/configs/<key>", 200, lambda c, key: F.get_config(c.base, key)),
            ("PUT", "/system/configs/<key>", 204,
             lambda c, key: F.put_config(c.base, key, body(c), c.user)),
            ("DELETE", "/system/configs/<key>", 204, lambda c, key: F.delete_config(key)),
            ("GET", "/userinfo", 200, lambda c: F.userinfo(c.user)),
        ) + self._tag_and_type_routes() + self._rollout_routes()
        for method, path, status, handler in routes:
            upload = (method, path) == ("POST", "/softwaremodules/<sid>/artifacts")
            app.route("/rest/v1" + path, method, self._guarded(handler, status, upload),
                      status=status)
        app.route("/", ["GET", "HEAD"], self.readiness)

    def _tag_and_type_routes(self):
        """Tags (§12.3), target types (§12.4) and the write half of module and set types
        (§8): rows of the same table."""
        body = self._body
        TAGS, SETS, TT, W = tags.TARGET_TAGS, tags.SET_TAGS, target_types, software_types

        def policy(c):
            return tags.not_found_policy(c.query.get("onNotFoundPolicy"))
        return (
            # target tags
            ("GET", "/targettags", 200, lambda c: TAGS.list(c.base, *_listing(c))),
            ("POST", "/targettags", 201, lambda c: TAGS.create(c.base, body(c), c.user)),
            ("GET", "/targettags/<tag>", 200, lambda c, tag: TAGS.get(c.base, _id(tag))),
            ("PUT", "/targettags/<tag>", 200,
             lambda c, tag: TAGS.update(c.base, _id(tag), body(c), c.user)),
            ("DELETE", "/targettags/<tag>", 204, lambda c, tag: TAGS.delete(_id(tag))),
            ("GET", "/targettags/<tag>/assigned", 200,
             lambda c, tag: tags.tagged_targets(c.base, _id(tag), *_listing(c))),
            ("POST", "/targettags/<tag>/assigned", 204,
             lambda c, tag: TAGS.assign(_id(tag), body(c), policy(c))),
            ("PUT", "/targettags/<tag>/assigned", 204,
             lambda c, tag: TAGS.assign(_id(tag), body(c), policy(c))),
            ("DELETE", "/targettags/<tag>/assigned", 204,
             lambda c, tag: TAGS.unassign(_id(tag), body(c), policy(c))),
            ("POST", "/targettags/<tag>/assigned/<cid>", 204,
             lambda c, tag, cid: TAGS.assign_one(_id(tag), cid)),
            ("DELETE", "/targettags/<tag>/assigned/<cid>", 204,
             lambda c, tag, cid: TAGS.unassign_one(_id(tag), cid)),
            ("GET", "/targets/<cid>/tags", 200, lambda c, cid: tags.tags_of_target(c.base, cid)),
            # distribution set tags
            ("GET", "/distributionsettags", 200, lambda c: SETS.list(c.base, *_listing(c))),
            ("POST", "/distributionsettags", 201,
             lambda c: SETS.create(c.base, body(c), c.user)),
            ("GET", "/distributionsettags/<tag>", 200,
             lambda c, tag: SETS.get(c.base, _id(tag))),
            ("PUT", "/distributionsettags/<tag>", 200,
             lambda c, tag: SETS.update(c.base, _id(tag), body(c), c.user)),
            ("DELETE", "/distributionsettags/<tag>", 204, lambda c, tag: SETS.delete(_id(tag))),
            ("GET", "/distributionsettags/<tag>/assigned", 200,
             lambda c, tag: tags.tagged_sets(c.base, _id(tag), *_listing(c))),
            ("POST", "/distributionsettags/<tag>/assigned", 204,
             lambda c, tag: SETS.assign(_id(tag), body(c))),
            ("DELETE", "/distributionsettags/<tag>/assigned", 204,
             lambda c, tag: SETS.unassign(_id(tag), body(c))),
            ("POST", "/distributionsettags/<tag>/assigned/<did>", 204,
             lambda c, tag, did: SETS.assign_one(_id(tag), _id(did))),
            ("DELETE", "/distributionsettags/<tag>/assigned/<did>", 204,
             lambda c, tag, did: SETS.unassign_one(_id(tag), _id(did))),
            # target types
            ("GET", "/targettypes", 200, lambda c: TT.list_types(c.base, *_listing(c))),
            ("POST", "/targettypes", 201, lambda c: TT.create_types(c.base, body(c), c.user)),
            ("GET", "/targettypes/<tid>", 200, lambda c, tid: TT.get_type(c.base, _id(tid))),
            ("PUT", "/targettypes/<tid>", 200,
             lambda c, tid: TT.update_type(c.base, _id(tid), body(c), c.user)),
            ("DELETE", "/targettypes/<tid>", 204, lambda c, tid: TT.delete_type(_id(tid))),
            ("GET", "/targettypes/<tid>/compatibledistributionsettypes", 200,
             lambda c, tid: TT.compatible_set_types(c.base, _id(tid))),
            ("POST", "/targettypes/<tid>/compatibledistributionsettypes", 204,
             lambda c, tid: TT.add_compatible_set_types(_id(tid), body(c), c.user)),
            ("DELETE", "/targettypes/<tid>/compatibledistributionsettypes/<dtid>", 204,
             lambda c, tid, dtid: TT.remove_compatible_set_type(_id(tid), _id(dtid), c.user)),
            ("POST", "/targets/<cid>/targettype", 204,
             lambda c, cid: TT.assign_to_target(cid, body(c), c.user)),
            ("DELETE", "/targets/<cid>/targettype", 204,
             lambda c, cid: TT.unassign_from_target(cid, c.user)),
            # writes on module and set types
            ("POST", "/softwaremoduletypes", 201,
             lambda c: W.create_module_types(c.base, body(c), c.user)),
            ("PUT", "/softwaremoduletypes/<tid>", 200,
             lambda c, tid: W.update_module_type(c.base, _id(tid), body(c), c.user)),
            ("DELETE", "/softwaremoduletypes/<tid>", 204,
             lambda c, tid: W.delete_module_type(_id(tid))),
            ("POST", "/distributionsettypes", 201,
             lambda c: W.create_set_types(c.base, body(c), c.user)),
            ("PUT", "/distributionsettypes/<tid>", 200,
             lambda c, tid: W.update_set_type(c.base, _id(tid), body(c), c.user)),
            ("DELETE", "/distributionsettypes/<tid>", 204,
             lambda c, tid: W.delete_set_type(_id(tid))),
            ("POST", "/distributionsettypes/<tid>/mandatorymoduletypes", 204,
             lambda c, tid: W.add_set_type_module_types(_id(tid), body(c), True, c.user)),
            ("POST", "/distributionsettypes/<tid>/optionalmoduletypes", 204,
             lambda c, tid: W.add_set_type_module_types(_id(tid), body(c), False, c.user)),
            ("DELETE", "/distributionsettypes/<tid>/mandatorymoduletypes/<mid>", 204,
             lambda c, tid, mid: W.remove_set_type_module_type(_id(tid), _id(mid), c.user)),
            ("DELETE", "/distributionsettypes/<tid>/optionalmoduletypes/<mid>", 204,
             lambda c, tid, mid: W.remove_set_type_module_type(_id(tid), _id(mid), c.user)),
        )

    def _rollout_routes(self):
        """Rollouts and their deploy groups (§12.2)."""
        body = self._body
        R = rollouts

        def full(c):
            return (c.query.get("representation") or "").lower() == "full"

        def remark(c):
            return c.query.get("remark") or None
        return (
            ("GET", "/rollouts", 200, lambda c: R.list_rollouts(c.base, *_listing(c),
                                                                full=full(c))),
            ("POST", "/rollouts", 201, lambda c: R.create_rollout(c.base, body(c), c.user)),
            ("GET", "/rollouts/<rid>", 200, lambda c, rid: R.get_rollout(c.base, _id(rid))),
            ("PUT", "/rollouts/<rid>", 200,
             lambda c, rid: R.update_rollout(c.base, _id(rid), body(c), c.user)),
            ("DELETE", "/rollouts/<rid>", 204, lambda c, rid: R.delete(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/start", 204, lambda c, rid: R.start(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/pause", 204, lambda c, rid: R.pause(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/resume", 204, lambda c, rid: R.resume(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/stop", 204, lambda c, rid: R.stop(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/triggerNextGroup", 204,
             lambda c, rid: R.trigger_next_group(_id(rid), c.user)),
            ("POST", "/rollouts/<rid>/approve", 204,
             lambda c, rid: R.approve(_id(rid), remark(c), c.user)),
            ("POST", "/rollouts/<rid>/deny", 204,
             lambda c, rid: R.deny(_id(rid), remark(c), c.user)),
            ("POST", "/rollouts/<rid>/retry", 201,
             lambda c, rid: R.retry(c.base, _id(rid), c.user)),
            ("GET", "/rollouts/<rid>/deploygroups", 200,
             lambda c, rid: R.list_groups(c.base, _id(rid), *_listing(c))),
            ("GET", "/rollouts/<rid>/deploygroups/<gid>", 200,
             lambda c, rid, gid: R.get_group(c.base, _id(rid), _id(gid))),
            ("GET", "/rollouts/<rid>/deploygroups/<gid>/targets", 200,
             lambda c, rid, gid: R.group_targets(c.base, _id(rid), _id(gid), *_listing(c))),
        )

    def readiness(self):
        """`GET /` without credentials, for readiness checks (`curl --head --fail`)."""
        return bottle.HTTPResponse(_json_bytes({"name": "ddi-lite", "status": "up"}), 200,
                                   {"Content-Type": JSON})

    def _operator(self, environ):
        """(Origin, user) of a request an operator's login authenticates; 401 otherwise."""
        origin = forwarded.Origin(environ, self.public_url, self.trusted_proxies)
        user = basic_user(environ, self.accounts, origin.client_ip)
        if user is None:
            raise HttpProblem(401, {"WWW-Authenticate": 'Basic realm="hawkBit"'})
        environ["REMOTE_USER"] = user  # for the access log
        return origin, user

    def _guarded(self, handler, status, upload=False):
        """`upload`: the route takes an artifact, the one body beyond max_body_bytes."""
        def route(**params):
            request = bottle.request
            environ = request.environ
            try:
                origin, user = self._operator(environ)
                accept = environ.get("HTTP_ACCEPT", "")
                media_type = HAL_JSON if (not accept or HAL_JSON in accept or "*/*" in accept) \
                    else JSON if JSON in accept else None
                if media_type is None:
                    raise HttpProblem(406)
                if connections.BEFORE_BODY in environ:
                    if upload:
                        return body_welcome(request, self.max_upload, self._upload_too_large())
                    return body_welcome(request, self.max_body, body_too_large(self.max_body))
                context = MgmtRequest(base=origin.base_url, user=user,
                                      query=_utf8_query(request),
                                      request=request)
                result = handler(context, **params)
            except HttpProblem as problem:
                return framework_response(problem.status, problem.headers, problem.empty)
            except coerce.BadParameter:
                return framework_response(400)
            except store_errors.StoreError as error:
                return error_response(error)
            if isinstance(result, bottle.HTTPResponse):
                return result
            if status == 204 or (result is None and status == 200):
                return bottle.HTTPResponse(b"", 204)
            if result is None:
                return bottle.HTTPResponse(b"", status)
            return bottle.HTTPResponse(_json_bytes(result), status, {"Content-Type": media_type})
        return route

    def operator_only(self, handler):
        """`handler()` behind the operators' login, for a resource that answers no JSON."""
        def route():
            environ = bottle.request.environ
            try:
                self._operator(environ)
            except HttpProblem as problem:
                return framework_response(problem.status, problem.headers)
            return handler()
        return route

    def _body(self, context, required=True):
        """A JSON body; hal+json and a missing Content-Type are accepted here too."""
        media = context.request.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media == HAL_JSON:
            context.request.environ["CONTENT_TYPE"] = JSON
        return read_body(context.request, self.max_body, required)

    def upload(self, context, module_id):
        """Stream a multipart upload into the blob store, then record the artifact (§9.5)."""
        software.check_upload(module_id)
        request = context.request
        length = request.content_length
        if length > self.max_upload:
            raise self._upload_too_large()
        if length < 0:
            raise UploadRejected("The upload needs a Content-Length.")
        try:
            upload = artifacts.MultipartUpload(request.environ["wsgi.input"],
                                               request.environ.get("CONTENT_TYPE", ""), length)
            stream = upload.open_file()
            expected = {kind: context.query.get(kind + "sum") or upload.fields.get(kind + "sum")
                        for kind in ("md5", "sha1", "sha256")}
            received = self.blobs.receive(stream, max_size=self.max_artifact,
                                          expected={k: v for k, v in expected.items() if v})
        except artifacts.MalformedUpload as malformed:
            raise UploadRejected(str(malformed))
        except artifacts.BlobTooLarge:
            raise self._upload_too_large()
        except artifacts.EmptyBlob:
            raise HttpProblem(400, empty=True)
        except artifacts.ChecksumMismatch as mismatch:
            raise CHECKSUM_ERRORS[mismatch.kind]("The %s checksum of the upload does not match."
                                                 % mismatch.kind)
        try:
            upload.finish()
            late = {kind: upload.fields.get(kind + "sum") for kind in ("md5", "sha1", "sha256")
                    if not expected[kind] and upload.fields.get(kind + "sum")}
            for kind, value in late.items():
                if getattr(received.blob, kind) != value.lower():
                    raise CHECKSUM_ERRORS[kind]("The %s checksum of the upload does not match."
                                                % kind)
        except artifacts.MalformedUpload as malformed:
            self.blobs.discard(received)
            raise UploadRejected(str(malformed))
        except BaseException:
            self.blobs.discard(received)
            raise
        filename = context.query.get("filename") or upload.fields.get("filename") or \
            upload.filename
        return software.add_uploaded_artifact(context.base, module_id, filename, received,
                                              self.blobs, context.user)

    def console_upload(self, request, module_id, user):
        """The same upload for the console (console/), which knows no HttpProblem."""
        try:
            context = MgmtRequest(base="", user=user, query=_utf8_query(request),
                                  request=request)
            return self.upload(context, module_id)
        except HttpProblem:
            raise UploadRejected("The upload is empty or not readable.")

    def _upload_too_large(self):
        return UploadTooLarge("The artifact is larger than %d bytes." % self.max_artifact)

    def download(self, context, module_id, artifact_id):
        artifact = software.artifact_for_download(module_id, artifact_id)
        environ = context.request.environ
        response = artifacts.file_response(
            self.blobs.source(artifact.sha1), artifact.size, artifact.sha1, artifact.created_at,
            artifact.filename, context.request.method,
            {"range": environ.get("HTTP_RANGE"), "if-range": environ.get("HTTP_IF_RANGE"),
             "if-match": environ.get("HTTP_IF_MATCH")})
        return file_response(response, artifact.size)


def _utf8_query(request):
    """Query parameters as UTF-8 (Bottle's plain `query` reads them as latin-1)."""
    try:
        query = request.query.decode()
        for value in query.values():
            value.encode("utf-8")
        return query
    except UnicodeError:
        raise HttpProblem(400)


def _id(text):
    value = int_parameter(text)
    if value is None:
        raise HttpProblem(400)
    return value


def _offline(context):
    return bool(coerce.query_bool(context.query.get("offline")))


def _deleted_mode(context):
    return (context.query.get("soft_deleted_mode") or "EXCLUDE_SOFT_DELETED").upper()


###############################################################################
# Application #################################################################
###############################################################################

def _normalised(app):
    """Request and response hygiene around the Bottle app.

    Paths: collapse duplicate slashes and drop a trailing one (SWUpdate with a trailing-slash
    URL asks for `//DEFAULT/...`, hawkbit-rs for `...//feedback`). Responses: an empty error
    says application/json, the type hawkBit's API description gives every error answer; an
    empty success carries none (for both, Bottle would say text/html).
    """
    def normalise(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if "//" in path or (len(path) > 1 and path.endswith("/")):
            path = re.sub("/{2,}", "/", path)
            if len(path) > 1:
                path = path.rstrip("/")
            environ["PATH_INFO"] = path

        def start(status, headers, exc_info=None):
            if ("Content-Length", "0") in headers:
                headers = [h for h in headers if h[0] != "Content-Type"]
                if int(status[:3]) >= 400:
                    headers.append(("Content-Type", JSON))
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return normalise


def _framework_error_handler(status):
    def handle(error):
        if status == 500:
            log.error("unexpected error: %s\n%s", error.exception, error.traceback)
        response = framework_response(status, None)
        bottle.response.content_type = JSON
        return response.body
    return handle


def _api_docs(app):
    """`GET /v3/api-docs`: the OpenAPI description of the routes `app` has when it is first
    asked for, so that routes installed after this one are described too. The console's
    pages are no API and are left out."""
    @functools.lru_cache(maxsize=None)
    def body():
        import openapi  # the largest module of all, read by few: not kept in every server
        rows = [(route.method, route.rule, route.config.get("status")) for route in app.routes
                if not route.rule.startswith(console.PREFIX)]
        return _json_bytes(openapi.document(rows))
    return lambda: bottle.HTTPResponse(body(), 200, {"Content-Type": JSON})


def operator_accounts(config):
    """The operator accounts of these settings, re-read when their settings file changes."""
    return Accounts(config.accounts, config["limits", "login_failures"],
                    config["limits", "login_pause"], config["limits", "password_checks"],
                    config.accounts_file)


def _route_rule(environ):
    """The rule of the route that answered (a bounded set, for the metrics), or `unmatched`."""
    return getattr(environ.get("bottle.route"), "rule", "unmatched")


def _controller_id(environ):
    """The controller id in the path of the device resource that answered, else None."""
    return (environ.get("route.url_args") or {}).get("controller_id")


def _health(up):
    """Spring Boot's actuator health, as tools written for hawkBit read it: UP, or DOWN (503)."""
    return bottle.HTTPResponse(_json_bytes({"status": "UP" if up else "DOWN"}),
                               200 if up else 503, {"Content-Type": JSON})


def _open_store(config):
    """Open the data directory's database with these settings (creating or migrating it)."""
    min_polling = storage.schedule.parse_duration(config["ddi", "min_polling_time"])
    storage.open_store(
        config["server", "data_dir"], ddi.now_ms(),
        limits=storage.actions.Limits(
            status_entries_per_action=config["limits", "status_entries_per_action"],
            messages_per_status=config["limits", "messages_per_status"],
            attributes_per_target=config["limits", "attributes_per_target"]),
        tenant_defaults={key: config["ddi", name] for name, key in TENANT_DEFAULTS.items()},
        min_polling_seconds=min_polling, cache_kib=config["storage", "cache_kib"],
        mmap_mib=config["storage", "mmap_mib"], database_url=config["database", "url"])


def _blob_store(config):
    return artifact_store.blob_store(config)


def _gateway(config):
    """Gateway mode's DDI routes (gateway/), answering with this module's HTTP plumbing."""
    from gateway import relay

    def device_authenticated(environ, controller_id, origin):
        return authenticated(environ, controller_id, ddi.device_target(controller_id),
                             tenant.settings(), origin, CERTIFICATE_HEADERS)
    return relay.Gateway(config, relay.Web(
        device_authenticated, read_body, negotiate, document_response, error_response,
        framework_response, body_welcome, body_too_large))


def create_app(config, accounts=None, observer=None, sweep=True):
    """The ddi-lite WSGI application for these settings (opens the data directory).
    `accounts`: the operator accounts (operator_accounts(config) when not given), for a caller
    that reloads them. `observer` (a service.metrics.Metrics, else one of its own) counts its
    requests for GET /metrics. `sweep`: bring the blob store in line after a crash (not in a
    worker process, whose master did it before any worker started)."""
    _open_store(config)
    blobs = _blob_store(config)
    if sweep:
        storage.blobs.sweep(blobs)
    observer = observer or metrics.Metrics()
    app = bottle.Bottle(catchall=True)
    for status in (400, 404, 405, 500):
        app.error_handler[status] = _framework_error_handler(status)
    relay = _gateway(config) if gateway.enabled(config) else None
    (relay or DeviceApi(config, blobs)).install(app)
    accounts = accounts or operator_accounts(config)
    management = ManagementApi(config, blobs, accounts)
    management.install(app)
    if relay is not None:
        relay.install_operator_routes(app, management.operator_only, observer)
    if config["server", "console"]:
        console.Console(config, accounts, blobs, error_status, management.console_upload,
                        relay.status if relay is not None else None).install(app)
    if config["server", "api_docs"]:
        app.route("/v3/api-docs", "GET", _api_docs(app))
    app.route("/actuator/health", "GET", lambda: _health(storage.db.answers()))
    app.route("/actuator/health/liveness", "GET", lambda: _health(True))
    app.route("/actuator/health/readiness", "GET", lambda: _health(storage.db.answers()))
    observer.watch_store(counts.store_counts)

    def metrics_page():
        return bottle.HTTPResponse(observer.exposition(), 200,
                                   {"Content-Type": metrics.CONTENT_TYPE})
    app.route("/metrics", "GET", metrics_page if config["server", "metrics_open"]
              else management.operator_only(metrics_page))
    wsgi = _normalised(app)
    if config["server", "access_log"]:
        wsgi = access_log.logged(wsgi, config["server", "trusted_proxies"], _controller_id)
    return observer.observe(wsgi, _route_rule)


###############################################################################
# Command line ################################################################
###############################################################################

def serve(config):
    """Serve until SIGTERM or SIGINT, then stop gracefully: no new connections, requests in
    flight get [server] stop_timeout seconds (a second signal ends them at once), every poll
    time answered is committed, and the data directory is released. systemd hears how it
    goes (service/systemd.py). With [server] workers above 1, this process binds the port,
    prepares the data directory and forks the workers that serve (service/workers.py)."""
    # Held until the server stops: a second server on the same directory would sweep away
    # the first one's uploads in flight and interleave its writes. Workers inherit it.
    data_lock = storage.lock_data_dir(config["server", "data_dir"])
    try:
        if config["server", "workers"] == 1:
            _serve(config)
        else:
            _serve_with_workers(config)
    finally:
        data_lock.close()
    log.info("stopped")


def _serve(config, sockets=None, ready=None, share=None):
    """One process serving: on its own (workers = 1) or as a worker, which serves `sockets`
    bound by its master with the others (taking its `share` of the connections), leaves the
    blob sweep to it and tells it through `ready()` that it serves."""
    accounts = operator_accounts(config)
    observer = metrics.Metrics()
    app = create_app(config, accounts, observer, sweep=sockets is None)
    # Read in a thread of its own: the handler runs in the event loop's thread, which must not
    # wait for the file, nor for a login that is re-reading it.
    signal.signal(signal.SIGHUP, lambda signum, frame: threading.Thread(
        target=accounts.reload, args=("SIGHUP",), name="sighup", daemon=True).start())
    ddi.poll_log.start_writer()
    storage.db.writer.start()
    storage.autoassign.scheduler.start(
        config["scheduler", "auto_assign_interval"],
        config["scheduler", "auto_assign_full_pass_hours"],
        once=storage.once.OnceLock(config["server", "data_dir"], "auto-assign"))
    storage.rollout_engine.scheduler.start(
        config["scheduler", "rollout_interval"],
        once=storage.once.OnceLock(config["server", "data_dir"], "rollouts"))
    host, port = config["server", "host"], config["server", "port"]
    if accounts.default_password_in_use() and sockets is None:
        _warn_default_password()
    server = connections.Server(
        app, host, port, threads=config["server", "threads"],
        max_connections=config["server", "max_connections"],
        header_timeout=config["server", "header_timeout"],
        idle_timeout=config["server", "idle_timeout"],
        max_header_bytes=config["limits", "max_header_bytes"],
        # The artifact upload's limit, with room for its multipart framing.
        max_body_bytes=config["limits", "max_artifact_bytes"] + (1 << 20),
        sockets=sockets, share=share)
    observer.watch_server(server.figures)
    # Only now that the port is bound: a failure to bind is the last line instead.
    if sockets is None:
        log.info("listening on http://%s:%d (config: %s, data: %s)", host, port,
                 config.source, config["server", "data_dir"])
    stop_timeout = config["server", "stop_timeout"]

    def stop(signum, frame):
        if server.stop_by is None:
            # A raised stop_timeout may outlast the unit's TimeoutStopSec: ask for the time.
            needed_us = (stop_timeout + 10) * 10 ** 6
            systemd.notify("STOPPING=1", "EXTEND_TIMEOUT_USEC=%d" % needed_us,
                           "STATUS=Stopping: requests in flight get %d s" % stop_timeout)
        else:
            systemd.notify("STATUS=Stopping now: a second signal ends the requests in flight")
        server.stop(stop_timeout)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    if ready is None:
        systemd.notify("READY=1", "STATUS=Serving on http://%s:%d" % (host, port))
    else:
        ready()
    try:
        server.run()
    finally:
        storage.close_store()  # the poll times still in memory are written first


def _warn_default_password():
    log.warning("*** The Management API still accepts admin/admin. Change it: "
                "ddi-lite passwd admin ***")


def _serve_with_workers(config):
    """The master of [server] workers processes: bind the port once, migrate the database
    and sweep the blob store before any worker runs (so no upload can be in flight), close
    the database (a connection must not cross a fork), then fork and watch the workers."""
    host, port = config["server", "host"], config["server", "port"]
    count = config["server", "workers"]
    # First, so that a port in use stops the start before anything else happens; devices
    # that connect meanwhile wait in the backlog for the first worker.
    sockets = connections.bind(host, port)
    try:
        _open_store(config)
        blobs = _blob_store(config)
        storage.blobs.sweep(blobs)
        storage.close_store()
        console.sessions.forget_all(console.shared_sessions(config))
        if operator_accounts(config).default_password_in_use():
            _warn_default_password()
        log.info("listening on http://%s:%d with %d workers (config: %s, data: %s)", host,
                 port, count, config.source, config["server", "data_dir"])
        workers.Master(
            count, lambda ready, share: _serve(config, sockets, ready, share),
            config["server", "stop_timeout"],
            "Serving on http://%s:%d with %d workers" % (host, port, count), sockets,
            # A worker that died mid-upload leaves its temp file; no other one's is touched.
            worker_gone=blobs.remove_stale_temp_files).run()
    finally:
        for listener in sockets:
            listener.close()


class _VersionAction(argparse.Action):
    """`--version`, which looks the version up only when asked (importlib.metadata is large)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        import openapi
        print("ddi-lite " + openapi.version())
        parser.exit()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ddi-lite", description=__doc__.splitlines()[0],
                                     parents=[cli.operator_options()])
    parser.add_argument("--version", action=_VersionAction)
    subcommands = parser.add_subparsers(dest="command")
    serve_parser = subcommands.add_parser("serve", help="run the server (the default command)")
    for command_parser in (parser, serve_parser):
        command_parser.add_argument("--config", metavar="FILE", help=configuration.CONFIG_HELP)
        configuration.add_setting_flags(command_parser, SETTINGS)
    service_cli.add_commands(subcommands, SETTINGS)
    cli.add_commands(subcommands)
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is not None:
        return args.handler(args)
    if any(hasattr(args, name) for name in cli.OPERATOR_OPTIONS):
        parser.error("--url, --user, --password and --json belong to the operator commands")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = {name: value for name, value in vars(args).items()
                 if "." in name and value is not None}
    try:
        config = load_config(args.config, overrides=overrides)
        serve(config)
    except (ConfigError, OSError) as error:
        print("ddi-lite: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
