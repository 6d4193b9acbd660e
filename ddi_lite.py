"""ddi-lite: a lightweight update server speaking Eclipse hawkBit's DDI API v1.

This module is the web face: the configuration schema, the app factory, the route table,
authentication, content negotiation, the mapping of errors to hawkBit's error bodies, and the
command line. Rules live in `storage/`, bytes in `artifacts/`. Sections:

    Configuration      one schema for config.ini, --flags and DDI_LITE_* variables
    HTTP plumbing      bodies, media types, errors, links
    Device API (DDI)   /{tenant}/controller/v1/{controllerId}/...
    Application        create_app(config) -> WSGI app
    Fleet simulator    `ddi-lite simulate`: N virtual devices against any DDI server
    Command line       serve, passwd, and the operator commands (a Management API client)
"""

import argparse
import array
import asyncio
import base64
import collections
import configparser
import datetime
import functools
import getpass
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
import time
import urllib.parse

import bottle
import cbor2
import multipart

import artifacts
import storage
from storage import catalog, coerce, ddi, fleet, query, software, tenant
from storage import errors as store_errors
from storage import transitions
from storage.tenant import InvalidConfigKey, InvalidConfigValue

log = logging.getLogger("ddi-lite")

DEFAULT_TENANT = "DEFAULT"


###############################################################################
# Configuration ###############################################################
###############################################################################

Setting = collections.namedtuple("Setting", "section key kind default help")

SETTINGS = (
    Setting("server", "host", "str", "0.0.0.0", "Address to listen on."),
    Setting("server", "port", "int", 8080, "TCP port to listen on (hawkBit's port)."),
    Setting("server", "data_dir", "path", "~/.local/share/ddi-lite",
            "Where the database file and artifact blobs live (created on first start)."),
    Setting("server", "threads", "int", 8, "Worker threads answering requests."),
    Setting("server", "public_url", "str", "",
            "Base URL used in links (e.g. https://updates.example.org); empty: from the request."),
    Setting("server", "trusted_proxies", "networks", "127.0.0.1, ::1",
            "Peers whose X-Forwarded-* and client-certificate headers are believed."),
    Setting("ddi", "polling_time", "duration", "00:05:00",
            "How long devices sleep between polls, HH:MM:SS (tenant key pollingTime)."),
    Setting("ddi", "min_polling_time", "duration", "00:00:30",
            "Shortest polling time a tenant may configure (hawkBit: 00:00:30)."),
    Setting("ddi", "maintenance_window_poll_count", "int", 3,
            "Polls a device should make before a maintenance window opens."),
    Setting("ddi", "target_token_auth", "bool", True,
            "Accept 'Authorization: TargetToken <token>' (per-target security token)."),
    Setting("ddi", "gateway_token_auth", "bool", False,
            "Accept 'Authorization: GatewayToken <key>' (any controller; new ones register)."),
    Setting("ddi", "gateway_token", "str", "", "The gateway token; empty disables it."),
    Setting("ddi", "header_auth", "bool", False,
            "Accept a device identity from a TLS-terminating proxy in trusted_proxies."),
    Setting("ddi", "header_authority", "str", "",
            "Issuer hashes or authority values the proxy may present, comma separated."),
    Setting("limits", "status_entries_per_action", "int", 1000,
            "Most history entries an action may collect (0: no limit)."),
    Setting("limits", "messages_per_status", "int", 50,
            "Most messages one feedback may carry (0: no limit)."),
    Setting("limits", "attributes_per_target", "int", 100,
            "Most configData attributes a target may have (0: no limit)."),
    Setting("limits", "max_body_bytes", "int", 1048576,
            "Largest JSON or CBOR request body accepted."),
    Setting("limits", "max_artifact_bytes", "int", 1073741824,
            "Largest artifact an upload may store (hawkBit: 1 GiB)."),
)

ACCOUNTS_SECTION = "accounts"
# hawkBit's admin/admin, for drop-in compatibility; the server warns while it is unchanged.
DEFAULT_ACCOUNTS = {"admin": "pbkdf2_sha256$260000$PtJOMpsUikUNsHELyu5A0A$"
                             "XKT9sl6BpbsS9YOhL+pq/EwpjxRi68V+NjUUX8NmEQQ"}

# Which tenant configuration key a [ddi] setting is the server-wide default of.
TENANT_DEFAULTS = {
    "polling_time": "pollingTime",
    "maintenance_window_poll_count": "maintenanceWindowPollCount",
    "target_token_auth": "authentication.targettoken.enabled",
    "gateway_token_auth": "authentication.gatewaytoken.enabled",
    "gateway_token": "authentication.gatewaytoken.key",
    "header_auth": "authentication.header.enabled",
    "header_authority": "authentication.header.authority",
}


class ConfigError(ValueError):
    pass


def _convert(setting, value):
    if not isinstance(value, str):
        return value
    text = value.strip()
    kind = setting.kind
    try:
        if kind == "int":
            return int(text)
        if kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError("not a boolean")
        if kind == "duration":
            storage.schedule.parse_duration(text)
            return text
        if kind == "networks":
            return tuple(ipaddress.ip_network(part.strip(), strict=False)
                         for part in text.split(",") if part.strip())
        if kind == "path":
            return os.path.abspath(os.path.expanduser(text))
        return text
    except ValueError as error:
        raise ConfigError("[%s] %s = %r: %s" % (setting.section, setting.key, value, error))


def flag_name(setting):
    prefix = "" if setting.section == "server" else setting.section + "-"
    return "--" + prefix + setting.key.replace("_", "-")


def env_name(setting):
    return "DDI_LITE_%s_%s" % (setting.section.upper(), setting.key.upper())


class Config:
    """Effective settings: built-in defaults < config file < environment < command line.

    `accounts` maps operator user names to password hashes ([accounts] in the file).
    """

    def __init__(self, values, source, accounts):
        self._values = values
        self.source = source
        self.accounts = accounts

    def __getitem__(self, section_key):
        return self._values[section_key]


def load_config(path=None, environ=None, overrides=None):
    """Read settings; `overrides` maps "section.key" to a value (flags, tests)."""
    environ = os.environ if environ is None else environ
    values = {(s.section, s.key): _convert(s, s.default) for s in SETTINGS}
    accounts = dict(DEFAULT_ACCOUNTS)
    source = "built-in defaults"
    if path is None and os.path.exists("config.ini"):
        path = "config.ini"
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # user names in [accounts] keep their case
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as error:
            raise ConfigError("cannot read %s: %s" % (path, error))
        known = {(s.section, s.key): s for s in SETTINGS}
        if parser.has_section(ACCOUNTS_SECTION):
            accounts = {user: value.strip() for user, value in parser.items(ACCOUNTS_SECTION)}
        for section in parser.sections():
            if section == ACCOUNTS_SECTION:
                continue
            for key, value in parser.items(section):
                if (section, key) not in known:
                    raise ConfigError("%s: unknown setting [%s] %s" % (path, section, key))
                values[(section, key)] = _convert(known[(section, key)], value)
        source = os.path.abspath(path)
    for setting in SETTINGS:
        if env_name(setting) in environ:
            values[(setting.section, setting.key)] = _convert(setting, environ[env_name(setting)])
    for name, value in (overrides or {}).items():
        section, _, key = name.partition(".")
        setting = next((s for s in SETTINGS if (s.section, s.key) == (section, key)), None)
        if setting is None:
            raise ConfigError("unknown setting %s" % name)
        values[(section, key)] = _convert(setting, value)
    return Config(values, source, accounts)


###############################################################################
# HTTP plumbing ###############################################################
###############################################################################

HAL_JSON = "application/hal+json"
JSON = "application/json"
CBOR = "application/cbor"
JSON_MEDIA_TYPES = (HAL_JSON, JSON, CBOR)

HTTP_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                405: "Method Not Allowed", 406: "Not Acceptable", 413: "Payload Too Large",
                415: "Unsupported Media Type", 500: "Internal Server Error"}

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


def error_response(error):
    """hawkBit's error body for a store error; an empty body where hawkBit sends none."""
    status = next(ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in ERROR_STATUS)
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


def encode(document, media_type):
    if media_type == CBOR:
        return cbor2.dumps(document)
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


def read_body(request, max_bytes, required=True):
    """The request body as a Python value. JSON or CBOR; a body without a Content-Type is read
    as JSON, because some device clients send none."""
    media = request.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if media not in ("", JSON, CBOR):
        raise HttpProblem(415)
    length = request.content_length
    if length > max_bytes:
        raise store_errors.BodyNotReadable("The request body is larger than %d bytes." % max_bytes)
    raw = request.body.read(max_bytes + 1) if length != 0 else b""
    if len(raw) > max_bytes:
        raise store_errors.BodyNotReadable("The request body is larger than %d bytes." % max_bytes)
    if not raw:
        if required:
            raise store_errors.BodyNotReadable()
        return None
    try:
        if media == CBOR:
            value = cbor2.loads(raw)
        else:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        _check_json_value(value)
    except (ValueError, UnicodeError, RecursionError, cbor2.CBORDecodeError):
        raise store_errors.BodyNotReadable()
    return value


def _check_json_value(value):
    """Only what JSON can say, as the store can keep it: text keys, valid UTF-8 text (no lone
    surrogates from `\\ud800` escapes), finite numbers. CBOR may carry more; it is refused."""
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
    elif value is not None and not isinstance(value, (bool, int)):
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


@functools.lru_cache(maxsize=1024)
def _trusted(peer, trusted):
    """Whether the peer address lies in one of the `trusted` networks."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class Origin:
    """Where a request came from and how links back to this server must look."""

    def __init__(self, environ, public_url, trusted_proxies):
        peer = environ.get("REMOTE_ADDR", "")
        self.via_trusted_proxy = bool(peer) and _trusted(peer, trusted_proxies)
        forwarded_for = environ.get("HTTP_X_FORWARDED_FOR") if self.via_trusted_proxy else None
        self.client_ip = forwarded_for.split(",")[0].strip() if forwarded_for else peer
        if public_url:
            self.base_url = public_url.rstrip("/")
        else:
            self.base_url = self._base_from(environ)

    def _base_from(self, environ):
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or "%s:%s" % (environ.get("SERVER_NAME", "localhost"),
                                                      environ.get("SERVER_PORT", "80"))
        prefix = ""
        if self.via_trusted_proxy:
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
            host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
            port = environ.get("HTTP_X_FORWARDED_PORT", "").split(",")[0].strip()
            if port:
                host = "%s:%s" % (_host_without_port(host), port)
            prefix = environ.get("HTTP_X_FORWARDED_PREFIX", "").rstrip("/")
        name = _host_without_port(host)
        port = host[len(name) + 1:] if host.startswith(name + ":") else ""
        if (scheme, port) in (("http", "80"), ("https", "443")):
            host = name
        return "%s://%s%s" % (scheme, host, prefix)

    @property
    def address(self):
        """The client address as hawkBit stores it: a URI."""
        ip = self.client_ip or "***"
        return "http://[%s]" % ip if ":" in ip else "http://%s" % ip


def _host_without_port(host):
    if host.startswith("["):
        return host[:host.index("]") + 1] if "]" in host else host
    return host.split(":")[0]


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
        request = bottle.request
        if tenant_name.upper() != DEFAULT_TENANT:
            raise HttpProblem(401, empty=True)
        environ = request.environ
        origin = Origin(environ, self.public_url, self.trusted_proxies)
        action = None
        if registers:
            target, action = ddi.find_target_and_current_action(controller_id)
        else:
            target = ddi.find_target(controller_id)
        if not authenticated(environ, controller_id, target, tenant.settings(), origin,
                             CERTIFICATE_HEADERS):
            raise HttpProblem(401, empty=True)
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
                                   device.now)

    def deployment_feedback(self, device, action_id):
        return self._feedback(device, action_id, transitions.DEPLOYMENT)

    def cancel_action(self, device, action_id):
        return ddi.cancel_action(device.target, int_parameter(action_id), device.now)

    def cancel_feedback(self, device, action_id):
        return self._feedback(device, action_id, transitions.CANCEL)

    def _feedback(self, device, action_id, channel):
        action_id = int_parameter(action_id)
        report = parse_feedback(read_body(bottle.request, self.max_body))
        ddi.feedback(device.target, action_id, channel, report, device.now)

    def installed_base(self, device, action_id):
        action_id = int_parameter(action_id)
        history = int_parameter(bottle.request.query.get("actionHistory"), 0)
        return ddi.installed_base(device.target, action_id, history, device.artifact_url,
                                  device.now)

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
        return ddi.confirmation_base(device.target, device.device_url, device.now)

    def confirmation_base_action(self, device, action_id):
        if action_id in ("activateAutoConfirm", "deactivateAutoConfirm"):
            raise HttpProblem(405, {"Allow": "POST"})
        action_id = int_parameter(action_id)
        int_parameter(bottle.request.query.get("c"))
        history = int_parameter(bottle.request.query.get("actionHistory"), 0)
        return ddi.confirmation_base_action(device.target, action_id, history,
                                            device.artifact_url, device.now)

    def confirmation_feedback(self, device, action_id):
        action_id = int_parameter(action_id)
        body = read_body(bottle.request, self.max_body)
        if not isinstance(body, dict) or body.get("confirmation") not in transitions.CONFIRMATIONS:
            raise store_errors.BodyNotReadable()
        report = ddi.Feedback(execution=body["confirmation"], finished=None,
                              details=_details(body.get("details")), code=_code(body.get("code")),
                              timestamp=None)
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
        return ddi.artifact_list(device.target, int_parameter(module_id), device.artifact_url)

    def download(self, device, media_type, module_id, filename):
        request = bottle.request
        module_id = int_parameter(module_id)
        md5sum = filename.endswith(".MD5SUM")
        name = filename[:-len(".MD5SUM")] if md5sum else filename
        artifact, action = ddi.artifact_for_download(device.target, module_id, name)
        environ = request.environ
        whole_file_get = request.method == "GET" and "HTTP_RANGE" not in environ
        if md5sum:
            if not accepts_text(environ.get("HTTP_ACCEPT")):
                raise HttpProblem(406)
            response = artifacts.md5sum_response(artifact.md5, name)
        else:
            response = artifacts.file_response(
                self.blobs.path(artifact.sha1), artifact.size, artifact.sha1,
                artifact.created_at, artifact.filename, request.method,
                {"range": environ.get("HTTP_RANGE"), "if-range": environ.get("HTTP_IF_RANGE"),
                 "if-match": environ.get("HTTP_IF_MATCH")})
        # Range requests are never logged: range-streaming clients would fill the history
        # (hawkBit #1249). HEAD is not a download either (SWUpdate sends one before each GET).
        if whole_file_get and response.status == 200:
            ddi.note_download(action, request.path, device.now)
        return file_response(response, artifact.size)


def _quote_segment(text):
    return urllib.parse.quote(text, safe="")


def _details(value):
    if value is None:
        return []
    if not isinstance(value, list):
        raise store_errors.BodyNotReadable()
    details = []
    for item in value:
        if isinstance(item, str):
            details.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            details.append(str(item))
        else:
            raise store_errors.BodyNotReadable()
    return details


def _code(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise store_errors.BodyNotReadable()
    try:
        code = int(value)
    except ValueError:
        raise store_errors.BodyNotReadable()
    if not -2 ** 31 <= code < 2 ** 31:
        raise store_errors.BodyNotReadable()
    return code


def parse_feedback(body):
    """A deployment or cancel feedback body (§4.4.1), tolerant of what real clients add.

    Legacy `id` and `time`, any `progress` value and missing `details`/`code` are accepted;
    a missing `result.finished` or an unknown enum value is a 400, as in hawkBit.
    """
    status = body.get("status") if isinstance(body, dict) else None
    result = status.get("result") if isinstance(status, dict) else None
    if not isinstance(result, dict):
        raise store_errors.BodyNotReadable()
    execution = status.get("execution")
    finished = result.get("finished")
    if not isinstance(execution, str) or not isinstance(finished, str):
        raise store_errors.BodyNotReadable()
    execution, finished = execution.lower(), finished.lower()
    if execution not in transitions.EXECUTIONS or finished not in transitions.FINISHED_VALUES:
        raise store_errors.BodyNotReadable()
    timestamp = body.get("timestamp")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)
                                  or not 0 <= timestamp < 2 ** 63):
        raise store_errors.BodyNotReadable()
    return ddi.Feedback(execution=execution, finished=finished,
                        details=_details(status.get("details")), code=_code(status.get("code")),
                        timestamp=timestamp)


###############################################################################
# Management API (/rest/v1) ###################################################
###############################################################################

PASSWORD_ITERATIONS = 260000


def hash_password(password, salt=None, iterations=PASSWORD_ITERATIONS):
    """A salted, slow PBKDF2-SHA256 hash in the form pbkdf2_sha256$<iterations>$<salt>$<hash>."""
    salt = salt or base64.b64encode(os.urandom(16)).decode("ascii").rstrip("=")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("ascii"),
                                 iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (
        iterations, salt, base64.b64encode(digest).decode("ascii").rstrip("="))


def _password_matches(password, stored):
    try:
        scheme, iterations, salt, _ = stored.split("$")
        iterations = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    return hmac.compare_digest(hash_password(password, salt, iterations), stored)


class Accounts:
    """Operator accounts from config.ini's [accounts] section: user = password hash.

    Basic authentication sends the password with every request, and the hash is slow on
    purpose: a verified (user, password, hash) triple is remembered as a keyed digest, so only
    the first request of a client pays for it.
    """

    _key = os.urandom(32)
    _verified = collections.OrderedDict()
    _verified_lock = threading.Lock()
    _dummy = "pbkdf2_sha256$%d$ddi-lite$" % PASSWORD_ITERATIONS

    def __init__(self, hashes):
        self.hashes = dict(hashes)

    def verify(self, user, password):
        stored = self.hashes.get(user)
        token = hmac.new(self._key, ("%s\0%s\0%s" % (user, password, stored)).encode("utf-8"),
                         hashlib.sha256).digest()
        if stored is not None and token in self._verified:
            return True
        # An unknown user costs as much as a wrong password: no hint that the name exists.
        if _password_matches(password, stored if stored is not None else self._dummy) \
                and stored is not None:
            with self._verified_lock:
                self._verified[token] = True
                while len(self._verified) > 256:
                    self._verified.popitem(last=False)
            return True
        return False

    def default_password_in_use(self):
        stored = self.hashes.get("admin")
        return stored is not None and _password_matches("admin", stored)


def basic_user(environ, accounts):
    """The authenticated operator, or None. `TENANT\\user` logins name the DEFAULT tenant."""
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
    return user if accounts.verify(user, password) else None


class MultipartUpload:
    """One multipart/form-data request, read as it arrives.

    Small form fields are collected; the part named `file` is handed out as a stream
    (`read(n)`), so an artifact goes to the blob store without being held in memory.
    """

    chunk_size = 256 * 1024
    max_field_bytes = 64 * 1024

    def __init__(self, wsgi_input, content_type, content_length):
        media, options = multipart.parse_options_header(content_type)
        if media != "multipart/form-data" or not options.get("boundary"):
            raise UploadRejected("The request is not multipart/form-data.")
        self._input = wsgi_input
        self._remaining = content_length
        self._parser = multipart.PushMultipartParser(
            options["boundary"], content_length, max_header_count=16)
        self._events = self._parse()
        self._pending = b""
        self._in_file = False
        self.fields = {}
        self.filename = None

    def _parse(self):
        try:
            while True:
                chunk = self._input.read(min(self.chunk_size, self._remaining)) \
                    if self._remaining > 0 else b""
                self._remaining -= len(chunk)
                for event in self._parser.parse(chunk):
                    yield event
                if not chunk:
                    return
        except multipart.MultipartError as error:
            raise UploadRejected("Broken multipart request: %s" % error)

    def open_file(self):
        """Skip to the `file` part, keeping the fields before it."""
        if not self._collect_fields(until_file=True):
            raise UploadRejected("The request has no part named 'file'.")
        self._in_file = True
        return self

    def read(self, size=-1):
        while self._in_file and (size < 0 or len(self._pending) < size):
            event = next(self._events, None)
            # multipart 1.x (the last for Python 3.9) yields bytearray chunks, 2.x bytes.
            if isinstance(event, (bytes, bytearray)):
                self._pending += event
            else:
                self._in_file = False
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def finish(self):
        """Read what follows the file part (more fields may come after it)."""
        self._in_file = False
        self._collect_fields(until_file=False)

    def _collect_fields(self, until_file):
        """Keep small form fields; True when stopped at the start of the `file` part."""
        field = None
        for event in self._events:
            if isinstance(event, multipart.MultipartSegment):
                if until_file and event.name == "file":
                    self.filename = event.filename or ""
                    return True
                field = (event.name, bytearray())
            elif event is None:
                if field is not None:
                    self.fields[field[0]] = field[1].decode("utf-8", "replace").strip()
                field = None
            elif field is not None:
                field[1].extend(event)
                if len(field[1]) > self.max_field_bytes:
                    raise UploadRejected("The form field '%s' is too large." % field[0])
        return False


CHECKSUM_ERRORS = {"md5": store_errors.Md5Mismatch, "sha1": store_errors.Sha1Mismatch,
                   "sha256": store_errors.Sha256Mismatch}


MgmtRequest = collections.namedtuple("MgmtRequest", "base user query request")


def _listing(ctx):
    """The paging, sorting and filtering parameters of a collection request."""
    query = ctx.query
    return (query.get("q") or None, query.get("sort") or None,
            coerce.query_int(query.get("offset"), None), coerce.query_int(query.get("limit"), None))


class ManagementApi:
    """The Tier 1 Management API. Each handler reads its parameters, calls one rule in
    `storage.fleet` or `storage.software`, and answers with hawkBit's status code."""

    def __init__(self, config, blobs, accounts):
        self.public_url = config["server", "public_url"]
        self.trusted_proxies = config["server", "trusted_proxies"]
        self.max_body = config["limits", "max_body_bytes"]
        self.max_artifact = config["limits", "max_artifact_bytes"]
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
             lambda c, sid: self._forget_blobs(S.delete_module(_id(sid)))),
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
             lambda c, sid, aid: self._forget_blobs([S.delete_artifact(_id(sid), _id(aid))])),
            ("GET", "/softwaremodules/<sid>/artifacts/<aid>/download", 200,
             lambda c, sid, aid: self.download(c, _id(sid), _id(aid))),
            # distribution sets and assignments (§10)
            ("POST", "/distributionsets", 201, lambda c: S.create_sets(c.base, body(c), c.user)),
            ("GET", "/distributionsets", 200,
             lambda c: S.list_sets(c.base, *_listing(c), deleted_mode=_deleted_mode(c))),
            ("GET", "/distributionsets/<did>", 200, lambda c, did: S.get_set(c.base, _id(did))),
            ("PUT", "/distributionsets/<did>", 200,
             lambda c, did: S.update_set(c.base, _id(did), body(c), c.user)),
            ("DELETE", "/distributionsets/<did>", 204, lambda c, did: S.delete_set(_id(did))),
            ("GET", "/distributionsets/<did>/assignedSM", 200,
             lambda c, did: S.set_modules(c.base, _id(did), *_listing(c)[1:])),
            ("POST", "/distributionsets/<did>/assignedSM", 204,
             lambda c, did: S.add_set_modules(_id(did), body(c), c.user)),
            ("DELETE", "/distributionsets/<did>/assignedSM/<sid>", 204,
             lambda c, did, sid: S.remove_set_module(_id(did), _id(sid))),
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
            # system configuration (§11)
            ("GET", "/system/configs", 200, lambda c: F.all_configs(c.base)),
            ("PUT", "/system/configs", 204, lambda c: F.put_configs(c.base, body(c), c.user)),
            ("GET", "/system/configs/<key>", 200, lambda c, key: F.get_config(c.base, key)),
            ("PUT", "/system/configs/<key>", 204,
             lambda c, key: F.put_config(c.base, key, body(c), c.user)),
            ("DELETE", "/system/configs/<key>", 204, lambda c, key: F.delete_config(key)),
            ("GET", "/userinfo", 200, lambda c: F.userinfo(c.user)),
        )
        for method, path, status, handler in routes:
            app.route("/rest/v1" + path, method, self._guarded(handler, status))
        app.route("/", ["GET", "HEAD"], self.readiness)

    def readiness(self):
        """`GET /` without credentials, for readiness checks (`curl --head --fail`)."""
        return bottle.HTTPResponse(_json_bytes({"name": "ddi-lite", "status": "up"}), 200,
                                   {"Content-Type": JSON})

    def _guarded(self, handler, status):
        def route(**params):
            request = bottle.request
            environ = request.environ
            try:
                user = basic_user(environ, self.accounts)
                if user is None:
                    raise HttpProblem(401, {"WWW-Authenticate": 'Basic realm="hawkBit"'})
                accept = environ.get("HTTP_ACCEPT", "")
                media_type = HAL_JSON if (not accept or HAL_JSON in accept or "*/*" in accept) \
                    else JSON if JSON in accept else None
                if media_type is None:
                    raise HttpProblem(406)
                origin = Origin(environ, self.public_url, self.trusted_proxies)
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

    def _body(self, context, required=True):
        """A JSON body; hal+json and a missing Content-Type are accepted here too."""
        media = context.request.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media == HAL_JSON:
            context.request.environ["CONTENT_TYPE"] = JSON
        return read_body(context.request, self.max_body, required)

    def _forget_blobs(self, sha1s):
        for sha1 in sha1s:
            if sha1:
                self.blobs.delete(sha1)

    def upload(self, context, module_id):
        """Stream a multipart upload into the blob store, then record the artifact (§9.5)."""
        software.check_upload(module_id)
        request = context.request
        length = request.content_length
        if length > self.max_artifact + MultipartUpload.max_field_bytes:
            raise UploadTooLarge("The artifact is larger than %d bytes." % self.max_artifact)
        if length < 0:
            raise UploadRejected("The upload needs a Content-Length.")
        upload = MultipartUpload(request.environ["wsgi.input"],
                                 request.environ.get("CONTENT_TYPE", ""), length)
        stream = upload.open_file()
        expected = {kind: context.query.get(kind + "sum") or upload.fields.get(kind + "sum")
                    for kind in ("md5", "sha1", "sha256")}
        try:
            blob = self.blobs.put(stream, max_size=self.max_artifact,
                                  expected={k: v for k, v in expected.items() if v})
        except artifacts.BlobTooLarge:
            raise UploadTooLarge("The artifact is larger than %d bytes." % self.max_artifact)
        except artifacts.EmptyBlob:
            raise HttpProblem(400, empty=True)
        except artifacts.ChecksumMismatch as mismatch:
            raise CHECKSUM_ERRORS[mismatch.kind]("The %s checksum of the upload does not match."
                                                 % mismatch.kind)
        upload.finish()
        late = {kind: upload.fields.get(kind + "sum") for kind in ("md5", "sha1", "sha256")
                if not expected[kind] and upload.fields.get(kind + "sum")}
        for kind, value in late.items():
            if getattr(blob, kind) != value.lower():
                self._forget_blobs(catalog.unreferenced_blobs([blob.sha1]))
                raise CHECKSUM_ERRORS[kind]("The %s checksum of the upload does not match." % kind)
        filename = context.query.get("filename") or upload.fields.get("filename") or \
            upload.filename
        try:
            return software.add_uploaded_artifact(context.base, module_id, filename, blob,
                                                  context.user)
        except store_errors.StoreError:
            self._forget_blobs(catalog.unreferenced_blobs([blob.sha1]))
            raise

    def download(self, context, module_id, artifact_id):
        artifact = software.artifact_for_download(module_id, artifact_id)
        environ = context.request.environ
        response = artifacts.file_response(
            self.blobs.path(artifact.sha1), artifact.size, artifact.sha1, artifact.created_at,
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
    URL asks for `//DEFAULT/...`, hawkbit-rs for `...//feedback`). Responses: an empty body
    carries no Content-Type (Bottle would add text/html).
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


def create_app(config):
    """The ddi-lite WSGI application for these settings (opens the data directory)."""
    data_dir = config["server", "data_dir"]
    now = ddi.now_ms()
    min_polling = storage.schedule.parse_duration(config["ddi", "min_polling_time"])
    storage.open_store(
        data_dir, now,
        limits=storage.actions.Limits(
            status_entries_per_action=config["limits", "status_entries_per_action"],
            messages_per_status=config["limits", "messages_per_status"],
            attributes_per_target=config["limits", "attributes_per_target"]),
        tenant_defaults={key: config["ddi", name] for name, key in TENANT_DEFAULTS.items()},
        min_polling_seconds=min_polling)
    blobs = artifacts.BlobStore(os.path.join(data_dir, "artifacts"))
    blobs.remove_stale_temp_files()
    app = bottle.Bottle(catchall=True)
    for status in (400, 404, 405, 500):
        app.error_handler[status] = _framework_error_handler(status)
    DeviceApi(config, blobs).install(app)
    ManagementApi(config, blobs, Accounts(config.accounts)).install(app)
    return _normalised(app)


###############################################################################
# Fleet simulator #############################################################
###############################################################################
#
# `ddi-lite simulate` plays N devices against a DDI server (this one or any hawkBit-compatible
# one) to rehearse a rollout or to load a server. Each device is one asyncio task that sleeps
# between polls; requests share a bounded pool of keep-alive connections, spoken by a minimal
# HTTP/1.1 client over asyncio streams (standard library only, like the operator commands).
# Every request goes to the scheme, host and port of --url: a link the server hands out that
# points anywhere else is refused and counted as an error, never followed.

SIMULATED_STATES = ("idle", "downloading", "installing", "done", "failed")
REQUEST_KINDS = ("poll", "configData", "deploymentBase", "download", "feedback", "cancel")
DEFAULT_PORTS = {"http": 80, "https": 443}
SIMULATOR_AGENT = "ddi-lite-simulate"
# How long a device waits after a failed poll when neither --poll-interval nor an earlier
# answer told it how long to sleep.
RETRY_SECONDS = 30
# The shortest sleep a server's answer may impose (a `00:00:00` would make devices spin).
MIN_SERVER_SLEEP_SECONDS = 1
MAX_DOCUMENT_BYTES = 4 << 20
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


class SimulationStopped(Exception):
    """A bound was reached: no more requests are sent."""


class DeviceProblem(Exception):
    """Something a device cannot go on with; `kind` is what the summary counts it as."""

    def __init__(self, kind, detail=None):
        Exception.__init__(self, detail or kind)
        self.kind = kind


HttpAnswer = collections.namedtuple("HttpAnswer", "status headers body seconds")


class HttpPool:
    """A minimal HTTP/1.1 client for one host and port: at most `size` requests at a time,
    over connections kept alive and shared by every device. Bodies may come with a
    Content-Length, chunked (other servers), or delimited by the connection's end."""

    def __init__(self, host, port, host_header, ssl_context, size, timeout, admit):
        """`admit()` is called when a request is about to go out; it may raise to keep it."""
        self.host, self.port, self.host_header = host, port, host_header
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.admit = admit
        self._idle = []
        self._slots = asyncio.Semaphore(size)

    async def request(self, method, target, headers, body=b"", sink=None):
        """Send one request; the answer. A 2xx answer's body goes to `sink(chunk)` instead of
        `body` when a sink is given. `seconds` excludes the wait for a free connection."""
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + self.host_header]
        lines += ["%s: %s" % item for item in headers.items()]
        if body or method in ("POST", "PUT"):
            lines.append("Content-Length: %d" % len(body))
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            self.admit()
            started = time.perf_counter()
            status, headers, body = await asyncio.wait_for(self._exchange(message, sink),
                                                           self.timeout)
            return HttpAnswer(status, headers, body, time.perf_counter() - started)

    async def _exchange(self, message, sink):
        while True:
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._connect()
            try:
                writer.write(message)
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("the server closed the connection")
            except ConnectionError:
                writer.close()
                if reused:
                    continue  # the server closed it while it was idle: try a fresh one
                raise
            except BaseException:
                writer.close()
                raise
            try:
                status, headers, body, keep_alive = await self._answer(reader, status_line, sink)
            except BaseException:
                writer.close()
                raise
            if keep_alive:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, headers, body

    async def _connect(self):
        return await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl_context,
            server_hostname=self.host if self.ssl_context else None)

    async def _answer(self, reader, status_line, sink):
        version, status = _status_line(status_line)
        if status < 200:
            # Interim answers only follow `Expect: 100-continue`, which is never sent.
            raise DeviceProblem("malformed HTTP answer", "unexpected HTTP %d" % status)
        headers = {}
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if not line.strip():
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        if status in (204, 304):
            return status, headers, b"", keep_alive
        body = _AnswerBody(sink if 200 <= status < 300 else None)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _read_chunked(reader, body)
        elif "content-length" in headers:
            await _read_exactly(reader, int(headers["content-length"]), body)
        else:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                body.add(chunk)
            keep_alive = False
        return status, headers, b"".join(body.parts), keep_alive

    def close(self):
        while self._idle:
            self._idle.pop()[1].close()


def _status_line(line):
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise DeviceProblem("malformed HTTP answer", repr(line[:80]))
    return parts[0], int(parts[1])


class _AnswerBody:
    """An answer's body: kept (up to MAX_DOCUMENT_BYTES), or handed to a sink chunk by chunk."""

    def __init__(self, sink):
        self.sink = sink
        self.parts = []
        self.size = 0

    def add(self, chunk):
        if self.sink is not None:
            self.sink(chunk)
            return
        self.size += len(chunk)
        if self.size > MAX_DOCUMENT_BYTES:
            raise DeviceProblem("answer too large")
        self.parts.append(chunk)


async def _read_exactly(reader, count, body):
    while count > 0:
        chunk = await reader.read(min(count, 65536))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", count)
        body.add(chunk)
        count -= len(chunk)


async def _read_chunked(reader, body):
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise DeviceProblem("malformed HTTP answer", "chunk size %r" % size_line[:80])
        if size == 0:
            break
        await _read_exactly(reader, size, body)
        if (await reader.readline()).strip():
            raise DeviceProblem("malformed HTTP answer", "chunk longer than announced")
    while (await reader.readline()).strip():
        pass  # trailer fields


def _draw(seed, *words):
    """A number in [0, 1) that depends only on the seed and the words, so a run can be
    repeated whatever order the devices happen to run in."""
    digest = hashlib.sha256("|".join((str(seed),) + words).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def _sleep_seconds(text):
    """`HH:MM:SS` (config.polling.sleep) in seconds."""
    try:
        hours, minutes, seconds = (int(field) for field in text.split(":"))
    except (AttributeError, ValueError):
        raise DeviceProblem("unexpected answer", "polling sleep %r" % (text,))
    return max(MIN_SERVER_SLEEP_SECONDS, hours * 3600 + minutes * 60 + seconds)


def _document(answer):
    try:
        document = json.loads(answer.body.decode("utf-8"))
    except ValueError:
        raise DeviceProblem("unexpected answer", "not JSON: %r" % answer.body[:80])
    if not isinstance(document, dict):
        raise DeviceProblem("unexpected answer", "not a JSON object")
    return document


def _href(links, rel):
    link = links.get(rel)
    return link.get("href") if isinstance(link, dict) else None


def _feedback(execution, finished, details, progress=None):
    result = {"finished": finished}
    if progress is not None:
        result["progress"] = progress
    return {"status": {"execution": execution, "result": result, "details": details}}


def _percentile(ordered, percent):
    """Nearest-rank percentile of a sorted, non-empty sequence."""
    rank = -(-percent * len(ordered) // 100)
    return ordered[max(rank, 1) - 1]


SimulationSettings = collections.namedtuple(
    "SimulationSettings",
    "url tenant poll_interval download range_size failure_rate seed duration max_requests "
    "stop_when_done configdata connections timeout",
    defaults=(DEFAULT_TENANT, None, "full", 1 << 20, 0.0, 0, 600.0, 1000000, False, False, 64,
              30.0))


class Simulation:
    """N virtual devices against one DDI server, until a bound (or --stop-when-done) ends
    the run: `summary = asyncio.run(Simulation(settings, devices).run())`.

    `devices` are (controller id, Authorization header value) pairs. The simulation owns the
    connection pool, the bounds and the statistics; the devices only ask it for requests.
    """

    def __init__(self, settings, devices, progress=None):
        self.settings = settings
        parts = urllib.parse.urlsplit(settings.url)
        self.scheme = parts.scheme
        self.origin = (parts.scheme, parts.hostname.lower(),
                       parts.port or DEFAULT_PORTS[parts.scheme])
        self.host_header = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.devices = [SimulatedDevice(self, controller_id, authorization)
                        for controller_id, authorization in devices]
        self.progress = LiveProgress(progress)
        self.states = collections.Counter({"idle": len(self.devices)})
        self.latencies = {kind: array.array("d") for kind in REQUEST_KINDS}
        self.non_2xx = collections.Counter()
        self.errors = collections.Counter()
        self.error_examples = {}
        self.outcomes = collections.Counter()
        self.sent = 0
        self.bytes_downloaded = 0
        self.stopped = None
        self.pool = None
        self._stop_event = None
        self._quiet = set()
        self._crash = None

    # --- what the devices use -----------------------------------------------------------

    def target_of(self, href):
        """The request target (path and query) of a link from the server. A link to another
        scheme, host or port is refused: the simulator talks to --url only."""
        if not isinstance(href, str) or not href:
            raise DeviceProblem("unexpected answer", "a link without href")
        parts = urllib.parse.urlsplit(urllib.parse.urljoin(self.settings.url + "/", href))
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            port = None
        if (parts.scheme, (parts.hostname or "").lower(), port) != self.origin:
            raise DeviceProblem("link to another host refused", href)
        path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        return path + ("?" + parts.query if parts.query else "")

    async def call(self, kind, method, target, authorization, document=None, headers=None,
                   sink=None):
        """One request of a device, counted against --max-requests and in the statistics.
        Transport failures become DeviceProblems; any HTTP status is returned."""
        headers = dict(headers or {}, Authorization=authorization)
        headers["User-Agent"] = SIMULATOR_AGENT
        body = b""
        if kind != "download":
            headers["Accept"] = JSON
        if document is not None:
            headers["Content-Type"] = JSON
            body = json.dumps(document).encode("utf-8")
        try:
            answer = await self.pool.request(method, target, headers, body, sink)
        except asyncio.TimeoutError:
            raise DeviceProblem("timeout", "%s %s" % (method, target))
        except asyncio.IncompleteReadError:
            raise DeviceProblem("connection closed during an answer", "%s %s" % (method, target))
        except OSError as error:  # ssl.SSLError is one too
            raise DeviceProblem("connection failed: %s" % _reason(error), str(error))
        except ValueError as error:  # a line over the stream's limit, a bad Content-Length
            raise DeviceProblem("malformed HTTP answer", str(error))
        self.latencies[kind].append(answer.seconds)
        if not 200 <= answer.status < 300:
            self.non_2xx[answer.status] += 1
        return answer

    def _admit(self):
        if self.stopped is not None:
            raise SimulationStopped()
        if self.sent >= self.settings.max_requests:
            self.stop("max-requests")
            raise SimulationStopped()
        self.sent += 1

    def count_error(self, problem):
        self.errors[problem.kind] += 1
        self.error_examples.setdefault(problem.kind, str(problem))

    def entered(self, old_state, new_state):
        self.states[old_state] -= 1
        self.states[new_state] += 1

    def polled(self, device, offered):
        """Bookkeeping for --stop-when-done: every device polled once, with nothing offered,
        since the last action closed."""
        if offered:
            self._quiet.discard(device)
            return
        self._quiet.add(device)
        if self.settings.stop_when_done and len(self._quiet) == len(self.devices):
            self.stop("done")

    def closed(self, outcome):
        """An action was closed (or its cancel confirmed): the quiet round starts over."""
        self.outcomes[outcome] += 1
        self._quiet.clear()

    def stop(self, reason):
        if self.stopped is None:
            self.stopped = reason
            if self._stop_event is not None:
                self._stop_event.set()

    # --- the run -------------------------------------------------------------------------

    async def run(self):
        """Play every device until a bound, --stop-when-done or stop() ends the run; the
        summary (see `summary`)."""
        settings = self.settings
        ssl_context = ssl.create_default_context() if self.scheme == "https" else None
        self.pool = HttpPool(self.origin[1], self.origin[2], self.host_header, ssl_context,
                             settings.connections, settings.timeout, self._admit)
        self._stop_event = asyncio.Event()
        started, cpu_started = time.monotonic(), time.process_time()
        # Spread the first polls over a second (or one forced interval, if shorter).
        spread = min(1.0, settings.poll_interval or 1.0)
        tasks = [asyncio.ensure_future(device.live(
                 spread * _draw(settings.seed, device.controller_id, "start")))
                 for device in self.devices]
        for task in tasks:
            task.add_done_callback(self._device_ended)
        watcher = asyncio.ensure_future(self._watch(started))
        try:
            await asyncio.wait_for(self._stop_event.wait(), settings.duration)
        except asyncio.TimeoutError:
            self.stop("duration")
        finally:
            for task in tasks + [watcher]:
                task.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)
            self.pool.close()
            self.progress.finish()
        if self._crash is not None:
            raise self._crash
        return self.summary(time.monotonic() - started, time.process_time() - cpu_started)

    def _device_ended(self, task):
        # A device only ends by a bound; anything else is a bug worth a traceback.
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()
            self.stop("crashed")

    async def _watch(self, started):
        previous_time, previous_count = started, 0
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            answered = self.answered()
            rate = (answered - previous_count) / max(now - previous_time, 1e-6)
            previous_time, previous_count = now, answered
            states = " ".join("%s %d" % (state, self.states[state])
                              for state in SIMULATED_STATES)
            self.progress.show("%6.1fs  %s | %d req/s | errors %d" % (
                now - started, states, rate, sum(self.errors.values())), now)

    def answered(self):
        return sum(len(values) for values in self.latencies.values())

    def summary(self, seconds, cpu_seconds):
        """The run in numbers, JSON-ready; latencies in milliseconds."""
        latency = collections.OrderedDict()
        for kind in REQUEST_KINDS:
            ordered = sorted(self.latencies[kind])
            if ordered:
                latency[kind] = collections.OrderedDict(
                    [("requests", len(ordered))] +
                    [(name, round(_percentile(ordered, percent) * 1000, 2))
                     for name, percent in (("p50", 50), ("p90", 90), ("p99", 99))] +
                    [("max", round(ordered[-1] * 1000, 2))])
        answered = self.answered()
        return collections.OrderedDict((
            ("url", self.settings.url),
            ("tenant", self.settings.tenant),
            ("devices", len(self.devices)),
            ("seed", self.settings.seed),
            ("stopped", self.stopped),
            ("seconds", round(seconds, 3)),
            ("requests", self.sent),
            ("answered", answered),
            ("requests_per_second", round(answered / seconds, 1) if seconds else 0.0),
            ("latency_ms", latency),
            ("bytes_downloaded", self.bytes_downloaded),
            ("non_2xx", collections.OrderedDict(
                (str(status), count) for status, count in sorted(self.non_2xx.items()))),
            ("errors", collections.OrderedDict(sorted(self.errors.items()))),
            ("error_examples", collections.OrderedDict(sorted(self.error_examples.items()))),
            ("states", collections.OrderedDict(
                (state, self.states[state]) for state in SIMULATED_STATES)),
            ("outcomes", collections.OrderedDict(sorted(self.outcomes.items()))),
            ("cpu_seconds", round(cpu_seconds, 2)),
        ))


class SimulatedDevice:
    """One virtual device: poll, upload configData when asked, install (or fail to) what it
    is offered, confirm cancellations. One coroutine that sleeps between polls."""

    def __init__(self, simulation, controller_id, authorization):
        self.simulation = simulation
        self.controller_id = controller_id
        self.authorization = authorization
        self.base = "%s/%s/controller/v1/%s" % (simulation.base_path,
                                                 _segment(simulation.settings.tenant),
                                                 _segment(controller_id))
        self.state = "idle"
        self.server_sleep = None
        self.downloaded_action = None

    def enter(self, state):
        self.simulation.entered(self.state, state)
        self.state = state

    def call(self, kind, method, target, document=None, headers=None, sink=None):
        return self.simulation.call(kind, method, target, self.authorization, document,
                                    headers, sink)

    async def live(self, first_delay):
        await asyncio.sleep(first_delay)
        while True:
            try:
                await self.poll_once()
            except SimulationStopped:
                return
            await asyncio.sleep(self.simulation.settings.poll_interval or self.server_sleep or
                                RETRY_SECONDS)

    async def poll_once(self):
        """Poll the root resource and do what its links ask for."""
        offered = True  # until an answer shows otherwise, there may be work waiting
        try:
            answer = await self.call("poll", "GET", self.base)
            if answer.status == 200:
                try:
                    offered = await self.follow(_document(answer))
                except (KeyError, TypeError, AttributeError) as error:
                    raise DeviceProblem("unexpected answer",
                                        "%s: %s" % (type(error).__name__, error))
        except DeviceProblem as problem:
            self.simulation.count_error(problem)
            offered = True
            if self.state in ("downloading", "installing"):
                self.enter("idle")  # the next poll offers the action again
        self.simulation.polled(self, offered)

    async def follow(self, root):
        """Do what the root resource's links ask for; whether an action was offered."""
        self.server_sleep = _sleep_seconds(root["config"]["polling"]["sleep"])
        links = root.get("_links") or {}
        if "configData" in links and self.simulation.settings.configdata:
            await self.upload_config_data(_href(links, "configData"))
        if "cancelAction" in links:
            await self.confirm_cancel(_href(links, "cancelAction"))
        elif "deploymentBase" in links:
            await self.deploy(_href(links, "deploymentBase"))
        # confirmationBase (user consent) is not simulated: such an action just waits.
        return any(rel in links for rel in ("deploymentBase", "cancelAction", "confirmationBase"))

    async def upload_config_data(self, href):
        await self.call("configData", "PUT", self.simulation.target_of(href), {
            "mode": "merge",
            "data": {"serial": self.controller_id, "hwRevision": "sim-1", "simulator": "ddi-lite"}})

    async def confirm_cancel(self, href):
        answer = await self.call("cancel", "GET", self.simulation.target_of(href))
        if answer.status != 200:
            return
        document = _document(answer)
        action_id = str((document.get("cancelAction") or {}).get("stopId") or document["id"])
        answer = await self.call(
            "cancel", "POST", "%s/cancelAction/%s/feedback" % (self.base, _segment(action_id)),
            _feedback("closed", "success", ["ddi-lite simulate: cancelled"]))
        if 200 <= answer.status < 300:
            self.downloaded_action = None
            self.enter("idle")
            self.simulation.closed("cancelled")

    async def deploy(self, href):
        """deploymentBase: download and verify, then proceeding and closed (or downloaded,
        when the server says not to install yet)."""
        simulation = self.simulation
        answer = await self.call("deploymentBase", "GET", simulation.target_of(href))
        if answer.status != 200:
            return
        document = _document(answer)
        action_id = str(document["id"])
        deployment = document["deployment"]
        feedback = "%s/deploymentBase/%s/feedback" % (self.base, _segment(action_id))
        if deployment.get("download") == "skip":
            return  # waiting for a maintenance window
        artifacts = [artifact for chunk in deployment.get("chunks") or []
                     for artifact in chunk.get("artifacts") or []]
        if self.downloaded_action != action_id:
            self.enter("downloading")
            for artifact in artifacts:
                failure = await self.download(artifact)
                if failure is not None:
                    await self.close(feedback, "failure", [failure])
                    return
            self.downloaded_action = action_id
            if deployment.get("update") == "skip":
                answer = await self.call("feedback", "POST", feedback, _feedback(
                    "downloaded", "success", ["ddi-lite simulate: downloaded"]))
                if 200 <= answer.status < 300:
                    self.enter("done")
                    simulation.closed("downloaded")
                return
        if deployment.get("update") == "skip":
            return  # downloaded already; installs when the window opens
        self.enter("installing")
        answer = await self.call("feedback", "POST", feedback, _feedback(
            "proceeding", "none", ["ddi-lite simulate: installing"],
            {"cnt": len(artifacts), "of": len(artifacts)}))
        if not 200 <= answer.status < 300:
            self.enter("idle")
            return
        if _draw(simulation.settings.seed, self.controller_id, action_id) < \
                simulation.settings.failure_rate:
            await self.close(feedback, "failure", ["ddi-lite simulate: installation failed"])
        else:
            await self.close(feedback, "success", ["ddi-lite simulate: installed"])

    async def close(self, feedback, finished, details):
        answer = await self.call("feedback", "POST", feedback,
                                 _feedback("closed", finished, details))
        # 410: hawkBit's answer when the action was closed already (cancelled meanwhile).
        if 200 <= answer.status < 300 or answer.status == 410:
            self.enter("done" if finished == "success" else "failed")
            self.simulation.closed("success" if finished == "success" else "failure")
        else:
            self.enter("idle")

    async def download(self, artifact):
        """Fetch one artifact (whole, or in --range-size pieces) and check its size and hash;
        None when it is good, else what the failure report says."""
        simulation = self.simulation
        name = artifact.get("filename", "?")
        links = artifact.get("_links") or {}
        target = refused = None
        for rel in ("download-http", "download"):
            if rel in links:
                try:
                    target = simulation.target_of(_href(links, rel))
                    break
                except DeviceProblem as problem:
                    refused = refused or problem
        if target is None:
            if refused is not None:
                simulation.count_error(refused)
            return "no download link for %s at %s" % (name, simulation.settings.url)
        hashes = artifact.get("hashes") or {}
        algorithm = next((key for key in ("sha256", "sha1", "md5") if hashes.get(key)), "sha256")
        digest = hashlib.new(algorithm)
        size = artifact.get("size")
        received = [0]

        def take(chunk):
            digest.update(chunk)
            received[0] += len(chunk)
            simulation.bytes_downloaded += len(chunk)

        if simulation.settings.download == "full" or not isinstance(size, int):
            answer = await self.call("download", "GET", target, sink=take)
            if answer.status != 200:
                return "download of %s: HTTP %d" % (name, answer.status)
        else:
            while received[0] < size:
                first = received[0]
                last = min(first + simulation.settings.range_size, size) - 1
                answer = await self.call("download", "GET", target, sink=take,
                                         headers={"Range": "bytes=%d-%d" % (first, last)})
                if answer.status == 200 and first == 0:
                    break  # the server ignored Range and sent it all
                content_range = answer.headers.get("content-range")
                if answer.status != 206 or received[0] != last + 1 or \
                        content_range != "bytes %d-%d/%d" % (first, last, size):
                    return "download of %s bytes %d-%d: HTTP %d, Content-Range %s" % (
                        name, first, last, answer.status, content_range)
        if isinstance(size, int) and received[0] != size:
            simulation.count_error(DeviceProblem("size mismatch", name))
            return "%s has %d bytes, not %d" % (name, received[0], size)
        expected = hashes.get(algorithm)
        if expected and digest.hexdigest() != str(expected).lower():
            simulation.count_error(DeviceProblem("%s mismatch" % algorithm, name))
            return "%s of %s is %s, not %s" % (algorithm, name, digest.hexdigest(), expected)
        return None


class LiveProgress:
    """The simulation's status line on stderr: redrawn in place on a terminal, otherwise
    printed every few seconds."""

    every_seconds = 5

    def __init__(self, stream):
        self.stream = stream
        self.terminal = stream is not None and stream.isatty()
        self._printed = None

    def show(self, text, now):
        if self.stream is None:
            return
        if self.terminal:
            try:
                text = text[:os.get_terminal_size(self.stream.fileno()).columns - 1]
            except OSError:
                pass
            self.stream.write("\r" + text + "\x1b[K")
        elif self._printed is None or now - self._printed >= self.every_seconds:
            self.stream.write(text + "\n")
        else:
            return
        self._printed = now
        self.stream.flush()

    def finish(self):
        if self.terminal and self._printed is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def print_summary(summary):
    print("%d devices against %s (tenant %s, seed %d), stopped after %.1f s: %s" % (
        summary["devices"], summary["url"], summary["tenant"], summary["seed"],
        summary["seconds"], summary["stopped"]))
    print_table([
        ("requests", "%d sent, %d answered, %.1f/s" % (
            summary["requests"], summary["answered"], summary["requests_per_second"])),
        ("downloaded", "%s (%d bytes)" % (_size(summary["bytes_downloaded"]),
                                          summary["bytes_downloaded"])),
        ("devices", ", ".join("%s %d" % item for item in summary["states"].items())),
        ("actions", ", ".join("%s %d" % item for item in summary["outcomes"].items()) or None),
        ("non-2xx", ", ".join("HTTP %s: %d" % item for item in summary["non_2xx"].items())
         or None),
        ("errors", ", ".join("%s: %d" % item for item in summary["errors"].items()) or None),
        ("simulator CPU", "%.1f s (%.0f%% of one core)" % (
            summary["cpu_seconds"], 100 * summary["cpu_seconds"] / max(summary["seconds"], 1e-6))),
    ])
    print()
    print_table([(kind, numbers["requests"], numbers["p50"], numbers["p90"], numbers["p99"],
                  numbers["max"]) for kind, numbers in summary["latency_ms"].items()],
                header=("REQUEST", "COUNT", "P50 MS", "P90 MS", "P99 MS", "MAX MS"))
    for kind, example in summary["error_examples"].items():
        print("e.g. %s: %s" % (kind, example))


# --- ddi-lite simulate: the command line ----------------------------------------------------

def _whole_number(low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a whole number, not %r" % text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("must be between %d and %d, not %d"
                                             % (low, high, value))
        return value
    return parse


def _number(low, high, low_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a number, not %r" % text)
        if (value <= low if low_open else not low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(
                ("must be more than %g and at most %g, not %s" if low_open else
                 "must be between %g and %g, not %s") % (low, high, text))
        return value
    return parse


def _add_simulate_command(commands):
    summary = "play N virtual devices against a DDI server (this one or any hawkBit) and " \
              "print throughput and latency"
    parser = commands.add_parser("simulate", help=summary, description=summary + ".")
    server = parser.add_argument_group("server")
    server.add_argument("--url", required=True,
                        help="the server, http(s)://HOST:PORT[/PATH]; nothing else is contacted")
    server.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant (default: DEFAULT)")
    server.add_argument("--connections", type=_whole_number(1, 10000), default=64, metavar="N",
                        help="connections shared by all devices (default: 64)")
    server.add_argument("--timeout", type=_number(0, 3600, low_open=True), default=30.0,
                        metavar="SECONDS", help="longest wait for one answer (default: 30)")
    devices = parser.add_argument_group("devices (one of --token-file, --gateway-token, "
                                        "--create-targets)")
    devices.add_argument("--devices", type=_whole_number(1, 100000), metavar="N",
                         help="how many (default: 10, or every line of --token-file)")
    devices.add_argument("--prefix", help="controller ids PREFIX00001... (default: sim-)")
    credentials = devices.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--token-file", metavar="FILE",
                             help="lines 'controllerId token': the devices and their tokens")
    credentials.add_argument("--gateway-token", metavar="TOKEN",
                             help="one gateway token for all; unknown devices register")
    credentials.add_argument("--create-targets", action="store_true",
                             help="create the targets (existing ones are reused) and read "
                                  "their tokens through the Management API")
    devices.add_argument("--user", help="with --create-targets (env DDI_LITE_USER; admin)")
    devices.add_argument("--password",
                         help="with --create-targets (env DDI_LITE_PASSWORD; asked on a "
                              "terminal)")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument("--poll-interval", type=_number(0, 86400, low_open=True),
                           metavar="SECONDS",
                           help="poll this often instead of the server's sleep")
    behaviour.add_argument("--download", choices=("full", "ranges"), default="full",
                           help="whole artifacts (default) or Range requests")
    behaviour.add_argument("--range-size", type=_whole_number(1, 1 << 40), metavar="BYTES",
                           help="with --download ranges: bytes per request (default: 1 MiB)")
    behaviour.add_argument("--failure-rate", type=_number(0, 1), default=0.0,
                           metavar="0..1", help="share of installations reported as failed")
    behaviour.add_argument("--seed", type=_whole_number(0, 2 ** 63 - 1),
                           help="repeat a run's choices (default: random, shown in the summary)")
    behaviour.add_argument("--configdata", action="store_true",
                           help="upload attributes when the server asks for them")
    bounds = parser.add_argument_group("bounds and output")
    bounds.add_argument("--duration", type=_number(0, 7 * 86400, low_open=True), default=600.0,
                        metavar="SECONDS", help="stop after this long (default: 600)")
    bounds.add_argument("--max-requests", type=_whole_number(1, 10 ** 12), default=1000000,
                        metavar="N", help="stop before request N+1 (default: 1000000)")
    bounds.add_argument("--stop-when-done", action="store_true",
                        help="stop once every offered action is closed and a poll round "
                             "brought nothing new")
    bounds.add_argument("--json", action="store_true", help="print the summary as JSON")


def _check_simulate_url(url):
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == 0 or \
            parts.username is not None or parts.query or parts.fragment:
        raise CommandFailed("--url must look like http://HOST:PORT[/PATH] or https://..., "
                            "not %r" % url, 2)
    return url.rstrip("/")


def _read_token_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandFailed("cannot read --token-file %s: %s" % (path, _reason(error)), 2)
    tokens = collections.OrderedDict()
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise CommandFailed("%s line %d: expected 'controllerId token'" % (path, number), 2)
        if not TOKEN_PATTERN.fullmatch(words[1]):
            raise CommandFailed("%s line %d: a token is printable ASCII" % (path, number), 2)
        if words[0] in tokens:
            raise CommandFailed("%s line %d: %s is listed twice" % (path, number, words[0]), 2)
        tokens[words[0]] = words[1]
    if not tokens:
        raise CommandFailed("%s lists no devices" % path, 2)
    return tokens


def _simulated_devices(args):
    """(controller id, Authorization value) of every device, as the command line says."""
    if args.token_file is not None:
        if args.prefix is not None:
            raise CommandFailed("--prefix names generated devices; --token-file names its own", 2)
        tokens = _read_token_file(args.token_file)
        if args.devices is not None and args.devices > len(tokens):
            raise CommandFailed("--devices %d, but %s lists only %d" % (
                args.devices, args.token_file, len(tokens)), 2)
        listed = list(tokens.items())[:args.devices or len(tokens)]
        return [(controller_id, "TargetToken " + token) for controller_id, token in listed]
    prefix = "sim-" if args.prefix is None else args.prefix
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{0,200}", prefix):
        raise CommandFailed("--prefix may have up to 200 letters, digits or _.:-", 2)
    count = args.devices or 10
    controller_ids = ["%s%0*d" % (prefix, max(5, len(str(count))), n) for n in range(1, count + 1)]
    if args.gateway_token is not None:
        if not TOKEN_PATTERN.fullmatch(args.gateway_token):
            raise CommandFailed("--gateway-token must be printable ASCII without blanks", 2)
        return [(controller_id, "GatewayToken " + args.gateway_token)
                for controller_id in controller_ids]
    return [(controller_id, "TargetToken " + token)
            for controller_id, token in _created_targets(args, prefix, controller_ids)]


def _created_targets(args, prefix, controller_ids):
    """Create the targets that do not exist yet through the Management API, reuse the
    others; (controller id, security token) pairs."""
    password = args.password if args.password is not None else \
        os.environ.get("DDI_LITE_PASSWORD")
    user = args.user or os.environ.get("DDI_LITE_USER") or "admin"
    client = ManagementClient(args.url, user, password)
    wanted = set(controller_ids)
    tokens = {target["controllerId"]: target.get("securityToken")
              for target in _all_pages(client, "/targets", {"q": "controllerId==%s*" % prefix})
              if target["controllerId"] in wanted}
    missing = [controller_id for controller_id in controller_ids if controller_id not in tokens]
    for start in range(0, len(missing), 500):
        created = client.call("POST", "/targets", [
            {"controllerId": controller_id, "description": "ddi-lite simulate"}
            for controller_id in missing[start:start + 500]])
        tokens.update((target["controllerId"], target.get("securityToken"))
                      for target in created)
    print("ddi-lite: %d targets created, %d reused" % (
        len(missing), len(controller_ids) - len(missing)), file=sys.stderr)
    for controller_id in controller_ids:
        if not tokens.get(controller_id):
            raise CommandFailed("the server shows no security token for %s (may %s read "
                                "tokens?)" % (controller_id, user))
    return [(controller_id, tokens[controller_id]) for controller_id in controller_ids]


def simulate(args):
    """`ddi-lite simulate`: run the simulation and print its summary. Exit code 0; 1 when the
    server never answered or --stop-when-done was not reached; 2 for a wrong command line;
    130 when interrupted (after the summary)."""
    try:
        if (args.user is not None or args.password is not None) and not args.create_targets:
            raise CommandFailed("--user and --password go with --create-targets", 2)
        if args.range_size is not None and args.download != "ranges":
            raise CommandFailed("--range-size goes with --download ranges", 2)
        args.url = _check_simulate_url(args.url)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.tenant):
            raise CommandFailed("--tenant has 1 to 64 letters, digits or _.-", 2)
        devices = _simulated_devices(args)
    except CommandFailed as failure:
        print("ddi-lite: %s" % failure, file=sys.stderr)
        return failure.exit_code
    except (KeyError, IndexError, TypeError, AttributeError) as error:  # --create-targets
        print("ddi-lite: unexpected answer from %s (%s: %s)" % (
            args.url, type(error).__name__, error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    settings = SimulationSettings(
        url=args.url, tenant=args.tenant, poll_interval=args.poll_interval,
        download=args.download, range_size=args.range_size or 1 << 20,
        failure_rate=args.failure_rate,
        seed=args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big"),
        duration=args.duration, max_requests=args.max_requests,
        stop_when_done=args.stop_when_done, configdata=args.configdata,
        connections=args.connections, timeout=args.timeout)
    simulation = Simulation(settings, devices, progress=sys.stderr)
    summary = asyncio.run(_until_interrupted(simulation))
    if args.json:
        print_json(summary)
    else:
        print_summary(summary)
    if summary["stopped"] == "interrupted":
        return 130
    if not summary["answered"] or (settings.stop_when_done and summary["stopped"] != "done"):
        return 1
    return 0


async def _until_interrupted(simulation):
    """Run the simulation; Ctrl-C (or SIGTERM) ends it early, with a summary."""
    loop = asyncio.get_running_loop()
    handled = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, simulation.stop, "interrupted")
            handled.append(number)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # Windows, or not the main thread: Ctrl-C stops without a summary
    try:
        return await simulation.run()
    finally:
        for number in handled:
            loop.remove_signal_handler(number)


###############################################################################
# Command line ################################################################
###############################################################################

def _add_setting_flags(parser):
    for setting in SETTINGS:
        parser.add_argument(flag_name(setting), dest="%s.%s" % (setting.section, setting.key),
                            metavar=setting.key.upper(), help=setting.help)


def set_password(path, user, password_hash):
    """Write `user = hash` into the [accounts] section of the settings file, keeping the rest
    of the file (comments included) as it is."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    entry = "%s = %s" % (user, password_hash)
    section = None
    start = end = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            if section == ACCOUNTS_SECTION:
                start = end = index + 1
            continue
        if section != ACCOUNTS_SECTION:
            continue
        end = index + 1
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        if key == user and not stripped.startswith(("#", ";")):
            lines[index] = entry
            break
    else:
        if start is None:
            lines += ["", "[%s]" % ACCOUNTS_SECTION, entry]
        else:
            lines.insert(end, entry)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def passwd(args):
    """`ddi-lite passwd USER`: ask for a password (twice on a terminal) and store its hash."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", args.user):
        print("ddi-lite: a user name has 1 to 64 letters, digits or _.@-", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("New password for %s: " % args.user)
        if password != getpass.getpass("Again: "):
            print("ddi-lite: the passwords differ; nothing changed", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("ddi-lite: an empty password is not allowed; nothing changed", file=sys.stderr)
        return 1
    path = args.config or "config.ini"
    set_password(path, args.user, hash_password(password))
    print("ddi-lite: password of %s stored in %s (restart the server to use it)"
          % (args.user, os.path.abspath(path)))
    return 0


def serve(config):
    import waitress
    app = create_app(config)
    ddi.poll_log.start_writer()
    host, port = config["server", "host"], config["server", "port"]
    if Accounts(config.accounts).default_password_in_use():
        log.warning("*** The Management API still accepts admin/admin. Change it: "
                    "ddi-lite passwd admin ***")
    log.info("listening on http://%s:%d (config: %s, data: %s)", host, port,
             config.source, config["server", "data_dir"])
    waitress.serve(app, host=host, port=port, threads=config["server", "threads"],
                   ident="ddi-lite", _quiet=True,
                   # Waitress queues up to 16 MiB per connection in memory by default.
                   outbuf_high_watermark=1 << 20,
                   max_request_body_size=config["limits", "max_artifact_bytes"] + (1 << 20))


# Operator commands ###########################################################
#
# `ddi-lite targets|upload|assign|actions|cancel|config ...` talk to a running server over the
# Management API (so they work from another machine too), with the standard library only.


OPERATOR_OPTIONS = ("url", "user", "password", "json")
UPLOAD_CHUNK_BYTES = 256 * 1024


class CommandFailed(Exception):
    """What an operator command tells instead of a traceback: one line, and the exit code
    (1: the server refused or cannot be reached; 2: the command line itself is wrong)."""

    def __init__(self, message, exit_code=1):
        Exception.__init__(self, message)
        self.exit_code = exit_code


def _reason(error):
    """A connection failure in words (socket errors keep them in `strerror`)."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class ManagementClient:
    """Requests to one server's /rest/v1 with HTTP Basic authentication and JSON.

    One connection serves all requests of a command. The password is asked for (or found
    missing) only when the first request needs it, so local mistakes are reported first.
    """

    timeout_seconds = 60

    def __init__(self, url, user, password):
        parts = urllib.parse.urlsplit(url)
        try:
            secure = {"http": False, "https": True}[parts.scheme]
            port = parts.port or (443 if secure else 80)
        except (KeyError, ValueError):
            port = None
        if port is None or not parts.hostname:
            raise CommandFailed("--url must look like http://HOST:PORT, not %r" % url, 2)
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self._root = parts.path.rstrip("/") + "/rest/v1"
        connection_class = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        self._connection = connection_class(parts.hostname, port, timeout=self.timeout_seconds)

    def _authorization(self):
        if self._password is None:
            if not sys.stdin.isatty():
                raise CommandFailed("no password for %s: set DDI_LITE_PASSWORD or pass "
                                    "--password" % self.user, 2)
            self._password = getpass.getpass("Password of %s at %s: " % (self.user, self.url))
        credentials = ("%s:%s" % (self.user, self._password)).encode("utf-8")
        return "Basic " + base64.b64encode(credentials).decode("ascii")

    def call(self, method, path, document=None, query=None):
        """Send `document` (if any) as JSON; the answer's JSON document, None when empty."""
        if document is None:
            return self.exchange(method, path, query)
        body = json.dumps(document).encode("utf-8")
        return self.exchange(method, path, query, {"Content-Type": JSON}, [body], len(body))

    def exchange(self, method, path, query=None, headers=None, chunks=(), length=None):
        """One request whose body is sent chunk by chunk; `length` is its Content-Length."""
        target = self._root + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(headers or {}, Accept=JSON, Authorization=self._authorization())
        if length is not None:
            headers["Content-Length"] = str(length)
        connection = self._connection
        send_error = None
        try:
            connection.putrequest(method, target)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for chunk in chunks:
                try:
                    connection.send(chunk)
                except OSError as error:
                    # A server may refuse a body before reading it all (too large) and close
                    # the connection; its answer still explains why.
                    send_error = error
                    break
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise CommandFailed("cannot reach ddi-lite at %s: %s"
                                % (self.url, _reason(send_error or error)))
        except BaseException:
            connection.close()  # half a request was sent: the next one needs a fresh connection
            raise
        if send_error is not None:
            connection.close()
        return self._document(method, path, response, data)

    def _document(self, method, path, response, data):
        if response.status == 401:
            raise CommandFailed("login refused for user %s at %s" % (self.user, self.url))
        try:
            document = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            if response.status < 400:
                raise CommandFailed("%s does not answer like ddi-lite (%s %s gave no JSON)"
                                    % (self.url, method, path))
            document = None
        if response.status < 400:
            return document
        message = document.get("message") if isinstance(document, dict) else None
        if response.status == 404:
            raise CommandFailed(message or "not found: %s %s" % (method, self._root + path))
        if message:
            raise CommandFailed("refused (HTTP %d): %s" % (response.status, message))
        raise CommandFailed("refused (HTTP %d %s): %s %s" % (
            response.status, response.reason, method, self._root + path))


def _segment(text):
    return urllib.parse.quote(text, safe="")


def _all_pages(client, path, query=None):
    """Every element of a paged collection, fetched with offset/limit until `total`."""
    items = []
    while True:
        page = client.call("GET", path, query=dict(query or {}, offset=len(items), limit=500))
        items.extend(page["content"])
        if not page["content"] or len(items) >= page["total"]:
            return items


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _when(epoch_ms):
    if epoch_ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000.0))


def _size(count):
    if count < 1024:
        return "%d B" % count
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024.0
        if count < 1024 or unit == "GiB":
            return "%.1f %s" % (count, unit)


def _set_label(distribution_set):
    if distribution_set is None:
        return "-"
    return "%s:%s (set %d)" % (distribution_set["name"], distribution_set["version"],
                               distribution_set["id"])


def print_json(document):
    print(json.dumps(document, indent=2, ensure_ascii=False))


def print_table(rows, header=None, indent=""):
    """Plain columns, two spaces apart, no colours; None shows as '-'."""
    lines = ([list(header)] if header else []) + [[_text(cell) for cell in row] for row in rows]
    if not lines:
        return
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    for line in lines:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


class Progress:
    """A one-line progress bar (percentage and bytes) on stderr, drawn only on a terminal."""

    width = 30

    def __init__(self, label, total):
        self.label = label if len(label) <= 24 else label[:21] + "..."
        self.total = total
        self.done = 0
        self.enabled = sys.stderr.isatty()
        self._drawn = None

    def advance(self, count):
        self.done += count
        percent = self.done * 100 // self.total
        if self.enabled and percent != self._drawn:
            self._drawn = percent
            bar = "#" * (percent * self.width // 100)
            sys.stderr.write("\r%-24s [%-*s] %3d%%  %10s / %s" % (
                self.label, self.width, bar, percent, _size(self.done), _size(self.total)))
            sys.stderr.flush()

    def finish(self):
        if self.enabled and self._drawn is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _part_header(boundary, name, filename=None):
    disposition = 'form-data; name="%s"' % name
    if filename is not None:
        # The `filename` field before this part carries the exact name; this one only has to
        # keep the header intact.
        safe = re.sub(r'["\\\r\n]', "_", filename)
        disposition += '; filename="%s"\r\nContent-Type: application/octet-stream' % safe
    return "--%s\r\nContent-Disposition: %s\r\n\r\n" % (boundary, disposition)


def upload_artifact(client, module_id, path):
    """Stream one file to the module as multipart/form-data, hashing it on the way.

    The SHA-256 goes out as a form field after the file, so the server refuses (and does not
    keep) bytes that arrived different; the answer's hash is compared here as well.
    """
    filename = os.path.basename(path)
    size = os.path.getsize(path)
    boundary = "ddi-lite-" + os.urandom(12).hex()
    head = (_part_header(boundary, "filename") + filename + "\r\n" +
            _part_header(boundary, "file", filename)).encode("utf-8")

    def tail(sha256):
        return ("\r\n" + _part_header(boundary, "sha256sum") + sha256 +
                "\r\n--%s--\r\n" % boundary).encode("ascii")

    sha256 = hashlib.sha256()
    progress = Progress(filename, size)

    def chunks(handle):
        yield head
        remaining = size
        while remaining:
            try:
                chunk = handle.read(min(UPLOAD_CHUNK_BYTES, remaining))
            except OSError as error:
                raise CommandFailed("cannot read %s: %s" % (path, _reason(error)))
            if not chunk:
                raise CommandFailed("%s became shorter while it was uploaded" % path)
            remaining -= len(chunk)
            sha256.update(chunk)
            progress.advance(len(chunk))
            yield chunk
        yield tail(sha256.hexdigest())

    with open(path, "rb") as handle:
        try:
            artifact = client.exchange(
                "POST", "/softwaremodules/%d/artifacts" % module_id, None,
                {"Content-Type": "multipart/form-data; boundary=" + boundary},
                chunks(handle), len(head) + size + len(tail("0" * 64)))
        finally:
            progress.finish()
    stored = artifact.get("hashes", {}).get("sha256")
    if stored != sha256.hexdigest():
        raise CommandFailed("the server stored %s with sha256 %s, but the file's is %s"
                            % (filename, stored, sha256.hexdigest()))
    return artifact


def targets_list(args, client):
    targets = _all_pages(client, "/targets", {"q": args.query} if args.query else None)
    if args.json:
        print_json(targets)
        return
    print_table([(target["controllerId"], target.get("name"), target.get("updateStatus"),
                  _when(target.get("lastControllerRequestAt")), target.get("ipAddress"))
                 for target in targets],
                header=("CONTROLLER ID", "NAME", "STATUS", "LAST POLL", "ADDRESS"))


def targets_add(args, client):
    fields = {"controllerId": args.controller_id, "name": args.name,
              "securityToken": args.token}
    created = client.call("POST", "/targets",
                          [{key: value for key, value in fields.items() if value is not None}])
    if args.json:
        print_json(created[0])
    else:
        print(_text(created[0].get("securityToken")))


def targets_show(args, client):
    path = "/targets/" + _segment(args.controller_id)
    target = client.call("GET", path)
    attributes = client.call("GET", path + "/attributes") or {}
    assigned = client.call("GET", path + "/assignedDS")
    installed = client.call("GET", path + "/installedDS")
    if args.json:
        print_json({"target": target, "attributes": attributes, "assignedDS": assigned,
                    "installedDS": installed})
        return
    last_poll = _when(target.get("lastControllerRequestAt"))
    if (target.get("pollStatus") or {}).get("overdue"):
        last_poll += " (overdue)"
    print_table([
        ("controller id", target["controllerId"]),
        ("name", target.get("name")),
        ("description", target.get("description")),
        ("update status", target.get("updateStatus")),
        ("security token", target.get("securityToken")),
        ("address", target.get("address")),
        ("last poll", last_poll),
        ("assigned set", _set_label(assigned)),
        ("installed set", _set_label(installed)),
        ("installed at", _when(target.get("installedAt"))),
        ("attributes", "" if attributes else None),
    ])
    print_table(sorted(attributes.items()), indent="  ")


def targets_delete(args, client):
    client.call("DELETE", "/targets/" + _segment(args.controller_id))
    if not args.json:
        print("target %s deleted" % args.controller_id)


def _check_readable(path):
    try:
        with open(path, "rb"):
            size = os.path.getsize(path)
    except OSError as error:
        raise CommandFailed("cannot read %s: %s" % (path, _reason(error)), 2)
    if size == 0:
        raise CommandFailed("%s is empty; an artifact needs at least one byte" % path, 2)


def upload(args, client):
    for path in args.files:
        _check_readable(path)
    names = [os.path.basename(path) for path in args.files]
    if len(set(names)) != len(names):
        raise CommandFailed("two files have the same name; artifact names must differ", 2)
    set_type = args.set_type or {"os": "os", "application": "app"}.get(args.type)
    if set_type is None:
        raise CommandFailed("a module of type %s needs --set-type" % args.type, 2)
    module = client.call("POST", "/softwaremodules", [
        {"name": args.name, "version": args.version, "type": args.type}])[0]
    try:
        artifacts = [upload_artifact(client, module["id"], path) for path in args.files]
        distribution_set = client.call("POST", "/distributionsets", [{
            "name": args.name, "version": args.version, "type": set_type,
            "modules": [{"id": module["id"]}]}])[0]
    except (CommandFailed, KeyboardInterrupt):
        # Leave nothing half made, so the same command can simply be run again.
        try:
            client.call("DELETE", "/softwaremodules/%d" % module["id"])
        except CommandFailed:
            pass
        raise
    if args.json:
        print_json({"softwareModule": module, "artifacts": artifacts,
                    "distributionSet": distribution_set})
    else:
        print(distribution_set["id"])


def _controller_id_of(assigned_action):
    """The target of an assignment result's action, from its self link."""
    href = assigned_action["_links"]["self"]["href"]
    return urllib.parse.unquote(href.rsplit("/actions/", 1)[0].rsplit("/targets/", 1)[-1])


def assign(args, client):
    if (args.type == "timeforced") != (args.forcetime is not None):
        raise CommandFailed("--forcetime goes with --type timeforced, and only with it", 2)
    # The server skips unknown targets silently; an operator wants to hear about them.
    for controller_id in args.targets:
        client.call("GET", "/targets/" + _segment(controller_id))
    request = []
    for controller_id in args.targets:
        assignment = {"id": controller_id, "type": args.type}
        if args.forcetime is not None:
            assignment["forcetime"] = args.forcetime
        request.append(assignment)
    result = client.call("POST", "/distributionsets/%d/assignedTargets" % args.set, request)
    if args.json:
        print_json(result)
        return
    print("assigned: %d, already assigned: %d" % (result["assigned"], result["alreadyAssigned"]))
    print_table([(_controller_id_of(action), action["id"])
                 for action in result["assignedActions"]], header=("TARGET", "ACTION"))


def actions(args, client):
    path = "/targets/%s/actions" % _segment(args.controller_id)
    history = []
    for listed in _all_pages(client, path):
        action = client.call("GET", "%s/%d" % (path, listed["id"]))
        newest = client.call("GET", "%s/%d/status" % (path, listed["id"]),
                             query={"offset": 0, "limit": 1, "sort": "id:DESC"})["content"]
        history.append({"action": action, "latestStatus": newest[0] if newest else None})
    if args.json:
        print_json(history)
        return
    rows = []
    for entry in history:
        action, latest = entry["action"], entry["latestStatus"] or {}
        rows.append((action["id"], action["status"], action["type"], action["forceType"],
                     action["_links"].get("distributionset", {}).get("name"),
                     (latest.get("messages") or [None])[-1]))
    print_table(rows, header=("ID", "STATUS", "TYPE", "FORCE", "SET", "LAST MESSAGE"))


def cancel(args, client):
    path = "/targets/%s/actions/%d" % (_segment(args.controller_id), args.action)
    if args.force:
        action = client.call("GET", path)
        # The server force-quits only an action that is already being cancelled.
        if action.get("active") and action.get("status") != "canceling":
            client.call("DELETE", path)
        client.call("DELETE", path, query={"force": "true"})
    else:
        client.call("DELETE", path)
    action = client.call("GET", path)
    if args.json:
        print_json(action)
    else:
        print("action %d of %s: %s" % (action["id"], args.controller_id, action["status"]))


def _config_rows(configs):
    return [(key, configs[key].get("value"), "default" if configs[key].get("global") else "set")
            for key in sorted(configs)]


def config_get(args, client):
    if args.key is None:
        configs = client.call("GET", "/system/configs")
        if args.json:
            print_json(configs)
        else:
            print_table(_config_rows(configs), header=("KEY", "VALUE", "SOURCE"))
        return
    value = client.call("GET", "/system/configs/" + _segment(args.key))
    if args.json:
        print_json(value)
    else:
        print(_text(value.get("value")))


def config_set(args, client):
    try:
        value = json.loads(args.value)
    except ValueError:
        value = args.value
    path = "/system/configs/" + _segment(args.key)
    client.call("PUT", path, {"value": value})
    stored = client.call("GET", path)
    if args.json:
        print_json(stored)
    else:
        print("%s = %s" % (args.key, _text(stored.get("value"))))


def run_operator_command(args):
    """Run one operator command; failures are one line on stderr and an exit code."""
    url = getattr(args, "url", None) or os.environ.get("DDI_LITE_URL") or \
        "http://localhost:8080"
    user = getattr(args, "user", None) or os.environ.get("DDI_LITE_USER") or "admin"
    password = getattr(args, "password", None)
    if password is None:
        password = os.environ.get("DDI_LITE_PASSWORD")
    args.json = getattr(args, "json", False)
    try:
        args.run(args, ManagementClient(url, user, password))
    except CommandFailed as failure:
        print("ddi-lite: %s" % failure, file=sys.stderr)
        return failure.exit_code
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        print("ddi-lite: unexpected answer from %s (%s: %s)" % (url, type(error).__name__, error),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _operator_options():
    """--url, --user, --password and --json, accepted before or after the command words."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("server connection (operator commands)")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="the ddi-lite server (env DDI_LITE_URL; http://localhost:8080)")
    group.add_argument("--user", default=argparse.SUPPRESS,
                       help="operator name (env DDI_LITE_USER; admin)")
    group.add_argument("--password", default=argparse.SUPPRESS,
                       help="operator password (env DDI_LITE_PASSWORD; asked on a terminal)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the server's JSON documents instead of tables")
    return options


def _add_operator_commands(commands):
    options = _operator_options()

    def command(parent, name, run, summary):
        parser = parent.add_parser(name, parents=[options], help=summary, description=summary)
        parser.set_defaults(run=run)
        return parser

    def group(name, summary, words):
        parser = commands.add_parser(name, parents=[options], help=summary,
                                     description=summary)
        return parser.add_subparsers(dest=name + "_command", metavar=words, required=True)

    targets = group("targets", "list, add, show or delete targets (devices)",
                    "{list,add,show,delete}")
    parser = command(targets, "list", targets_list, "list the targets")
    parser.add_argument("--query", metavar="RSQL", help='filter, e.g. "name==lab-*"')
    parser = command(targets, "add", targets_add,
                     "create a target and print its security token")
    parser.add_argument("controller_id", metavar="ID")
    parser.add_argument("--name", help="display name (default: the ID)")
    parser.add_argument("--token", help="security token (default: a random one)")
    parser = command(targets, "show", targets_show,
                     "show a target, its attributes and its assigned and installed sets")
    parser.add_argument("controller_id", metavar="ID")
    parser = command(targets, "delete", targets_delete, "delete a target and its actions")
    parser.add_argument("controller_id", metavar="ID")

    parser = command(commands, "upload", upload,
                     "upload files as one software module in a new distribution set; "
                     "print the set's id")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--name", required=True, help="name of the module and the set")
    parser.add_argument("--version", required=True, help="version of the module and the set")
    parser.add_argument("--type", default="os", metavar="KEY",
                        help="software module type: os (default) or application")
    parser.add_argument("--set-type", metavar="KEY",
                        help="distribution set type (default: os for os, app for application)")

    parser = command(commands, "assign", assign,
                     "assign a distribution set to targets; print the new actions")
    parser.add_argument("set", type=int, metavar="SET")
    parser.add_argument("targets", nargs="+", metavar="TARGET")
    parser.add_argument("--type", default="forced",
                        choices=("forced", "soft", "downloadonly", "timeforced"),
                        help="how the device should install it (default: forced)")
    parser.add_argument("--forcetime", type=int, metavar="EPOCH_MS",
                        help="with --type timeforced: when the update becomes forced")

    parser = command(commands, "actions", actions,
                     "list a target's actions, newest first, with their last status message")
    parser.add_argument("controller_id", metavar="TARGET")

    parser = command(commands, "cancel", cancel,
                     "cancel an action (the device confirms); --force closes it at once")
    parser.add_argument("controller_id", metavar="TARGET")
    parser.add_argument("action", type=int, metavar="ACTION")
    parser.add_argument("--force", action="store_true",
                        help="force-quit without the device (cancels first when needed)")

    config = group("config", "read or change the server's tenant configuration", "{get,set}")
    parser = command(config, "get", config_get, "print one configuration value, or all")
    parser.add_argument("key", nargs="?", metavar="KEY")
    parser = command(config, "set", config_set,
                     "change a configuration value (JSON such as true or 30, else text)")
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("value", metavar="VALUE")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ddi-lite", description=__doc__.splitlines()[0],
                                     parents=[_operator_options()])
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="run the server (the default command)")
    for command_parser in (parser, serve_parser):
        command_parser.add_argument("--config", metavar="FILE",
                                    help="settings file (default: ./config.ini if present)")
        _add_setting_flags(command_parser)
    passwd_parser = commands.add_parser(
        "passwd", help="set an operator's password in the settings file")
    passwd_parser.add_argument("user")
    passwd_parser.add_argument("--config", metavar="FILE", help="settings file (./config.ini)")
    _add_operator_commands(commands)
    _add_simulate_command(commands)
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return simulate(args)
    if getattr(args, "run", None) is not None:
        return run_operator_command(args)
    if args.command == "passwd":
        return passwd(args)
    if any(hasattr(args, name) for name in OPERATOR_OPTIONS):
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
