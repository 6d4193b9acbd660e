"""CBOR request bodies (ddi-contract.md §1.2): the same document as JSON gets the same answer.

CBOR can say more than JSON: integers of any length (bignums), NaN and infinities in three
float widths, tagged values (dates, decimals, sets, shared references), byte strings,
`undefined`, simple values, keys that are not text. A body holding any of these is a 400 with
hawkBit's "body not readable" error, and nothing is stored. A bignum the JSON parser could
read as a number is read like that number.
"""

import datetime
import decimal

import cbor2
import pytest

from conftest import DEVICE, now_ms, token
from storage import assignments
from storage.db import database
from storage.models import ALL_MODELS, DistributionSet, Target

ROOT = DEVICE + "/dev-1"
NOT_READABLE = {
    "exceptionClass": "org.eclipse.hawkbit.rest.exception.MessageNotReadableException",
    "errorCode": "hawkbit.server.error.rest.body.notReadable",
    "message": "The given request body is not well formed",
}
SLOT = "@@value@@"

# Every DDI resource that reads a body: a valid document, with SLOT where the value goes.
# The slot is a free-text field, so only the value itself can make the body unreadable.
DOCUMENTS = {
    "configData": ("PUT", "/configData", {"mode": "merge", "data": {"k": SLOT}}),
    "deployment feedback": ("POST", "/deploymentBase/{action}/feedback", {
        "status": {"execution": "proceeding", "result": {"finished": "none"},
                   "details": [SLOT]}}),
    "cancel feedback": ("POST", "/cancelAction/{action}/feedback", {
        "status": {"execution": "proceeding", "result": {"finished": "none"},
                   "details": [SLOT]}}),
    "installedBase": ("PUT", "/installedBase", {"name": "fw-set", "version": "1.0",
                                                "extra": SLOT}),
    "activateAutoConfirm": ("POST", "/confirmationBase/activateAutoConfirm", {
        "initiator": "device", "remark": "r", "extra": SLOT}),
    "confirmation feedback": ("POST", "/confirmationBase/{action}/feedback", {
        "confirmation": "confirmed", "details": [SLOT]}),
}

# CBOR encodings of values JSON cannot carry.
NOT_JSON = {name: cbor2.dumps(value) for name, value in {
    "bignum beyond the JSON parser": 10 ** 4400,
    "negative bignum beyond the JSON parser": -(10 ** 4400),
    "NaN": float("nan"),
    "infinity": float("inf"),
    "minus infinity": float("-inf"),
    "datetime tag": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    "decimal tag": decimal.Decimal("1.5"),
    "unknown tag": cbor2.CBORTag(999, "x"),
    "set tag": frozenset([1]),
    "undefined": cbor2.undefined,
    "simple value": cbor2.CBORSimpleValue(99),
    "byte string": b"\x00\xff",
    "integer key": {1: "a"},
    "byte string key": {b"k": "v"},
}.items()}
# Encodings cbor2.dumps never picks.
NOT_JSON.update({
    "NaN as half-precision float": b"\xf9\x7e\x00",
    "infinity as half-precision float": b"\xf9\x7c\x00",
    "NaN as single-precision float": b"\xfa\x7f\xc0\x00\x00",
    "infinity as single-precision float": b"\xfa\x7f\x80\x00\x00",
    "bigfloat tag": b"\xc5\x82\x20\x03",
    "self-referencing shared value": b"\xd8\x1c\x81\xd8\x1d\x00",
    "nesting deeper than the decoder allows": b"\x81" * 1000 + b"\x00",
})


def stored():
    """Every stored row, the poll columns of targets aside."""
    rows = {}
    for model in ALL_MODELS:
        columns = [field for name, field in model._meta.fields.items()
                   if model is not Target or name not in ("last_target_query", "address")]
        rows[model.__name__] = sorted(map(repr, model.select(*columns).tuples()))
    return rows


def document(name, value_bytes):
    """The document of `name` as CBOR, with the CBOR encoding `value_bytes` in the slot."""
    marker = cbor2.dumps(SLOT)
    encoded = cbor2.dumps(DOCUMENTS[name][2])
    assert encoded.count(marker) == 1
    return encoded.replace(marker, value_bytes)


@pytest.fixture
def confirming(server):
    server.configure(**{"user.confirmation.flow.enabled": True})
    return server


def resource_url(server, name):
    """dev-1 with an action in the state the resource of `name` acts on: its URL."""
    action = server.deployment(confirmation_required=name == "confirmation feedback")
    if name == "cancel feedback":
        assignments.cancel(action, now_ms(), "admin")
    if name == "installedBase" and not DistributionSet.select().where(
            DistributionSet.name == "fw-set").exists():
        server.distribution_set([server.module()], name="fw-set", version="1.0")
    return ROOT + DOCUMENTS[name][1].format(action=action.id)


def send(server, name, url, body):
    return server.http.request(url, method=DOCUMENTS[name][0], body=body, headers=dict(
        token(), **{"Content-Type": "application/cbor"}), expect_errors=True)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_document_with_text_in_the_slot_is_accepted(confirming, name):
    response = send(confirming, name, resource_url(confirming, name),
                    document(name, cbor2.dumps("text")))
    assert response.status_int in (200, 201), (response.status, response.body[:200])


@pytest.mark.parametrize("name", DOCUMENTS)
def test_values_json_cannot_carry_are_400_not_readable_and_store_nothing(confirming, name):
    confirming.deployment(controller_id="dev-2")  # rows of another target, to compare as well
    url = resource_url(confirming, name)
    before = stored()
    problems = []
    for value_name, encoded in NOT_JSON.items():
        response = send(confirming, name, url, document(name, encoded))
        answer = (response.status_int, response.headers.get("Content-Type"),
                  response.json if response.status_int == 400 else response.body[:200])
        if answer != (400, "application/json", NOT_READABLE):
            problems.append("%s: %r" % (value_name, answer))
        elif stored() != before:
            problems.append("%s: stored data changed" % value_name)
    assert not problems, "\n".join(problems)


def test_bignum_the_json_parser_reads_is_stored_like_the_json_number(server):
    server.target()
    number = 2 ** 100
    server.http.put(ROOT + "/configData", cbor2.dumps({"data": {"cbor": number}}),
                    headers=dict(token(), **{"Content-Type": "application/cbor"}), status=200)
    server.http.put(ROOT + "/configData", b'{"data": {"json": %d}}' % number,
                    headers=dict(token(), **{"Content-Type": "application/json"}), status=200)
    attributes = server.http.get("/rest/v1/targets/dev-1/attributes", headers={
        "Authorization": "Basic YWRtaW46YWRtaW4="}).json
    assert attributes == {"cbor": str(number), "json": str(number)}


def test_integer_beyond_the_json_parser_is_400_in_json_too(server):
    server.target()
    response = server.http.put(ROOT + "/configData", b'{"data": {"k": 1%s}}' % (b"0" * 4400),
                               headers=dict(token(), **{"Content-Type": "application/json"}),
                               status=400)
    assert response.json == NOT_READABLE
