"""Bad input, deterministically fuzzed, on every route of the Device API and the Management API.

The project standard: bad input gets a clear 4xx with hawkBit's error body, never a 500 or a
traceback, and never loses or corrupts stored data. Each route is attacked, from a realistic
state (a target with a token and an open action with history, a module with an artifact, a
distribution set, metadata, attributes), with:

* methods the route does not have;
* path parameters replaced by hostile values (non-numbers, huge and negative numbers, `..%2F..`,
  NUL, 10 000 characters, unicode, invalid UTF-8);
* hostile query parameters (paging, sorting, RSQL garbage, booleans, enums);
* hostile headers (credentials, Accept, Range and conditional headers on downloads);
* bodies: malformed JSON, every wrong type at the top level and for each known field, values only
  CBOR can carry, CBOR garbage, wrong Content-Types, empty bodies, random bytes, truncation;
* CBOR items in every route that reads a body (each reads CBOR): integers up to 64 bits and
  bignums up to and past the JSON parser's 4300 digits, floats in half, single and double
  precision (NaN, infinities, subnormals), tags, simple values, byte strings, nesting, and keys
  that are not text. An item JSON cannot carry must be a 400 body.notReadable wherever it is;
* multipart uploads with broken boundaries, missing parts and truncated bodies.

Every answer must be below 500, carry a Content-Length (a 204 or 304 carries neither it nor a
body), never be an HTML page or a traceback, and a non-empty 4xx body must be JSON: hawkBit's
error body or the framework body.

Stored data: a rejected request (any status from 300 up) must leave every stored row (poll time
and address aside) and every blob file as it was, checked after each request. On the routes that
write, the Management API's views of the seeded entities (targets, the target, its actions and
an action's status list, modules, artifacts, sets, system configuration) are compared at the
end and every CHUNK requests, unless a request in between succeeded and changed data (then they
become the new baseline). What an accepted request wrote must stay readable: the Management API
view of it is read back at once (READBACK).

Each route starts from a fresh copy of one seeded data directory. To stay within a few seconds
each route gets a seeded random sample of the hostile values (every wrong JSON kind for every
field, though); the phases listed in EXHAUSTIVE get all of them on one route per shared parser.
Seeds are fixed, so every failure is reproducible from its description.
"""

import base64
import copy
import datetime
import decimal
import json
import os
import random
import shutil
import urllib.parse
import zlib

import bottle
import cbor2
import pytest
import webtest

import database as database_module
import ddi_lite
from service import configuration
import storage
from conftest import DEVICE, Server, token
from storage.accounts import Accounts
from storage.db import database
from storage.models import ALL_MODELS, Target

# WebTest's lint warns about the unusual methods sent on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")

SEED = 20240611
API = "/rest/v1"
ADMIN_AUTH = "Basic " + base64.b64encode(b"admin:admin").decode("ascii")
PAYLOAD = b"firmware image \x00\x01\x02\xff" * 64
CHUNK = 150  # requests between two comparisons of the Management API views

HAWKBIT_ERROR_KEYS = {"exceptionClass", "errorCode", "message", "info"}
NOT_READABLE = "hawkbit.server.error.rest.body.notReadable"
FRAMEWORK_ERROR_KEYS = {"timestamp", "status", "error"}
# Fields that legitimately change on reads and polls.
VOLATILE_KEYS = {"lastControllerRequestAt", "pollStatus", "address"}
VOLATILE_COLUMNS = {(Target, "last_target_query"), (Target, "address")}
STORED_QUERIES = [
    (model._meta.table_name, 'SELECT %s FROM "%s"' % (
        ", ".join('"%s"' % field.column_name for name, field in model._meta.fields.items()
                  if (model, name) not in VOLATILE_COLUMNS), model._meta.table_name))
    for model in ALL_MODELS]


def wsgi_text(text):
    """A header value as a WSGI server hands it over: the UTF-8 bytes read as latin-1."""
    return text.encode("utf-8").decode("latin-1")


# --- the route table, read from the app itself ---------------------------------------------------

def _installed_routes():
    config = configuration.Config({(setting.section, setting.key): setting.default
                              for setting in ddi_lite.SETTINGS}, "built-in defaults", {})
    app = bottle.Bottle()
    ddi_lite.DeviceApi(config, None).install(app)
    ddi_lite.ManagementApi(config, None, Accounts({})).install(app)
    return [(route.method, route.rule) for route in app.routes]


ROUTES = _installed_routes()
METHODS_OF = {}
for _method, _rule in ROUTES:
    METHODS_OF.setdefault(_rule, set()).add(_method)

D = ddi_lite.DEVICE_ROOT
LISTING = ("q", "sort", "offset", "limit")
# Query parameters each route reads (they get hostile values; the others a random mix).
READS = {
    ("GET", D + "/deploymentBase/<action_id>"): ("c", "actionHistory"),
    ("GET", D + "/confirmationBase/<action_id>"): ("c", "actionHistory"),
    ("GET", D + "/installedBase/<action_id>"): ("actionHistory",),
    ("GET", API + "/targets"): LISTING,
    ("GET", API + "/targets/<cid>/actions"): LISTING,
    ("DELETE", API + "/targets/<cid>/actions"): ("keepLast",),
    ("DELETE", API + "/targets/<cid>/actions/<aid>"): ("force",),
    ("GET", API + "/targets/<cid>/actions/<aid>/status"): ("sort", "offset", "limit"),
    ("POST", API + "/targets/<cid>/assignedDS"): ("offline",),
    ("GET", API + "/actions"): LISTING + ("representation",),
    ("DELETE", API + "/actions"): ("q",),
    ("GET", API + "/softwaremoduletypes"): LISTING,
    ("GET", API + "/distributionsettypes"): LISTING,
    ("GET", API + "/softwaremodules"): LISTING + ("soft_deleted_mode",),
    ("GET", API + "/softwaremodules/<sid>/artifacts"): ("representation",),
    ("POST", API + "/softwaremodules/<sid>/artifacts"): (
        "md5sum", "sha1sum", "sha256sum", "filename"),
    ("GET", API + "/distributionsets"): LISTING + ("soft_deleted_mode",),
    ("GET", API + "/distributionsets/<did>/assignedSM"): ("sort", "offset", "limit"),
    ("GET", API + "/distributionsets/<did>/assignedTargets"): LISTING,
    ("POST", API + "/distributionsets/<did>/assignedTargets"): ("offline",),
    ("GET", API + "/distributionsets/<did>/installedTargets"): LISTING,
    ("GET", API + "/targettags"): LISTING,
    ("GET", API + "/targettags/<tag>/assigned"): LISTING,
    ("POST", API + "/targettags/<tag>/assigned"): ("onNotFoundPolicy",),
    ("PUT", API + "/targettags/<tag>/assigned"): ("onNotFoundPolicy",),
    ("DELETE", API + "/targettags/<tag>/assigned"): ("onNotFoundPolicy",),
    ("GET", API + "/distributionsettags"): LISTING,
    ("GET", API + "/distributionsettags/<tag>/assigned"): LISTING,
    ("GET", API + "/targettypes"): LISTING,
    ("GET", API + "/targetfilters"): LISTING + ("representation",),
    ("GET", API + "/distributionsets/<did>/autoAssignTargetFilters"): LISTING,
    ("GET", API + "/rollouts"): LISTING + ("representation",),
    ("GET", API + "/rollouts/<rid>/deploygroups"): LISTING,
    ("GET", API + "/rollouts/<rid>/deploygroups/<gid>/targets"): LISTING,
    ("POST", API + "/rollouts/<rid>/approve"): ("remark",),
    ("POST", API + "/rollouts/<rid>/deny"): ("remark",),
}
QUERY_PARAMS = ("offset", "limit", "sort", "q", "c", "actionHistory", "force", "offline",
                "keepLast", "representation", "soft_deleted_mode", "filename", "md5sum",
                "onNotFoundPolicy")


def _window():
    return {"schedule": "0 0 3 ? * *", "duration": "01:00:00", "timezone": "+00:00"}


def _feedback(s):
    return {"id": s.action_id, "time": "20240101T000000", "timestamp": 1700000000000,
            "status": {"execution": "proceeding",
                       "result": {"finished": "none", "progress": {"cnt": 1, "of": 3}},
                       "details": ["fuzzing"], "code": 7}}


# A realistic body per body-reading route; every field of it is fuzzed.
TEMPLATES = {
    ("PUT", D + "/configData"): lambda s: {"mode": "merge", "data": {"hw": "rev2", "n": "1"}},
    ("POST", D + "/deploymentBase/<action_id>/feedback"): _feedback,
    ("POST", D + "/cancelAction/<action_id>/feedback"): lambda s: {
        "status": {"execution": "closed", "result": {"finished": "success"}, "details": ["x"]}},
    ("PUT", D + "/installedBase"): lambda s: {"name": "fw-set", "version": "1.0"},
    ("POST", D + "/confirmationBase/activateAutoConfirm"):
        lambda s: {"initiator": "device", "remark": "fuzz"},
    ("POST", D + "/confirmationBase/<action_id>/feedback"):
        lambda s: {"confirmation": "confirmed", "code": 3, "details": ["ok"]},
    ("POST", API + "/targets"): lambda s: [{
        "controllerId": "fuzz-new", "name": "New", "description": "d", "securityToken": "tok",
        "address": "http://192.0.2.1", "group": "g", "targetType": None}],
    ("PUT", API + "/targets/<cid>"): lambda s: {
        "name": "Device one", "description": "d", "securityToken": "token-1",
        "address": "http://192.0.2.10", "group": "g", "requestAttributes": True,
        "targetType": -1},
    # (The maintenance window parser is shared with assignedTargets, fuzzed there.)
    ("POST", API + "/targets/<cid>/assignedDS"): lambda s: {
        "id": s.spare_set_id, "type": "timeforced", "forcetime": 1700000000000, "weight": 500,
        "confirmationRequired": False},
    ("POST", API + "/targets/<cid>/autoConfirm/activate"):
        lambda s: {"initiator": "operator", "remark": "r"},
    ("POST", API + "/targets/<cid>/metadata"): lambda s: [{"key": "k2", "value": "v"}],
    ("PUT", API + "/targets/<cid>/metadata/<key>"): lambda s: {"value": "v2"},
    ("DELETE", API + "/targets/<cid>/actions"): lambda s: [s.action_id],
    ("PUT", API + "/targets/<cid>/actions/<aid>"): lambda s: {"forceType": "forced"},
    ("PUT", API + "/targets/<cid>/actions/<aid>/confirmation"):
        lambda s: {"confirmation": "confirmed", "code": 200, "details": ["d"]},
    ("DELETE", API + "/actions"): lambda s: [s.action_id],
    ("POST", API + "/softwaremodules"): lambda s: [{
        "name": "new", "version": "1", "type": "os", "vendor": "v", "description": "d",
        "encrypted": False}],
    ("PUT", API + "/softwaremodules/<sid>"):
        lambda s: {"description": "d", "vendor": "v", "locked": True},
    ("POST", API + "/softwaremodules/<sid>/metadata"):
        lambda s: [{"key": "k2", "value": "v", "targetVisible": True}],
    ("PUT", API + "/softwaremodules/<sid>/metadata/<key>"):
        lambda s: {"value": "v", "targetVisible": False},
    ("POST", API + "/distributionsets"): lambda s: [{
        "name": "new", "version": "1", "type": "os_app", "description": "d",
        "modules": [{"id": s.spare_module_id}], "application": {"id": s.app_module_id},
        "requiredMigrationStep": False}],
    ("PUT", API + "/distributionsets/<did>"): lambda s: {
        "name": "fw-set", "version": "1.0", "description": "d", "locked": True,
        "requiredMigrationStep": False},
    ("POST", API + "/distributionsets/<did>/assignedSM"): lambda s: [{"id": s.app_module_id}],
    ("POST", API + "/distributionsets/<did>/assignedTargets"): lambda s: [{
        "id": "dev-2", "type": "soft", "forcetime": 0, "weight": 10,
        "confirmationRequired": False, "maintenanceWindow": _window()}],
    ("POST", API + "/distributionsets/<did>/metadata"): lambda s: [{"key": "k2", "value": "v"}],
    ("PUT", API + "/distributionsets/<did>/metadata/<key>"): lambda s: {"value": "v"},
    ("PUT", API + "/system/configs"): lambda s: {
        "pollingTime": "00:10:00", "authentication.targettoken.enabled": True,
        "maintenanceWindowPollCount": 3},
    ("PUT", API + "/system/configs/<key>"): lambda s: {"value": "00:10:00"},
    # tags, target types, writes on module and set types
    ("POST", API + "/targettags"):
        lambda s: [{"name": "new-tag", "description": "d", "colour": "#ff0000"}],
    ("PUT", API + "/targettags/<tag>"):
        lambda s: {"name": "renamed", "description": "d", "colour": "blue"},
    ("POST", API + "/targettags/<tag>/assigned"):
        lambda s: ["dev-2", {"controllerId": "dev-1"}],
    ("PUT", API + "/targettags/<tag>/assigned"): lambda s: ["dev-2"],
    ("DELETE", API + "/targettags/<tag>/assigned"): lambda s: ["dev-1"],
    ("POST", API + "/distributionsettags"):
        lambda s: [{"name": "new-tag", "description": "d", "colour": "#00ff00"}],
    ("PUT", API + "/distributionsettags/<tag>"):
        lambda s: {"name": "renamed", "description": "d", "colour": "green"},
    ("POST", API + "/distributionsettags/<tag>/assigned"):
        lambda s: [s.spare_set_id, {"distributionSetId": s.set_id}],
    ("DELETE", API + "/distributionsettags/<tag>/assigned"): lambda s: [s.set_id],
    ("POST", API + "/targettypes"): lambda s: [{
        "key": "new-type", "name": "New type", "description": "d", "colour": "c",
        "compatibledistributionsettypes": [{"id": s.set_type_id}]}],
    ("PUT", API + "/targettypes/<tid>"):
        lambda s: {"name": "renamed", "description": "d", "colour": "c"},
    ("POST", API + "/targettypes/<tid>/compatibledistributionsettypes"):
        lambda s: [{"id": s.set_type_id}],
    ("POST", API + "/targets/<cid>/targettype"): lambda s: {"id": s.target_type_id},
    ("POST", API + "/softwaremoduletypes"): lambda s: [{
        "key": "runtime", "name": "Runtime", "description": "d", "colour": "c",
        "maxAssignments": 1, "minArtifacts": 0}],
    ("PUT", API + "/softwaremoduletypes/<tid>"): lambda s: {"description": "d", "colour": "c"},
    ("POST", API + "/distributionsettypes"): lambda s: [{
        "key": "rt", "name": "Runtime set", "description": "d", "colour": "c",
        "mandatorymodules": [{"id": s.module_type_id}],
        "optionalmodules": [{"id": s.app_type_id}]}],
    ("PUT", API + "/distributionsettypes/<tid>"): lambda s: {"description": "d", "colour": "c"},
    ("POST", API + "/distributionsettypes/<tid>/mandatorymoduletypes"):
        lambda s: {"id": s.app_type_id},
    ("POST", API + "/distributionsettypes/<tid>/optionalmoduletypes"):
        lambda s: [{"id": s.module_type_id}],
    ("POST", API + "/targetfilters"): lambda s: {"name": "fuzz-filter", "query": "name==dev-*"},
    ("PUT", API + "/targetfilters/<fid>"): lambda s: {
        "name": "seeded-filter", "query": "controllerId==dev-*"},
    ("POST", API + "/targetfilters/<fid>/autoAssignDS"): lambda s: {
        "id": s.spare_set_id, "type": "soft", "weight": 500, "confirmationRequired": False},
    ("POST", API + "/rollouts"): lambda s: {
        "name": "fuzz-rollout", "description": "d", "distributionSetId": s.set_id,
        "targetFilterQuery": "controllerId==dev-*", "type": "soft", "weight": 500,
        "startAt": 4102444800000, "confirmationRequired": False,
        "successCondition": {"condition": "THRESHOLD", "expression": "50"},
        "successAction": {"action": "NEXTGROUP", "expression": ""},
        "errorCondition": {"condition": "THRESHOLD", "expression": "50"},
        "errorAction": {"action": "PAUSE", "expression": ""},
        "groups": [{"name": "first", "targetFilterQuery": "controllerId==dev-1",
                    "targetPercentage": 100},
                   {"name": "rest", "targetPercentage": 100}]},
    ("PUT", API + "/rollouts/<rid>"): lambda s: {"name": "seeded-rollout", "description": "d"},
}
# Routes that may read a body although no template describes it (or that must ignore one).
BODY_ROUTES = set(TEMPLATES) | {
    ("POST", D + "/confirmationBase/deactivateAutoConfirm"),
    ("POST", API + "/targets/<cid>/autoConfirm/deactivate"),
    ("POST", API + "/targettags/<tag>/assigned/<cid>"),
    ("POST", API + "/distributionsettags/<tag>/assigned/<did>"),
} | {("POST", API + "/rollouts/<rid>/" + verb) for verb in (
    "start", "pause", "resume", "stop", "triggerNextGroup", "approve", "deny", "retry")}
UPLOAD_ROUTE = ("POST", API + "/softwaremodules/<sid>/artifacts")
DOWNLOAD_ROUTES = {("GET", D + "/softwaremodules/<module_id>/artifacts/<filename>"),
                   ("GET", API + "/softwaremodules/<sid>/artifacts/<aid>/download")}
# Phases fuzzed with every hostile value instead of a sample, on one route per shared parser.
EXHAUSTIVE = {
    ("PUT", D + "/configData"): {"bodies", "cbor"},
    ("POST", D + "/deploymentBase/<action_id>/feedback"): {"bodies", "cbor"},
    ("GET", D + "/deploymentBase/<action_id>"): {"path parameters", "query parameters"},
    ("GET", D + "/softwaremodules/<module_id>/artifacts/<filename>"): {"headers"},
    ("GET", API + "/targets"): {"query parameters"},
    ("GET", API + "/targets/<cid>"): {"path parameters", "headers"},
    ("GET", API + "/softwaremodules/<sid>/artifacts/<aid>"): {"path parameters"},
    ("PUT", API + "/targets/<cid>"): {"bodies", "cbor"},
    UPLOAD_ROUTE: {"multipart", "query parameters"},
}


# --- hostile values ------------------------------------------------------------------------------

HUGE = "99999999999999999999"
LONG = "x" * 10000
# As they appear in a URL (percent-encoded where a raw character could not be sent).
PATH_VALUES = (
    "abc", "-1", "0", "1.5", "1e3", "+1", "0x1F", HUGE, "9223372036854775808",
    "-9223372036854775809", "9223372036854775807", "..%2F..", "..", "%2E%2E%2F%2E%2E%2Fetc",
    "%00", "a%00b", LONG, urllib.parse.quote("\u00fc\u2603\U0001F600", safe=""), "%ff",
    "%C0%AF", "%", "%20", "null", "%5B%5D", "'%3B--", "%2A", "%3Cscript%3E",
)
QUERY_VALUES = ("", "-1", "0", "abc", HUGE, "-" + HUGE, "9223372036854775808", "1.5", "%00",
                "%ff", LONG, urllib.parse.quote("\u2603\u00fc", safe=""), "true", "TRUE", "%5B%5D",
                "a=b", "%26", "%3D%3D")
RSQL_ATOMS = ("name", "controllerId", "id", "updateStatus", "attribute.hw", "metadata.k",
              "assignedds.name", "installedds.version", "status", "target.controllerId",
              "lastmodifiedat", "type", "x" * 300, "==", "!=", "=in=", "=out=", "=lt=", "=ge=",
              "=like=", "=is=", "=not=", "=", "(", ")", ";", ",", "'", '"', "*", "\\", "%",
              "_", "a b", "\u2603", "\x00", "1", "-1", HUGE, "1.5", "true", "null", "and", "or",
              "(((((", ")))))", "'''", "=in=(", "==*")
RSQL_FIXED = ("name==" + LONG, "name==*\\", "attribute.hw=='x", "id==" + HUGE,
              "id=lt=" + HUGE, "(" * 5000 + "name==a" + ")" * 5000,
              ";".join(["name==a"] * 200), "name=in=(" + ",".join(["a"] * 500) + ")")
SORT_VALUES = ("name:ASC", "name:sideways", "nope:ASC", ":", ",,,", "name:ASC,id", "name",
               "id:DESC,", "name:asc:desc", LONG, "\u2603:ASC", "\x00")
ACCEPTS = ("text/html", "application/xml", "*/*;q=abc", "application/json;q=0", "application/cbor",
           "text/plain", "image/*", ",,,;;;", "application/json;q=1e400", LONG)
BAD_AUTH = ("Basic", "Basic ====", "Basic !!!",
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "Basic " + base64.b64encode(b"admin").decode(),
            "Basic " + base64.b64encode(b"OTHER\\admin:admin").decode(),
            "Bearer x", "TargetToken", "TargetToken " + LONG, "TargetToken token-2",
            "GatewayToken ", "GatewayToken x", "\u00ff\u00fe")
# Wrong passwords cost a full password hash each (on purpose): exhaustive routes only.
SLOW_AUTH = ("Basic " + base64.b64encode("admin:\u2603".encode("utf-8") + b"a" * 5000).decode(),)
OTHER_HEADERS = (("If-None-Match", '"0' + LONG + '"'), ("If-None-Match", ",,,"),
                 ("X-Forwarded-For", wsgi_text("\u2603, %00")), ("Host", LONG),
                 ("X-Forwarded-Host", "[::1"), ("Host", "[::1"), ("Host", ":::"))
RANGES = ("bytes=99999999999999999999-", "bytes=-0", "bytes=5-1", "bytes=a-b", "bytes=",
          "bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7", "bytes=-" + HUGE, "items=0-1", "bytes=0-1,",
          "bytes=" + ",".join(["0-1"] * 2000), "bytes=1-2-3", wsgi_text("bytes=\u2603"))

# Wrong values for any JSON field, by kind: each field gets every kind.
WRONG_KINDS = (
    ("null", (None,)),
    ("number", (0, -1, 1.5, -0.0, 2 ** 63)),
    ("string", ("", "   ", "NaN", "\u2603\u0000", "../../etc/passwd")),
    ("lone surrogate", ("\ud800", "a\udfff")),
    ("bool", (True, False)),
    ("list", ([], [None], [1, "a", None])),
    ("object", ({}, {"a": {"b": [1, {"c": None}]}})),
    ("huge string", (LONG,)),
    ("huge int", (10 ** 30, -(10 ** 30))),
)
WRONG_VALUES = tuple(value for _, values in WRONG_KINDS for value in values)
# Spelled into the JSON text: not JSON, or numbers Python reads as infinities or beyond limits.
RAW_TOKENS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "1" * 5000)
# Values only CBOR can carry.
CBOR_VALUES = (b"\x00\xff", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
               decimal.Decimal("1.5"), cbor2.CBORTag(999, "x"), cbor2.undefined,
               cbor2.CBORSimpleValue(99), frozenset([1]), 2 ** 100, float("nan"), float("inf"),
               {1: "a"}, {b"k": "v"})
DEEP_JSON = (b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000 + b"1" + b"}" * 50000)
RAW_BODIES = DEEP_JSON + (
    b"{", b"[", b'{"a":', b"nul", b"{'a': 1}", b"NaN", b"[NaN]", b"Infinity", b"1e400",
    b'{"value": NaN}', b"\xff\xfe\x00", b'"\xff"', b"\x00" * 10, b"1" * 5000,
    b'"' + LONG.encode() + b'"', b'{"a":1,"a":2}', b"\xef\xbb\xbf{}", b"{}garbage", b" ",
    b"\r\n", b"null", b"0", b"true", b'"text"', b"[]", b"{}", b"[[[]]]", b'{"": null}',
    "\u2603".encode("utf-16"),
)
CBOR_GARBAGE = (b"\xa1", b"\xff", b"\x1f", b"\x5f\x41", b"\x81" * 100000 + b"\x00",
                b"\xd9\xd9\xf7", b"\x9f" * 1000, b"\xbf\x61a", b"\xc1\x61x",
                b"\xd8\x1e\x82\x01\x00", b"\xd8\x23\x63(((", b"\xd9\x01\x02\x41\x00",
                b"\xa1\x81\x00\x01", b"\xa1\xa0\x00", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",
                b"\x1b" + b"\xff" * 8, b"\x3b" + b"\xff" * 8, b"\xc2\x58\x40" + b"\xff" * 64)
CONTENT_TYPES = ("text/plain", "application/xml", "multipart/form-data",
                 "application/x-www-form-urlencoded", "garbage", "application/json;;;", ";",
                 "application/json; charset=latin-1", "application/octet-stream",
                 "application/hal+json", "APPLICATION/JSON", "application/cbor; x=y", LONG)

# CBOR items for the "cbor" phase, as (what, encoding, whether JSON can carry the value). Every
# route that reads a body reads CBOR too (read_body); each item goes into its fields, and an item
# JSON cannot carry must be a 400 body.notReadable wherever it stands, with nothing stored.
CBOR_ITEMS = (
    # integers: CBOR's own go to 64 bits either way; bignums (tags 2 and 3) beyond
    ("the largest unsigned 64-bit integer", b"\x1b" + b"\xff" * 8, True),
    ("the smallest negative CBOR integer, -2**64", b"\x3b" + b"\xff" * 8, True),
    ("bignum 2**64", b"\xc2\x49\x01" + b"\x00" * 8, True),
    ("negative bignum -2**64-1", b"\xc3\x49\x01" + b"\x00" * 8, True),
    ("empty bignum", b"\xc2\x40", True),
    ("bignum 2**100", cbor2.dumps(2 ** 100), True),
    ("bignum of 4300 digits", cbor2.dumps(10 ** 4300 - 1), True),
    ("bignum of 4301 digits", cbor2.dumps(10 ** 4300), False),
    ("bignum 10**4400", cbor2.dumps(10 ** 4400), False),
    ("negative bignum -10**4400", cbor2.dumps(-(10 ** 4400)), False),
    ("bignum of 64 KiB", b"\xc2\x5a\x00\x01\x00\x00" + b"\xff" * 65536, False),
    ("bignum of text", b"\xc2\x61a", False),
    # floats in the three widths
    ("half-precision 1.5", b"\xf9\x3e\x00", True),
    ("half-precision -0.0", b"\xf9\x80\x00", True),
    ("half-precision largest, 65504", b"\xf9\x7b\xff", True),
    ("half-precision smallest subnormal", b"\xf9\x00\x01", True),
    ("half-precision NaN", b"\xf9\x7e\x00", False),
    ("half-precision infinity", b"\xf9\x7c\x00", False),
    ("half-precision -infinity", b"\xf9\xfc\x00", False),
    ("single-precision largest", b"\xfa\x7f\x7f\xff\xff", True),
    ("single-precision NaN", b"\xfa\x7f\xc0\x00\x00", False),
    ("single-precision signalling NaN", b"\xfa\x7f\x80\x00\x01", False),
    ("single-precision infinity", b"\xfa\x7f\x80\x00\x00", False),
    ("single-precision -infinity", b"\xfa\xff\x80\x00\x00", False),
    ("double-precision largest", b"\xfb\x7f\xef" + b"\xff" * 6, True),
    ("double-precision smallest subnormal", b"\xfb" + b"\x00" * 7 + b"\x01", True),
    ("double-precision NaN with payload", b"\xfb\x7f\xf8" + b"\x00" * 5 + b"\x01", False),
    ("double-precision infinity", b"\xfb\x7f\xf0" + b"\x00" * 6, False),
    ("double-precision -infinity", b"\xfb\xff\xf0" + b"\x00" * 6, False),
    # tags
    ("date/time string (tag 0)", cbor2.dumps(datetime.datetime(2024, 1, 1,
                                                               tzinfo=datetime.timezone.utc)),
     False),
    ("epoch date/time (tag 1)", b"\xc1\x1a\x65\x92\x00\x00", False),
    ("epoch date/time beyond year 9999 (tag 1)", b"\xc1\x1b\x7f" + b"\xff" * 7, False),
    ("decimal fraction (tag 4)", cbor2.dumps(decimal.Decimal("1.5")), False),
    ("decimal fraction with a huge exponent (tag 4)", b"\xc4\x82\x1b\x7f" + b"\xff" * 7 + b"\x01",
     False),
    ("bigfloat (tag 5)", b"\xc5\x82\x20\x03", False),
    ("bigfloat with a huge exponent (tag 5)", b"\xc5\x82\x1b\x7f" + b"\xff" * 7 + b"\x01",
     False),
    ("expected base64 conversion (tag 22)", b"\xd6\x41\x00", False),
    ("embedded CBOR (tag 24)", b"\xd8\x18\x41\x00", False),
    ("rational (tag 30)", b"\xd8\x1e\x82\x01\x03", False),
    ("rational with a zero denominator (tag 30)", b"\xd8\x1e\x82\x01\x00", False),
    ("URI (tag 32)", b"\xd8\x20\x63a:b", False),
    ("regular expression (tag 35)", b"\xd8\x23\x62a+", False),
    ("MIME message (tag 36)", b"\xd8\x24\x63a:b", False),
    ("UUID (tag 37)", b"\xd8\x25\x50" + b"\x01" * 16, False),
    ("set (tag 258)", b"\xd9\x01\x02\x81\x01", False),
    ("IPv4 address (tag 52)", b"\xd8\x34\x44\x7f\x00\x00\x01", False),
    ("unknown tag 1000", b"\xd9\x03\xe8\x61x", False),
    ("the largest tag number", b"\xdb" + b"\xff" * 8 + b"\x61x", False),
    ("self-described text (tag 55799)", b"\xd9\xd9\xf7\x61x", True),
    ("shared text (tag 28)", b"\xd8\x1c\x61x", True),
    ("array that contains itself (tags 28, 29)", b"\xd8\x1c\x81\xd8\x1d\x00", False),
    ("reference to nothing shared (tag 29)", b"\xd8\x1d\x05", False),
    ("string reference namespace (tag 256)", b"\xd9\x01\x00\x61x", True),
    ("string reference to nothing (tag 25)", b"\xd8\x19\x05", False),
    ("300 nested unknown tags", b"\xd9\x03\xe8" * 300 + b"\x00", False),
    # simple values, byte and text strings
    ("undefined", b"\xf7", False),
    ("simple value 16", b"\xf0", False),
    ("simple value 255", b"\xf8\xff", False),
    ("false in two bytes", b"\xf8\x14", False),
    ("byte string", b"\x42\x00\xff", False),
    ("empty byte string", b"\x40", False),
    ("indefinite-length byte string", b"\x5f\x41\x00\xff", False),
    ("indefinite-length text", b"\x7f\x61a\x61b\xff", True),
    ("text of invalid UTF-8", b"\x62\xc3\x28", False),
    ("text of an encoded lone surrogate", b"\x63\xed\xa0\x80", False),
    # nesting: the decoder allows 400 levels
    ("text in arrays 300 deep", b"\x81" * 300 + b"\x61x", True),
    ("arrays 1000 deep", b"\x81" * 1000 + b"\x00", False),
    ("maps 1000 deep", b"\xa1\x61a" * 1000 + b"\x00", False),
    ("indefinite-length arrays 1000 deep", b"\x9f" * 1000 + b"\xff" * 1000, False),
)
# Map keys JSON cannot carry (a JSON object's keys are text).
CBOR_KEYS = (("integer", b"\x07"), ("byte string", b"\x41k"), ("null", b"\xf6"),
             ("true", b"\xf5"), ("NaN", b"\xf9\x7e\x00"), ("1.5", b"\xf9\x3e\x00"),
             ("epoch date/time", b"\xc1\x01"), ("array", b"\x81\x00"), ("map", b"\xa0"),
             ("bignum", cbor2.dumps(2 ** 100)), ("undefined", b"\xf7"))


# --- seeded state --------------------------------------------------------------------------------

class State:
    """Ids of the seeded entities."""


def seed(server):
    http = server.http
    s = State()
    server.target("dev-1", "token-1", description="the fuzzed device")
    server.target("dev-2", "token-2")
    module = server.module(name="fw", version="1.0", files={"fw.swu": PAYLOAD})
    spare = server.module(name="fw-spare", version="2.0", files={"spare.swu": b"spare" * 10})
    app = server.module(name="app", version="1.0", type_key="application",
                        files={"app.bin": b"app" * 10})
    distribution_set = server.distribution_set([module], name="fw-set", version="1.0")
    spare_set = server.distribution_set([spare], name="spare-set", version="2.0")
    action = server.assign(distribution_set, "dev-1")
    s.action_id, s.module_id, s.set_id = action.id, module.id, distribution_set.id
    s.spare_module_id, s.app_module_id, s.spare_set_id = spare.id, app.id, spare_set.id
    device = DEVICE + "/dev-1"
    http.put_json(device + "/configData", {"data": {"hw": "rev1"}}, headers=token())
    http.post_json(device + "/deploymentBase/%d/feedback" % s.action_id, {
        "status": {"execution": "proceeding", "result": {"finished": "none"},
                   "details": ["downloading"]}}, headers=token())
    admin = {"Authorization": ADMIN_AUTH}
    http.post_json(API + "/targets/dev-1/metadata", [{"key": "meta-key", "value": "v"}],
                   headers=admin)
    http.post_json(API + "/softwaremodules/%d/metadata" % s.module_id,
                   [{"key": "meta-key", "value": "v", "targetVisible": True}], headers=admin)
    http.post_json(API + "/distributionsets/%d/metadata" % s.set_id,
                   [{"key": "meta-key", "value": "v"}], headers=admin)
    s.artifact_id = http.get(API + "/softwaremodules/%d/artifacts" % s.module_id,
                             headers=admin).json[0]["id"]
    module_types = http.get(API + "/softwaremoduletypes", headers=admin).json["content"]
    s.module_type_id = next(t["id"] for t in module_types if t["key"] == "os")
    s.app_type_id = next(t["id"] for t in module_types if t["key"] == "application")
    set_types = http.get(API + "/distributionsettypes", headers=admin).json["content"]
    s.set_type_id = next(t["id"] for t in set_types if t["key"] == "os_app")
    # os_app's twin that no set has: its module types may still change.
    s.free_set_type_id = http.post_json(API + "/distributionsettypes", [{
        "key": "free", "name": "Free", "mandatorymodules": [{"id": s.module_type_id}],
        "optionalmodules": [{"id": s.app_type_id}]}], headers=admin).json[0]["id"]
    s.target_tag_id = http.post_json(API + "/targettags", [{"name": "line-1"}],
                                     headers=admin).json[0]["id"]
    http.post_json(API + "/targettags/%d/assigned" % s.target_tag_id, ["dev-1"],
                   headers=admin)
    s.set_tag_id = http.post_json(API + "/distributionsettags", [{"name": "stable"}],
                                  headers=admin).json[0]["id"]
    http.post_json(API + "/distributionsettags/%d/assigned" % s.set_tag_id, [s.set_id],
                   headers=admin)
    s.target_type_id = http.post_json(API + "/targettypes", [{
        "name": "gateway", "compatibledistributionsettypes": [{"id": s.set_type_id}]}],
        headers=admin).json[0]["id"]
    s.filter_id = http.post_json(API + "/targetfilters", {
        "name": "seeded-filter", "query": "controllerId==dev-*"}, headers=admin).json["id"]
    s.rollout_id = http.post_json(API + "/rollouts", {
        "name": "seeded-rollout", "distributionSetId": s.spare_set_id,
        "targetFilterQuery": "controllerId==dev-2"}, headers=admin).json["id"]
    s.group_id = http.get(API + "/rollouts/%d/deploygroups" % s.rollout_id,
                          headers=admin).json["content"][0]["id"]
    return s


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory):
    """The seeded data directory, built once; every test works on a copy of it."""
    data_dir = str(tmp_path_factory.mktemp("bad-input") / "data")
    server = Server(ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": data_dir, "server.trusted_proxies": ""}))
    server.configure(**{"authentication.targettoken.enabled": True})
    state = seed(server)
    # Every copy starts from these views (taken once: the copies are identical).
    state.views = {path: view[:2] for path, view in management_views(server.http, state).items()}
    storage.close_store()
    return data_dir, state


@pytest.fixture
def seeded(tmp_path, seeded_template):
    template_dir, state = seeded_template
    data_dir = str(tmp_path / "data")
    shutil.copytree(template_dir, data_dir)
    if database_module.ON_POSTGRES:  # the rows are not in the directory: copy them too
        storage.open_store(data_dir, 0)
        storage.close_store()
        database_module.copy_rows(template_dir, data_dir)
    server = Server(ddi_lite.load_config(path=None, environ={}, overrides={
        "server.data_dir": data_dir, "server.trusted_proxies": ""}))
    yield server, state
    storage.close_store()


def fill(rule, s, override=None):
    """The URL of `rule` with the seeded ids; `override` = (name, raw URL text)."""
    values = {
        "tenant": "DEFAULT", "controller_id": "dev-1", "cid": "dev-1",
        "action_id": str(s.action_id), "module_id": str(s.module_id), "filename": "fw.swu",
        "sid": str(s.module_id), "did": str(s.set_id), "fid": str(s.filter_id),
        "aid": str(s.artifact_id if "/artifacts/<aid>" in rule else s.action_id),
        "tid": str(s.module_type_id if rule.startswith(API + "/softwaremoduletypes")
                   else s.target_type_id if rule.startswith(API + "/targettypes")
                   else s.free_set_type_id),
        "dtid": str(s.set_type_id),
        "tag": str(s.target_tag_id if rule.startswith(API + "/targettags")
                   else s.set_tag_id),
        "mid": str(s.app_type_id if "optional" in rule else s.module_type_id),
        "key": "pollingTime" if rule.startswith(API + "/system/configs") else "meta-key",
        "rid": str(s.rollout_id), "gid": str(s.group_id),
    }
    path = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            name = part[1:-1]
            if override is not None and override[0] == name:
                part = override[1]
            else:
                part = urllib.parse.quote(values[name], safe="")
        path.append(part)
    return "/".join(path)


# What an accepted write must leave readable: the Management API view of what it wrote
# (the first rule prefix that matches).
READBACK = (
    (D + "/configData", "/targets/dev-1/attributes"),
    (D + "/confirmationBase/activateAutoConfirm", "/targets/dev-1/autoConfirm"),
    (D + "/installedBase", "/targets/dev-1/actions?limit=500"),
    (D + "/", "/targets/dev-1/actions/{action}/status?limit=500"),
    (API + "/targets/<cid>/autoConfirm", "/targets/dev-1/autoConfirm"),
    (API + "/targets/<cid>/metadata", "/targets/dev-1/metadata"),
    (API + "/targets/<cid>/actions/<aid>/confirmation",
     "/targets/dev-1/actions/{action}/status?limit=500"),
    (API + "/targets/<cid>/actions", "/targets/dev-1/actions?limit=500"),
    (API + "/targets/<cid>/assignedDS", "/targets/dev-1/actions?limit=500"),
    (API + "/targets/<cid>", "/targets/dev-1"),
    (API + "/targets", "/targets?limit=500"),
    (API + "/actions", "/actions?limit=500"),
    (API + "/softwaremodules/<sid>/metadata", "/softwaremodules/{module}/metadata"),
    (API + "/softwaremodules/<sid>/artifacts", "/softwaremodules/{module}/artifacts"),
    (API + "/softwaremodules", "/softwaremodules?limit=500"),
    (API + "/distributionsets/<did>/metadata", "/distributionsets/{set}/metadata"),
    (API + "/distributionsets/<did>/assignedSM", "/distributionsets/{set}/assignedSM"),
    (API + "/distributionsets/<did>/assignedTargets", "/targets/dev-2/actions?limit=500"),
    (API + "/distributionsets", "/distributionsets?limit=500"),
    (API + "/system/configs", "/system/configs"),
    (API + "/targettags/<tag>/assigned", "/targettags/{target_tag}/assigned?limit=500"),
    (API + "/targettags", "/targettags?limit=500"),
    (API + "/distributionsettags/<tag>/assigned",
     "/distributionsettags/{set_tag}/assigned?limit=500"),
    (API + "/distributionsettags", "/distributionsettags?limit=500"),
    (API + "/targettypes/<tid>/compatibledistributionsettypes",
     "/targettypes/{target_type}/compatibledistributionsettypes"),
    (API + "/targettypes", "/targettypes?limit=500"),
    (API + "/softwaremoduletypes", "/softwaremoduletypes?limit=500"),
    (API + "/distributionsettypes", "/distributionsettypes?limit=500"),
    (API + "/targetfilters", "/targetfilters?limit=500"),
    (API + "/rollouts", "/rollouts?limit=500&representation=full"),
)


def readback_path(rule, s):
    for prefix, path in READBACK:
        if rule.startswith(prefix):
            return path.format(action=s.action_id, module=s.module_id, set=s.set_id,
                               target_tag=s.target_tag_id, set_tag=s.set_tag_id,
                               target_type=s.target_type_id)
    return None


def management_views(http, s):
    """The Management API's views of the seeded entities: path -> (status, document, log)."""
    paths = ["/targets?limit=500", "/targets/dev-1", "/targets/dev-1/actions?limit=500",
             "/targets/dev-1/actions/%d/status?limit=500" % s.action_id,
             "/softwaremodules?limit=500", "/softwaremodules/%d/artifacts" % s.module_id,
             "/distributionsets?limit=500", "/system/configs", "/targetfilters?limit=500",
             "/rollouts?limit=500&representation=full"]
    views = {}
    for path in paths:
        response = http.get(API + path, headers={"Authorization": ADMIN_AUTH},
                            expect_errors=True)
        try:
            document = _strip(response.json) if response.body else None
        except ValueError:
            document = response.body
        views[path] = (response.status_int, document, response.errors.strip())
    return views


def parameters(rule):
    return [part[1:-1] for part in rule.split("/") if part.startswith("<")]


# --- helpers -------------------------------------------------------------------------------------

def _strip(document):
    if isinstance(document, dict):
        return {k: _strip(v) for k, v in document.items() if k not in VOLATILE_KEYS}
    if isinstance(document, list):
        return [_strip(v) for v in document]
    return document


def _short(data, limit=160):
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def _paths(value, path=()):
    """Every path into a template, containers included, the root excluded."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,)
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield path + (index,)
            yield from _paths(item, path + (index,))


def _replace(document, path, value):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def _at(document, path):
    for step in path:
        document = document[step]
    return document


def _remove(document, path):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return document


CBOR_MARKER = "@@cbor@@"


def _cbor_with(document, raw, path=None, key_of=None):
    """`document` as CBOR with the raw CBOR item `raw` as the value at `path`, or as the key of
    one more member of the object at `key_of`."""
    if key_of is not None:
        document = copy.deepcopy(document)
        target = document
        for step in key_of:
            target = target[step]
        target[CBOR_MARKER] = "v"
    else:
        document = _replace(document, path, CBOR_MARKER)
    encoded, marker = cbor2.dumps(document), cbor2.dumps(CBOR_MARKER)
    assert encoded.count(marker) == 1
    return encoded.replace(marker, raw)


def _diff(before, after):
    lines = []
    (rows_before, files_before), (rows_after, files_after) = before, after
    for table in rows_before:
        gone = set(rows_before[table]) - set(rows_after[table])
        new = set(rows_after[table]) - set(rows_before[table])
        for row in sorted(gone)[:3]:
            lines.append("    %s - %s" % (table, _short(row, 300)))
        for row in sorted(new)[:3]:
            lines.append("    %s + %s" % (table, _short(row, 300)))
    for name in sorted(set(files_before) ^ set(files_after)):
        lines.append("    file %s %s" % ("+" if name in files_after else "-", name))
    return "\n".join(lines)


# --- the fuzzer ----------------------------------------------------------------------------------

class Fuzzer:
    def __init__(self, server, state, route, watch_views=None):
        self.server = server
        self.http = server.http
        self.s = state
        self.method, self.rule = route
        self.exhaustive_phases = EXHAUSTIVE.get(route, set())
        self.phase = None
        self.random = random.Random(SEED + zlib.crc32(("%s %s" % route).encode("utf-8")))
        self.problems = []
        self.requests = 0
        self.blob_root = os.path.join(server.config["server", "data_dir"], "artifacts")
        self.last_success = None
        # The views are watched on the routes that write.
        self.watch_views = self.method != "GET" if watch_views is None else watch_views
        self.views = None
        if self.watch_views:
            self.views = getattr(state, "views", None) or self.snapshot()
        self.views_stale = False
        self.since_views = 0
        self.current = self.stored()
        self.changes = self.row_changes()

    # what is stored, and what the Management API shows of it

    def stored(self):
        """Every stored row (volatile poll columns aside) and every file under the blob store."""
        rows = {table: sorted(repr(row) for row in database.execute_sql(sql).fetchall())
                for table, sql in STORED_QUERIES}
        files = sorted(os.path.relpath(os.path.join(folder, name), self.blob_root)
                       for folder, _, names in os.walk(self.blob_root) for name in names)
        return rows, files

    def row_changes(self):
        """A number that moves when rows were written: SQLite's count of rows written on this
        thread's connection (the app's too); on PostgreSQL the next transaction id, of which
        every write transaction takes one."""
        if storage.db.on_postgres():
            return database.execute_sql(
                "SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()[0]
        return database.connection().total_changes

    def snapshot(self):
        views = management_views(self.http, self.s)
        for path, (status, _, errors) in views.items():
            if status >= 500:
                self.problem("GET %s%s -> %s after %s\n  server log (end):\n%s" % (
                    API, path, status, "the last successful request:\n  " + self.last_success
                    if self.last_success else "seeding", errors[-1200:]))
        return {path: view[:2] for path, view in views.items()}

    def read_back(self, rule):
        """What an accepted request wrote must stay readable."""
        path = readback_path(rule, self.s)
        if path is not None:
            response = self.http.get(API + path, headers={"Authorization": ADMIN_AUTH},
                                     expect_errors=True)
            if response.status_int >= 500:
                self.problem("%s\n  was accepted, and now GET %s%s -> %s\n  server log (end):\n%s"
                             % (self.last_success, API, path, response.status,
                                response.errors.strip()[-1200:]))

    def check_views(self, where, last=False):
        self.since_views = 0
        if not self.watch_views:
            return
        if self.views_stale:
            # A request since the last look succeeded and changed data: a new baseline.
            if not last:
                self.views, self.views_stale = self.snapshot(), False
            return
        now = self.snapshot()
        for path in self.views:
            if now[path] != self.views[path]:
                self.problem("%s: the Management API view %s changed over a run of rejected "
                             "requests:\n  before %s\n  after  %s"
                             % (where, path, _short(self.views[path], 600),
                                _short(now[path], 600)))
        self.views = now

    # requests

    def auth_for(self, path):
        return ADMIN_AUTH if path.startswith(API) else "TargetToken token-1"

    def send(self, method, path, query="", body=b"", content_type=None, headers=None,
             auth=True, declared_length=None, note=""):
        url = path + ("?" + query if query else "")
        request = webtest.TestRequest.blank(url, method=method)
        for name, value in self.http.extra_environ.items():
            request.environ.setdefault(name, value)
        if auth:
            request.environ["HTTP_AUTHORIZATION"] = self.auth_for(path)
        for name, value in (headers or {}).items():
            request.environ["HTTP_" + name.upper().replace("-", "_")] = value
        if body:
            request.body = body
        if content_type is not None:
            request.environ["CONTENT_TYPE"] = content_type
        if declared_length is not None:
            request.environ["CONTENT_LENGTH"] = str(declared_length)
        label = "%s %s%s%s%s%s" % (
            method, _short(url, 200),
            " Content-Type: %s" % _short(content_type, 60) if content_type is not None else "",
            " headers %s" % _short(headers, 120) if headers else "",
            " body %s" % _short(body) if body else "", " (%s)" % note if note else "")
        if self.since_views >= CHUNK:
            self.check_views("before " + label)
        if self.row_changes() != self.changes:
            # The views just read may have flushed poll times: start from what is there now.
            self.current, self.changes = self.stored(), self.row_changes()
        before = self.current
        self.requests += 1
        self.since_views += 1
        try:
            response = self.http.do_request(request, status=None, expect_errors=True)
        except Exception as error:  # a crash through the WSGI stack, or a protocol violation
            self.problem("%s\n  raised %s: %s" % (label, type(error).__name__, _short(error, 600)))
            self.current, self.changes = self.stored(), self.row_changes()
            return None
        self.check_response(label, response)
        changes = self.row_changes()
        if changes != self.changes or self.method == "POST" and self.rule == UPLOAD_ROUTE[1]:
            # Rows were written (perhaps rolled back) or blobs may have come: compare it all.
            self.current = self.stored()
            self.changes = changes
        if response.status_int < 300:
            if self.current != before:
                self.views_stale = True
                self.last_success = "%s -> %s" % (label, response.status)
                self.read_back(self.rule if method == self.method else "")
        elif self.current != before:
            self.problem("%s\n  -> %s, but stored data changed:\n%s"
                         % (label, response.status, _diff(before, self.current)))
        return response

    def check_response(self, label, response):
        status = response.status_int
        body = response.body
        described = "%s\n  -> %s %s" % (label, response.status, _short(body, 400))
        if status >= 500:
            traceback = response.errors.strip()
            self.problem(described + ("\n  server log (end):\n" + traceback[-1200:]
                                      if traceback else ""))
            return
        if status in (204, 304):
            # HTTP forbids a body here (and a Content-Length on a 204).
            if body:
                self.problem(described + "\n  a body on a %d" % status)
        elif "Content-Length" not in response.headers:
            self.problem(described + "\n  no Content-Length header")
        lowered = body[:2000].lower()
        if b"traceback (most recent call last)" in lowered or b"<html" in lowered or \
                b"<!doctype" in lowered:
            self.problem(described + "\n  an HTML page or a traceback")
        if 400 <= status < 500 and body:
            media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media not in ("application/json", "application/hal+json"):
                self.problem(described + "\n  error body with Content-Type %r" % media)
            try:
                document = json.loads(body.decode("utf-8"))
            except ValueError:
                self.problem(described + "\n  error body is not JSON")
                return
            keys = set(document) if isinstance(document, dict) else None
            if keys is None or not (
                    (keys <= HAWKBIT_ERROR_KEYS and "errorCode" in keys)
                    or keys == FRAMEWORK_ERROR_KEYS):
                self.problem(described + "\n  neither hawkBit's error body nor the framework's")

    def problem(self, text):
        # Tracebacks may quote a lone surrogate the request smuggled in.
        self.problems.append(text.encode("utf-8", "backslashreplace").decode("utf-8"))

    # sampling

    @property
    def exhaustive(self):
        return self.phase in self.exhaustive_phases

    def pick(self, values, count, always=()):
        """`always` plus `count` more of `values` (all of them on an exhaustive route)."""
        if self.exhaustive:
            return list(values)
        rest = [value for value in values if value not in always]
        return list(always) + self.random.sample(rest, min(count, len(rest)))

    def url(self, override=None):
        return fill(self.rule, self.s, override)

    def valid_body(self):
        template = TEMPLATES.get((self.method, self.rule))
        return json.dumps(template(self.s)).encode("utf-8") if template else b""

    def valid_content_type(self):
        return "application/json" if (self.method, self.rule) in TEMPLATES else None

    def send_valid(self, url, **options):
        """A request that is valid but for what the caller changed."""
        return self.send(options.pop("method", self.method), url, body=self.valid_body(),
                         content_type=self.valid_content_type(), **options)

    def post_body(self, body, content_type="application/json", note=""):
        return self.send(self.method, self.url(), body=body, content_type=content_type,
                         note=note)

    # phases

    def wrong_methods(self):
        registered = METHODS_OF[self.rule]
        if self.method != sorted(registered)[0]:
            return  # once per path
        odd = ["OPTIONS", "TRACE", "PROPFIND"] + ([] if "GET" in registered else ["HEAD"])
        methods = [m for m in ("GET", "POST", "PUT", "DELETE", "PATCH") if m not in registered]
        for method in methods + self.pick(odd, 1):
            self.send(method, self.url(), body=b'{"value": 1}', content_type="application/json")

    def hostile_paths(self):
        for name in parameters(self.rule):
            if name == "tenant":
                values = self.pick(("default", "OTHER", "%00", "%ff", LONG), 1)
            elif name in ("controller_id", "cid"):
                values = self.pick(PATH_VALUES, 2)
            else:
                values = self.pick(PATH_VALUES, 2, always=(HUGE,))
            for value in values:
                self.send_valid(self.url((name, value)))
        for suffix in self.pick(("/" + LONG, "/%ff/..", "/%00", "/..%2F.."), 1):
            self.send_valid(self.url() + suffix)

    def rsql(self):
        return "".join(self.random.choice(RSQL_ATOMS)
                       for _ in range(self.random.randint(1, 12)))

    def query_values(self, name):
        if name == "q":
            generated = [self.rsql() for _ in range(40 if self.exhaustive else 3)]
            return [urllib.parse.quote(value, safe="")
                    for value in generated + self.pick(RSQL_FIXED, 1)]
        if name == "sort":
            return [urllib.parse.quote(value, safe="") for value in self.pick(SORT_VALUES, 2)]
        return self.pick(QUERY_VALUES, 2, always=(HUGE,))

    def hostile_queries(self):
        for name in READS.get((self.method, self.rule), ()):
            for value in self.query_values(name):
                self.send_valid(self.url(), query="%s=%s" % (name, value))
        query = "&".join("%s=%s" % (name, self.random.choice(self.query_values(name)))
                         for name in QUERY_PARAMS)
        self.send_valid(self.url(), query=query)
        for query in self.pick(("%ff=1", "offset", "&&&", "=", "limit=1&limit=abc", "%00=%00"),
                               1):
            self.send_valid(self.url(), query=query)

    def hostile_headers(self):
        for value in self.pick(BAD_AUTH, 1) + (list(SLOW_AUTH) if self.exhaustive else []):
            self.send_valid(self.url(), auth=False, headers={"Authorization": value})
        self.send_valid(self.url(), auth=False)
        headers = [("Accept", value) for value in ACCEPTS] + list(OTHER_HEADERS)
        for name, value in self.pick(headers, 1):
            self.send_valid(self.url(), headers={name: value})
        if (self.method, self.rule) in DOWNLOAD_ROUTES:
            for method in ("GET", "HEAD"):
                for value in (RANGES if method == "GET" else self.pick(RANGES, 3)):
                    self.send(method, self.url(), headers={"Range": value})
                for value in self.pick(RANGES, 3):
                    self.send(method, self.url(), headers={"Range": "bytes=0-1",
                                                           "If-Range": value})
                for value in ("garbage", '"' + LONG + '"', "*", 'W/"x"', "Mon, 99 Foo"):
                    self.send(method, self.url(), headers={"If-Match": value})
                    self.send(method, self.url(), headers={"If-Range": value,
                                                           "Range": "bytes=-5"})
            if "<filename>" in self.rule:
                self.send("GET", self.url(("filename", "fw.swu.MD5SUM")),
                          headers={"Accept": "application/json"})
                self.send("GET", self.url(("filename", ".MD5SUM")))

    def raw_bodies(self):
        for body in self.pick(RAW_BODIES, 3, always=DEEP_JSON[:1]):
            self.post_body(body)
        self.post_body(b"", None)
        self.post_body(b"", "application/json")
        for body in self.pick(CBOR_GARBAGE, 1):
            self.post_body(body, "application/cbor")
        for content_type in self.pick(CONTENT_TYPES, 1):
            self.post_body(self.valid_body() or b"{}", content_type)
        for _ in range(12 if self.exhaustive else 1):
            size = self.random.choice((1, 7, 64, 1000, 70000))
            self.post_body(bytes(self.random.getrandbits(8) for _ in range(size)),
                           self.random.choice(("application/json", "application/cbor", None)))
        if self.exhaustive:
            self.post_body(b"[" + b"1," * 600000 + b"1]", note="larger than max_body_bytes")
        valid = self.valid_body()
        if valid:
            cuts = sorted({1, len(valid) // 3, len(valid) // 2, len(valid) - 1})
            for cut in self.pick(cuts, 1):
                self.post_body(valid[:cut], note="truncated at %d of %d" % (cut, len(valid)))
            lengths = (len(valid) // 2, len(valid) + 1000)
            for length in self.pick(lengths, 1):
                self.send(self.method, self.url(), body=valid, content_type="application/json",
                          declared_length=length, note="Content-Length %d, body %d bytes"
                          % (length, len(valid)))

    def wrong_values(self):
        """One value of every wrong kind (all of them on an exhaustive route)."""
        return [value for _, values in WRONG_KINDS for value in self.pick(values, 1)]

    def field_bodies(self):
        template = TEMPLATES[(self.method, self.rule)](self.s)
        encoded = lambda document: json.dumps(document).encode("utf-8")  # noqa: E731
        marker = "@@fuzz@@"
        for value in self.wrong_values():
            self.post_body(encoded(value), note="top level")
        for token_text in self.pick(RAW_TOKENS, 1):
            self.post_body(token_text.encode("ascii"), note="top level")
        for value in self.pick(CBOR_VALUES, 1):
            self.post_body(cbor2.dumps(value), "application/cbor", note="top level")
        self.post_body(cbor2.dumps(template), "application/cbor", note="the template as CBOR")
        paths = list(_paths(template))
        for path in paths:
            note = "field %s" % "/".join(map(str, path))
            for value in self.wrong_values():
                self.post_body(encoded(_replace(template, path, value)), note=note)
            # Something only CBOR carries, or a number JSON must not have (one or the other).
            text = json.dumps(_replace(template, path, marker))
            exotic = self.exhaustive or self.random.random() < 0.5
            for token_text in self.pick(RAW_TOKENS, 1) if exotic else ():
                self.post_body(text.replace('"%s"' % marker, token_text).encode("utf-8"),
                               note=note)
            for value in self.pick(CBOR_VALUES, 1) if self.exhaustive or not exotic else ():
                self.post_body(cbor2.dumps(_replace(template, path, value)), "application/cbor",
                               note=note)
            if self.exhaustive or self.random.random() < 0.3:
                self.post_body(encoded(_remove(template, path)), note="without " + note)
            original = template
            for step in path:
                original = original[step]
            if isinstance(original, dict):
                # CBOR maps may have keys of any type.
                for key in (7, b"bytes key", None):
                    self.post_body(cbor2.dumps(_replace(template, path, {**original, key: "v"})),
                                   "application/cbor", note="%s with key %r" % (note, key))
        if isinstance(template, dict):
            self.post_body(encoded(dict(template, unknown=[1, {"x": None}])))
            self.post_body(cbor2.dumps({**template, 7: "int key", b"b": "bytes key"}),
                           "application/cbor", note="non-text keys")
        else:
            self.post_body(encoded(template + [None, 1, "x"]))
            self.post_body(encoded([template[0]] * 50), note="50 elements")
        for _ in range(1):
            document = template
            for path in self.random.sample(paths, min(len(paths), 3)):
                try:
                    document = _replace(document, path, self.random.choice(WRONG_VALUES))
                except (KeyError, IndexError, TypeError):
                    pass  # an earlier replacement removed the container
            self.post_body(encoded(document), note="random combination")

    def cbor_bodies(self):
        """Every CBOR item at the top level and in one field (every field on an exhaustive route),
        every CBOR key in every object of the template."""
        template = TEMPLATES[(self.method, self.rule)](self.s)
        paths = list(_paths(template))
        for what, item, json_can_carry in CBOR_ITEMS:
            self.post_cbor(item, what + " as the body", json_can_carry)
            for path in paths if self.exhaustive else [self.random.choice(paths)]:
                self.post_cbor(_cbor_with(template, item, path=path), "%s in field %s"
                               % (what, "/".join(map(str, path))), json_can_carry)
        objects = [path for path in [()] + paths if isinstance(_at(template, path), dict)]
        for what, key in CBOR_KEYS:
            for path in objects:
                self.post_cbor(_cbor_with(template, key, key_of=path), "%s key in object /%s"
                               % (what, "/".join(map(str, path))), json_can_carry=False)

    def post_cbor(self, body, note, json_can_carry):
        """A CBOR body; one with a value JSON cannot carry must be a 400 body.notReadable."""
        response = self.post_body(body, "application/cbor", note=note)
        if response is None or json_can_carry:
            return
        try:
            error_code = response.json.get("errorCode")
        except (ValueError, AttributeError):
            error_code = None
        if (response.status_int, error_code) != (400, NOT_READABLE):
            self.problem("%s %s (%s): JSON cannot carry this, but the answer is %s %s"
                         % (self.method, self.rule, note, response.status,
                            _short(response.body, 300)))

    def multipart_uploads(self):
        boundary = "fuzz-boundary"

        def part(name, data, filename=None, extra=b""):
            disposition = 'Content-Disposition: form-data; name="%s"' % name
            if filename is not None:
                disposition += '; filename="%s"' % filename
            return (b"--" + boundary.encode() + b"\r\n" + disposition.encode("utf-8") + b"\r\n"
                    + extra + b"\r\n" + data + b"\r\n")

        end = b"--" + boundary.encode() + b"--\r\n"
        ctype = "multipart/form-data; boundary=" + boundary
        good = part("file", b"artifact bytes", "fuzz.bin") + end
        opening = b"--" + boundary.encode() + b"\r\n"
        cases = [
            (good, "multipart/form-data", "no boundary"),
            (good, "multipart/form-data; boundary=", "empty boundary"),
            (good, "multipart/form-data; boundary=other", "wrong boundary"),
            (good, "multipart/form-data; boundary=" + "b" * 5000, "huge boundary"),
            (good, 'multipart/form-data; boundary="unterminated', "broken quoting"),
            (good, "multipart/mixed; boundary=" + boundary, "multipart/mixed"),
            (good, "application/json", "JSON Content-Type"),
            (good, None, "no Content-Type"),
            (b"", ctype, "empty body"),
            (end, ctype, "only the closing boundary"),
            (b"preamble only", ctype, "no boundary in the body"),
            (part("notfile", b"x") + end, ctype, "no file part"),
            (part("md5sum", b"x" * 70000) + good, ctype, "huge form field"),
            (part("file", b"", "empty.bin") + end, ctype, "empty file"),
            (part("file", b"data") + end, ctype, "file part without filename"),
            (part("file", b"data", "") + end, ctype, "empty filename"),
            (part("file", b"data", "../../etc/passwd") + end, ctype, "filename with .."),
            (part("file", b"data", "..") + end, ctype, "filename .."),
            (part("file", b"data", "a\x00b") + end, ctype, "filename with NUL"),
            (part("file", b"data", LONG) + end, ctype, "10000-char filename"),
            (part("file", b"data", "\u2603\U0001F600.bin") + end, ctype, "unicode filename"),
            (part("file", b"data", "\\\\server\\share\\x") + end, ctype, "backslash filename"),
            (part("file", b"data", "a\r\nX-Injected: 1") + end, ctype, "CRLF in filename"),
            (part("file", b"data", "f.bin", b"Content-Type: \xff\xfe\r\n") + end, ctype,
             "invalid UTF-8 part header"),
            (part("file", b"data", "f.bin", b"X-Header: 1\r\n" * 20) + end, ctype,
             "too many part headers"),
            (part("file", b"data", "f.bin", b"Bad header line\r\n") + end, ctype,
             "malformed part header"),
            (part("sha1sum", b"zz") + part("file", b"data", "c.bin") + end, ctype,
             "garbage sha1sum field"),
            (part("md5sum", LONG.encode()) + part("file", b"data", "c.bin") + end, ctype,
             "10000-char md5sum field"),
            (part("file", b"data", "f.bin") + part("sha256sum", b"\xff\xfe") + end, ctype,
             "invalid UTF-8 checksum after the file"),
            (part("file", b"data", "f.bin") + part("file", b"more", "g.bin") + end, ctype,
             "two file parts"),
            (part("filename", b"..") + part("file", b"data", "f.bin") + end, ctype,
             "filename field .."),
            (opening + b'Content-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n'
             b"no end of part", ctype, "file part never ends"),
            (opening + b"\r\n\r\n" + end, ctype, "part without headers"),
            (opening + b"Content-Disposition: form-data\r\n\r\nx\r\n" + end, ctype,
             "part without name"),
            (b"--" + boundary.encode() + b"--", ctype, "closing boundary without CRLF"),
            (good.replace(b"\r\n", b"\n"), ctype, "bare LF line ends"),
        ]
        for body, content_type, note in cases:
            self.post_body(body, content_type, note=note)
        for cut in (1, 10, len(good) // 2, len(good) - len(end), len(good) - 3):
            self.post_body(good[:cut], ctype, note="truncated at %d of %d" % (cut, len(good)))
        for length in (len(good) + 500, len(good) // 2):
            self.send(self.method, self.url(), body=good, content_type=ctype,
                      declared_length=length,
                      note="Content-Length %d, body %d bytes" % (length, len(good)))
        for _ in range(10):
            body = bytearray(good)
            for _ in range(self.random.randint(1, 8)):
                body[self.random.randrange(len(body))] = self.random.getrandbits(8)
            self.post_body(bytes(body), ctype, note="bytes flipped")
        for query in ("md5sum=" + "0" * 32, "sha1sum=%ff", "sha256sum=" + LONG,
                      "filename=..%2F..", "filename=%00", "filename=" + LONG, "filename="):
            self.send(self.method, self.url(), query=query, body=good, content_type=ctype)

    def run(self):
        route = (self.method, self.rule)
        phases = [("wrong methods", self.wrong_methods), ("path parameters", self.hostile_paths),
                  ("query parameters", self.hostile_queries), ("headers", self.hostile_headers)]
        if route == UPLOAD_ROUTE:
            phases.append(("multipart", self.multipart_uploads))
        elif route in BODY_ROUTES:
            phases.append(("bodies", self.raw_bodies))
        elif self.method in ("POST", "PUT", "DELETE"):
            phases.append(("bodies", lambda: [self.post_body(body) for body in
                                              self.pick(RAW_BODIES, 1, DEEP_JSON[:1])]))
        if route in TEMPLATES:
            phases.append(("fields", self.field_bodies))
            phases.append(("cbor", self.cbor_bodies))
        for name, phase in phases:
            self.phase = name
            phase()
        self.check_views("at the end", last=True)

    def report(self):
        return "%d problems in %d requests on %s %s:\n\n%s" % (
            len(self.problems), self.requests, self.method, self.rule,
            "\n\n".join(self.problems[:25]))


# --- tests ---------------------------------------------------------------------------------------

def test_the_route_table_is_covered():
    """The fuzzing knows every route; a new POST or PUT route needs a template."""
    assert len(ROUTES) > 80
    for key in list(READS) + list(TEMPLATES) + list(EXHAUSTIVE) + list(DOWNLOAD_ROUTES):
        assert key in ROUTES, key
    for method, rule in ROUTES:
        if method in ("POST", "PUT") and (method, rule) != UPLOAD_ROUTE:
            assert (method, rule) in BODY_ROUTES, (method, rule)


@pytest.mark.parametrize("route", ROUTES, ids=["%s %s" % route for route in ROUTES])
def test_route_survives_bad_input(seeded, route):
    server, state = seeded
    fuzzer = Fuzzer(server, state, route)
    fuzzer.run()
    if fuzzer.problems:
        pytest.fail(fuzzer.report(), pytrace=False)


def test_device_registration_with_hostile_controller_ids(seeded):
    """With a gateway token any controller id reaches registration (plug and play)."""
    server, state = seeded
    server.configure(**{"authentication.gatewaytoken.enabled": True,
                        "authentication.gatewaytoken.key": "gateway-secret"})
    fuzzer = Fuzzer(server, state, ("GET", D), watch_views=True)
    fuzzer.auth_for = lambda path: "GatewayToken gateway-secret"
    values = PATH_VALUES + ("a" * 256, "a" * 257, "%20padded%20", "%0A", "a%2Fb", "%E2%80%AE",
                            "%EF%BF%BF")
    for value in values:
        fuzzer.send("GET", fill(D, state, ("controller_id", value)))
    for rule, method in ((D + "/confirmationBase", "GET"), (D + "/configData", "PUT")):
        for value in fuzzer.random.sample(values, 6):
            fuzzer.send(method, fill(rule, state, ("controller_id", value)),
                        body=b'{"data": {"k": "v"}}' if method == "PUT" else b"",
                        content_type="application/json" if method == "PUT" else None)
    fuzzer.check_views("after registration", last=True)
    if fuzzer.problems:
        pytest.fail(fuzzer.report(), pytrace=False)
