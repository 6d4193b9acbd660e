"""Coercion of request values, the way hawkBit's JSON mapper (Jackson, default settings) does it.

Management API clients are sloppy about JSON types: ids arrive as strings (`{"id": "12"}`),
versions as numbers (`"version": 1.1`), booleans as strings (`"true"`). These helpers accept
what Jackson accepts and reject the rest (mgmt contract §1.2):

* a value of a type that cannot be converted -> `BodyNotReadable` (400, body.notReadable);
* a missing required value, a blank required string, a too long string or a number out of
  range -> `ConstraintViolation` (400, repo.constraintViolation), naming the field.

`None` stands for both "absent" and JSON `null`; it comes back as `None` unless the field is
required. Query parameters have their own two helpers at the end.
"""

import re

from storage.errors import BodyNotReadable, ConstraintViolation, StoreError

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class BadParameter(StoreError):
    """A query parameter of the wrong type (e.g. `limit=ten`).

    The web layer answers it like Spring does for a type mismatch: a framework 400 body
    (mgmt contract §3.3), not a hawkBit error body.
    """

    exception_class = ("org.springframework.web.method.annotation."
                       "MethodArgumentTypeMismatchException")

    def __init__(self, message, parameter=None):
        super().__init__(message)
        self.parameter = parameter


# SQLite stores integers in 64 bits; hawkBit's ids and times are Java longs.
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


def _missing(field):
    return ConstraintViolation("%s must not be null." % field, {"field": field})


def _type_name(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _not_readable(field, value, expected):
    return BodyNotReadable("Cannot read %s for field '%s': a JSON %s was given."
                           % (expected, field, _type_name(value)))


def as_str(value, field, required=False, max_length=None):
    """A string field: strings as given, numbers and booleans as their JSON text."""
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _not_readable(field, value, "a string")
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise _not_readable(field, value, "a string")
    if required and not text.strip():
        raise ConstraintViolation("%s must not be blank." % field, {"field": field})
    if max_length is not None and len(text) > max_length:
        raise ConstraintViolation("%s must not be longer than %d characters (got %d)."
                                  % (field, max_length, len(text)), {"field": field})
    return text


def as_int(value, field, required=False, minimum=None, maximum=None):
    """An integer field: integers, integral floats and strings of digits."""
    if isinstance(value, str) and not value.strip():
        value = None  # Jackson reads "" as null for a number
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool):
        raise _not_readable(field, value, "an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise BodyNotReadable("Cannot read an integer for field '%s' from %r."
                                  % (field, value))
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INTEGER.match(text) or len(text) > 20:
            raise BodyNotReadable("Cannot read an integer for field '%s' from %r."
                                  % (field, value))
        number = int(text)
    else:
        raise _not_readable(field, value, "an integer")
    if not INT64_MIN <= number <= INT64_MAX:
        raise BodyNotReadable("The value of field '%s' does not fit a 64-bit integer." % field)
    if minimum is not None and number < minimum:
        raise ConstraintViolation("%s must be greater than or equal to %d (got %d)."
                                  % (field, minimum, number), {"field": field})
    if maximum is not None and number > maximum:
        raise ConstraintViolation("%s must be less than or equal to %d (got %d)."
                                  % (field, maximum, number), {"field": field})
    return number


def as_bool(value, field, required=False):
    """A boolean field: booleans, "true"/"false" (any case) and the numbers 0/1."""
    if isinstance(value, str) and not value.strip():
        value = None
    if value is None:
        if required:
            raise _missing(field)
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
        raise BodyNotReadable("Cannot read a boolean for field '%s' from %r." % (field, value))
    raise _not_readable(field, value, "a boolean")


def as_list(value, field, required=False):
    """A JSON array (a single value is not accepted in its place)."""
    if value is None:
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, list):
        raise _not_readable(field, value, "an array")
    return value


def as_object(value, field, required=False):
    """A JSON object."""
    if value is None:
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, dict):
        raise _not_readable(field, value, "an object")
    return value


def as_id_list(value, field, one_object=False):
    """The ids of `[{"id": n}, ...]`, each once, in order; `one_object`: a single `{"id": n}`
    is taken as an array of one (hawkBit's set type module lists take both)."""
    items = [value] if one_object and isinstance(value, dict) else \
        as_list(value, field, required=True)
    ids = []
    for item in items:
        item_id = as_int(as_object(item, field, required=True).get("id"), field + ".id",
                         required=True)
        if item_id not in ids:
            ids.append(item_id)
    return ids


def query_bool(text):
    """A boolean query parameter (`force`, `offline`, ...): None when absent or empty."""
    if text is None:
        return None
    word = str(text).strip().lower()
    if not word:
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise BodyNotReadable("'%s' is not a boolean; use true or false." % text)


def query_int(text, default, name=None):
    """An integer query parameter (`offset`, `limit`, ...): `default` when absent or empty."""
    if text is None:
        return default
    word = str(text).strip()
    if not word:
        return default
    if not _INTEGER.match(word) or len(word) > 20 or not INT64_MIN <= int(word) <= INT64_MAX:
        raise BadParameter("Failed to convert value '%s'%s to an integer."
                           % (text, " of parameter '%s'" % name if name else ""), name)
    return int(word)
