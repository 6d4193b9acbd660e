"""Collections of the Management API: filtering (`q`, FIQL/RSQL), sorting (`sort`) and paging.

`q` is parsed by a small recursive-descent parser into an AST (`Or`, `And`, `Comparison`),
which is compiled into a Peewee expression with the field map of the collection (mgmt
contract §4.4). Relations are never joined into the caller's query: a to-one relation is a
correlated scalar sub-select (`(SELECT name FROM distribution_set WHERE id = assigned_ds_id)`),
a to-many relation or a metadata key an `EXISTS` sub-select, a target attribute a
`json_extract` of the JSON column. So `page()` can filter any select whose base model is the
collection's model, whatever the caller already joined or restricted.

Semantics (hawkBit's, as far as they matter to clients):

* string comparisons are case-insensitive (`LOWER()` on both sides), enum values too;
* `==`/`!=` with an unescaped `*` is a wildcard match (`LIKE ... ESCAPE '\\'`, with `%`, `_`
  and `\\` of the value escaped); `\\*` is a literal asterisk;
* `==""` matches null or empty, `!=""` present and non-empty; `=is=null` / `=not=null`;
* every negation (`!=`, `=ne=`, `=not=`, `=out=`) is the exact complement of its positive
  form, so rows where the field is null (or the key missing) match `!=x`;
* numeric fields compare numerically, booleans take true/false;
* `${NOW_TS}` and `${OVERDUE_TS}` in values are replaced by epoch milliseconds.
"""

import collections
import re
import time

from peewee import SQL, NodeList, fn

from storage import schedule, tenant
from storage.db import ascending, json_entries, json_value
from storage.transitions import ERROR
from storage.errors import StoreError
from storage.models import (Action, ActionStatus, DistributionSet, DistributionSetMetadata,
                            DistributionSetModule, DistributionSetTag,
                            DistributionSetTagAssignment, DistributionSetType,
                            DistributionSetTypeModule, SoftwareModule, SoftwareModuleMetadata,
                            Rollout, RolloutGroup, SoftwareModuleType, Target, TargetFilter,
                            TargetMetadata, TargetTag, TargetTagAssignment, TargetType)

_REPO = "org.eclipse.hawkbit.repository.exception."
_MGMT = "org.eclipse.hawkbit.mgmt.rest.resource.exception."

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_DEPTH = 64


# --------------------------------------------------------------------------------------------
# Errors


class RsqlSyntax(StoreError):
    error_code = "hawkbit.server.error.rest.param.rsqlParamSyntax"
    exception_class = _REPO + "RSQLParameterSyntaxException"


class RsqlInvalidField(StoreError):
    error_code = "hawkbit.server.error.rest.param.rsqlInvalidField"
    exception_class = _REPO + "RSQLParameterUnsupportedFieldException"


class SortSyntax(StoreError):
    error_code = "hawkbit.server.error.rest.param.sortParamSyntax"
    exception_class = _MGMT + "SortParameterSyntaxErrorException"


class SortInvalidField(StoreError):
    error_code = "hawkbit.server.error.rest.param.invalidField"
    exception_class = _MGMT + "SortParameterUnsupportedFieldException"


class SortInvalidDirection(StoreError):
    error_code = "hawkbit.server.error.rest.param.invalidDirection"
    exception_class = _MGMT + "SortParameterUnsupportedDirectionException"


# --------------------------------------------------------------------------------------------
# Parser: text -> AST


class _Star:
    """An unescaped `*` inside an argument: "any sequence" for == and !=."""

    def __repr__(self):
        return "*"


STAR = _Star()


class Argument:
    """One argument of a comparison: text parts and STAR markers; `quoted` if it was quoted."""

    __slots__ = ("parts", "quoted")

    def __init__(self, parts, quoted=False):
        self.parts = tuple(parts)
        self.quoted = quoted

    @property
    def has_wildcard(self):
        return any(part is STAR for part in self.parts)

    @property
    def text(self):
        """The value with every `*` (escaped or not) taken literally."""
        return "".join("*" if part is STAR else part for part in self.parts)

    @property
    def is_null(self):
        return not self.quoted and self.text.lower() == "null"

    def substitute(self, replace):
        return Argument([part if part is STAR else replace(part) for part in self.parts],
                        self.quoted)

    def __eq__(self, other):
        return (isinstance(other, Argument) and self.parts == other.parts
                and self.quoted == other.quoted)

    def __hash__(self):
        return hash((self.parts, self.quoted))

    def __repr__(self):
        return "Argument(%r%s)" % (list(self.parts), ", quoted" if self.quoted else "")


Comparison = collections.namedtuple("Comparison", "selector operator arguments")
And = collections.namedtuple("And", "children")
Or = collections.namedtuple("Or", "children")

# Canonical operator names: eq ne is not lt le gt ge in out.
_SYMBOL_OPERATORS = (("==", "eq"), ("!=", "ne"), ("<=", "le"), (">=", "ge"), ("<", "lt"),
                     (">", "gt"))
_NAMED_OPERATORS = {"eq": "eq", "ne": "ne", "is": "is", "not": "not", "lt": "lt", "le": "le",
                    "gt": "gt", "ge": "ge", "in": "in", "out": "out"}
_MULTI_VALUE = ("in", "out")
_RESERVED = set("\"'();,=!~<>")


def _plain_char(char):
    return char not in _RESERVED and not char.isspace()


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, what):
        near = self.text[self.pos:self.pos + 20]
        where = ("at the end" if self.pos >= len(self.text)
                 else "at position %d (near '%s')" % (self.pos, near))
        raise RsqlSyntax("Cannot parse the query '%s': %s %s." % (self.text, what, where))

    def peek(self, length=1):
        return self.text[self.pos:self.pos + length]

    def skip_space(self):
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def keyword(self, word):
        """Consume ` and ` / ` or ` (any case) if it stands here, delimited by blanks."""
        end = self.pos + len(word)
        if self.text[self.pos:end].lower() != word:
            return False
        before = self.text[self.pos - 1] if self.pos else ""
        after = self.text[end] if end < len(self.text) else ""
        if not (before.isspace() or before in (")", "'", '"')):
            return False
        if not (after.isspace() or after == "("):
            return False
        self.pos = end
        return True

    def parse(self):
        self.skip_space()
        node = self.or_expression()
        self.skip_space()
        if self.pos < len(self.text):
            self.fail("unexpected input")
        return node

    def or_expression(self):
        children = [self.and_expression()]
        while True:
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
            elif not self.keyword("or"):
                break
            children.append(self.and_expression())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expression(self):
        children = [self.primary()]
        while True:
            self.skip_space()
            if self.peek() == ";":
                self.pos += 1
            elif not self.keyword("and"):
                break
            children.append(self.primary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def primary(self):
        self.skip_space()
        if self.peek() == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                self.fail("too deeply nested parentheses")
            self.pos += 1
            node = self.or_expression()
            self.skip_space()
            if self.peek() != ")":
                self.fail("')' expected")
            self.pos += 1
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self):
        start = self.pos
        while self.pos < len(self.text) and _plain_char(self.text[self.pos]):
            self.pos += 1
        selector = self.text[start:self.pos]
        if not selector:
            self.fail("a field name expected")
        self.skip_space()
        operator = self.operator()
        self.skip_space()
        if self.peek() == "(":
            if operator not in _MULTI_VALUE:
                self.fail("a single value expected for this operator")
            arguments = self.group()
        else:
            arguments = (self.argument(),)
        return Comparison(selector, operator, arguments)

    def operator(self):
        for symbol, name in _SYMBOL_OPERATORS:
            if self.text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return name
        match = re.compile(r"=([A-Za-z]+)=").match(self.text, self.pos)
        if match and match.group(1).lower() in _NAMED_OPERATORS:
            self.pos = match.end()
            return _NAMED_OPERATORS[match.group(1).lower()]
        self.fail("a comparison operator (==, !=, =lt=, =in=, ...) expected")

    def group(self):
        self.pos += 1  # "("
        arguments = []
        while True:
            self.skip_space()
            arguments.append(self.argument())
            self.skip_space()
            char = self.peek()
            self.pos += 1
            if char == ")":
                return tuple(arguments)
            if char != ",":
                self.pos -= 1
                self.fail("',' or ')' expected in a value list")

    def argument(self):
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted(char)
        start = self.pos
        while self.pos < len(self.text) and _plain_char(self.text[self.pos]):
            self.pos += 1
        if self.pos == start:
            self.fail("a value expected")
        return Argument(_unescape(self.text[start:self.pos], None), quoted=False)

    def quoted(self, quote):
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if char == quote:
                raw = self.text[start + 1:self.pos]
                self.pos += 1
                return Argument(_unescape(raw, quote), quoted=True)
            self.pos += 1
        self.pos = start
        self.fail("unterminated quoted value")


def _unescape(raw, quote):
    """Split a raw argument into text parts and STAR markers, resolving backslash escapes.

    `\\*` is a literal asterisk and `\\\\` a backslash everywhere; inside quotes `\\"` or `\\'`
    is the quote. Any other backslash stays as it is (so `C:\\dir` needs no doubling).
    """
    parts = []
    current = []
    index = 0
    while index < len(raw):
        char = raw[index]
        following = raw[index + 1] if index + 1 < len(raw) else ""
        if char == "\\" and (following in ("*", "\\") or (quote and following == quote)):
            current.append(following)
            index += 2
            continue
        if char == "*":
            if current:
                parts.append("".join(current))
                current = []
            parts.append(STAR)
        else:
            current.append(char)
        index += 1
    if current or not parts:
        parts.append("".join(current))
    return parts


def parse(q):
    """Parse an RSQL/FIQL expression into its AST; None for an empty one."""
    if q is None or not q.strip():
        return None
    try:
        return _Parser(q).parse()
    except RecursionError:
        raise RsqlSyntax("Cannot parse the query '%s': it is nested too deeply." % q)


# --------------------------------------------------------------------------------------------
# Field maps

STRING = "string"
NUMBER = "number"
BOOLEAN = "boolean"


class Field:
    """A query field: its API name, its kind, and how to reach its value.

    `column()` builds the scalar expression (a column, or a correlated scalar sub-select for
    a to-one relation). A to-many field (module, metadata) instead has `exists(predicate)`,
    which builds `EXISTS (... WHERE <correlation> AND predicate(inner column))`; such fields
    cannot be sorted by.
    """

    def __init__(self, name, kind, column=None, exists=None, sortable=None):
        self.name = name
        self.kind = kind
        self.column = column
        self.exists = exists
        self.sortable = (exists is None) if sortable is None else sortable

    def scope(self, predicate):
        if self.exists is not None:
            return self.exists(predicate)
        return predicate(self.column())

    def positive(self, operator, arguments, context):
        """The expression for eq/is, in, and the orderings (negation is done by the caller)."""
        if operator in ("eq", "is"):
            argument = arguments[0]
            if self.kind == STRING and argument.has_wildcard:
                pattern = _like_pattern(argument, context)
                return self.scope(lambda c: c.is_null(False) & _like(c, pattern))
            value = self.convert(context.text(argument))
            return self.scope(lambda c: c.is_null(False) & self.equals(c, value))
        if operator == "in":
            values = [self.convert(context.text(argument)) for argument in arguments]
            return self.scope(lambda c: c.is_null(False) & self.member(c, values))
        value = self.convert(context.text(arguments[0]))
        return self.scope(lambda c: c.is_null(False) & self.order(c, operator, value))

    def present(self):
        """Expression: the value is there (and, for strings, not empty)."""
        if self.kind == STRING:
            return self.scope(lambda c: c.is_null(False) & (c != ""))
        return self.scope(lambda c: c.is_null(False))

    def not_null(self):
        return self.scope(lambda c: c.is_null(False))

    def convert(self, text):
        if self.kind == NUMBER:
            try:
                number = int(text.strip())
            except ValueError:
                raise RsqlSyntax("The value '%s' of field '%s' is not a number."
                                 % (text, self.name))
            # SQLite binds 64-bit integers; stored values never lie beyond the clamped ones,
            # so every comparison answers as it would with the unclamped number.
            return max(-2 ** 63, min(number, 2 ** 63 - 1))
        if self.kind == BOOLEAN:
            word = text.strip().lower()
            if word not in ("true", "false"):
                raise RsqlSyntax("The value '%s' of field '%s' must be true or false."
                                 % (text, self.name))
            return word == "true"
        return text

    def equals(self, column, value):
        if self.kind == STRING:
            return fn.LOWER(column) == fn.LOWER(value)
        return column == value

    def member(self, column, values):
        if self.kind == STRING:
            return fn.LOWER(column).in_([fn.LOWER(value) for value in values])
        return column.in_(values)

    def order(self, column, operator, value):
        if self.kind == STRING:
            column, value = fn.LOWER(column), fn.LOWER(value)
        if operator == "lt":
            return column < value
        if operator == "le":
            return column <= value
        if operator == "gt":
            return column > value
        return column >= value

    def sort_keys(self):
        column = self.column()
        if self.kind == STRING:
            return [fn.LOWER(column), column]
        return [column]


class ActionStatusField(Field):
    """Action `status`: `pending` (not a real status) means active (hawkBit <= 0.9 scripts)."""

    def positive(self, operator, arguments, context):
        if operator not in ("eq", "is", "in"):
            return Field.positive(self, operator, arguments, context)
        pending = [a for a in arguments
                   if not a.has_wildcard and context.text(a).strip().lower() == "pending"]
        if not pending:
            return Field.positive(self, operator, arguments, context)
        active = Action.active == True  # noqa: E712 (Peewee expression)
        rest = [a for a in arguments if a not in pending]
        if not rest:
            return active
        return active | Field.positive(self, "in", rest, context)


# SQLite refuses a longer LIKE pattern (SQLITE_MAX_LIKE_PATTERN_LENGTH) with an error, but
# only once a row is compared: the query is refused before it runs.
MAX_LIKE_PATTERN_BYTES = 50000


def _like_pattern(argument, context):
    pieces = []
    for part in argument.parts:
        if part is STAR:
            pieces.append("%")
        else:
            text = context.placeholders(part)
            pieces.append(text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
    pattern = "".join(pieces)
    if len(pattern.encode("utf-8", "surrogatepass")) > MAX_LIKE_PATTERN_BYTES:
        raise RsqlSyntax("A wildcard value of the query is longer than %d bytes."
                         % MAX_LIKE_PATTERN_BYTES)
    return pattern


def _like(column, pattern):
    return NodeList((fn.LOWER(column), SQL("LIKE"), fn.LOWER(pattern), SQL("ESCAPE '\\'")),
                    parens=True)


def _scalar(query):
    """A correlated sub-select usable like a column."""
    return NodeList((query,))


def _related(model, foreign_key, attribute):
    """A to-one relation's column: (SELECT x FROM related WHERE related.id = outer.fk)."""
    def column():
        inner = model.alias()
        return _scalar(inner.select(getattr(inner, attribute))
                       .where(inner.id == foreign_key))
    return column


def _plain(column):
    return lambda: column


def _audit(model):
    return [
        Field("createdAt", NUMBER, _plain(model.created_at)),
        Field("createdBy", STRING, _plain(model.created_by)),
        Field("lastModifiedAt", NUMBER, _plain(model.last_modified_at)),
        Field("lastModifiedBy", STRING, _plain(model.last_modified_by)),
    ]


def _metadata(table, owner_column, owner_id):
    """Factory of `metadata.<key>` fields: EXISTS over the key/value table of the owner."""
    def field(key):
        def exists(predicate):
            inner = table.alias()
            return fn.EXISTS(inner.select(SQL("1")).where(
                (getattr(inner, owner_column) == owner_id) & (inner.key == key)
                & predicate(inner.value)))
        return Field("metadata." + key, STRING, exists=exists)
    return field


_PLAIN_KEY = re.compile(r"[\x20-\x7e]*\Z")


def _attribute(key):
    """`attribute.<key>`: a value of the target's controller attributes (JSON column)."""
    if _PLAIN_KEY.match(key) and '"' not in key and "\\" not in key:
        return Field("attribute." + key, STRING,
                     lambda: json_value(Target.attributes, key), sortable=False)

    # SQLite's JSON paths cannot quote '"' and compare keys undecoded: use json_each.
    def exists(predicate):
        return NodeList((SQL("EXISTS (SELECT 1 FROM"), json_entries(Target.attributes),
                         SQL("AS attribute_entry WHERE attribute_entry.key ="), key,
                         SQL("AND"), predicate(SQL("attribute_entry.value")), SQL(")")),
                        parens=True)
    return Field("attribute." + key, STRING, exists=exists)


def _set_modules(attribute):
    def exists(predicate):
        link = DistributionSetModule.alias()
        module = SoftwareModule.alias()
        return fn.EXISTS(link.select(SQL("1"))
                         .join(module, on=(link.module == module.id))
                         .where((link.distribution_set == DistributionSet.id)
                                & predicate(getattr(module, attribute))))
    return exists


def _tagged(assignment, tag, owner_column, owner_id):
    """`tag.name` of a target or a set: EXISTS over its tag assignments."""
    def exists(predicate):
        link = assignment.alias()
        inner = tag.alias()
        return fn.EXISTS(link.select(SQL("1"))
                         .join(inner, on=(link.tag == inner.id))
                         .where((getattr(link, owner_column) == owner_id)
                                & predicate(inner.name)))
    return exists


def _failed_in_rollout(predicate):
    """`failedrollout`: the target's action of that rollout ended in error (what a rollout's
    retry selects, so that its stored query stays short however many targets failed)."""
    action = Action.alias()
    return fn.EXISTS(action.select(SQL("1")).where(
        (action.target == Target.id) & (action.status == ERROR)
        & predicate(action.rollout)))


def _set_complete():
    """True when the set has a module of every mandatory module type of its set type."""
    required = DistributionSetTypeModule.alias()
    link = DistributionSetModule.alias()
    module = SoftwareModule.alias()
    present = (link.select(SQL("1"))
               .join(module, on=(link.module == module.id))
               .where((link.distribution_set == DistributionSet.id)
                      & (module.module_type == required.module_type)))
    missing = (required.select(SQL("1"))
               .where((required.set_type == DistributionSet.set_type)
                      & (required.mandatory == True)  # noqa: E712
                      & ~fn.EXISTS(present)))
    return NodeList((SQL("NOT"), fn.EXISTS(missing)), parens=True)


class Collection:
    """A Management API collection: its model, query fields and default order."""

    def __init__(self, name, model, fields, default_sort, maps=None, needs_sub=(),
                 tiebreak=None):
        self.name = name
        self.model = model
        self.fields = {}
        for field in fields:
            self.fields[field.name.lower()] = field
        self.maps = dict(maps or {})
        self.needs_sub = tuple(needs_sub)
        self.default_sort = default_sort
        self.tiebreak = tiebreak or [model.id.asc()]

    def alias(self, name, target):
        self.fields[name.lower()] = self.fields[target.lower()]

    def field_names(self):
        names = sorted(set(field.name for field in self.fields.values()))
        return names + ["%s.<key>" % prefix for prefix in sorted(self.maps)]

    def field(self, selector):
        """The field a `q` selector names, or RsqlInvalidField."""
        name = selector.lower()
        if name in self.fields:
            return self.fields[name]
        head, dot, key = selector.partition(".")
        head = head.lower()
        if head in self.maps:
            if not key:
                raise RsqlInvalidField("The field '%s' needs a key: use '%s.<key>'."
                                       % (selector, head))
            return self.maps[head](key)
        if name in self.needs_sub:
            raise RsqlInvalidField(
                "The field '%s' needs a sub-attribute, one of: %s." % (selector, ", ".join(
                    sorted(f.name for f in set(self.fields.values())
                           if f.name.lower().startswith(name + ".")))))
        raise RsqlInvalidField(
            "The field '%s' is not supported here; supported fields are: %s."
            % (selector, ", ".join(self.field_names())))


def _targets():
    fields = [
        Field("controllerId", STRING, _plain(Target.controller_id)),
        Field("name", STRING, _plain(Target.name)),
        Field("description", STRING, _plain(Target.description)),
        Field("updateStatus", STRING, _plain(Target.update_status)),
        Field("ipAddress", STRING, _plain(Target.address)),
        Field("group", STRING, _plain(Target.group)),
        Field("assignedDS.name", STRING, _related(DistributionSet, Target.assigned_ds, "name")),
        Field("assignedDS.version", STRING,
              _related(DistributionSet, Target.assigned_ds, "version")),
        Field("installedDS.name", STRING,
              _related(DistributionSet, Target.installed_ds, "name")),
        Field("installedDS.version", STRING,
              _related(DistributionSet, Target.installed_ds, "version")),
        Field("lastControllerRequestAt", NUMBER, _plain(Target.last_target_query)),
        Field("tag.name", STRING,
              exists=_tagged(TargetTagAssignment, TargetTag, "target", Target.id)),
        Field("failedrollout", NUMBER, exists=_failed_in_rollout),
    ] + _typed(TargetType, Target.target_type) + _audit(Target)
    collection = Collection(
        "targets", Target, fields, "controllerId:ASC",
        maps={"attribute": _attribute,
              "metadata": _metadata(TargetMetadata, "target", Target.id)},
        needs_sub=("assignedds", "installedds"))
    collection.alias("id", "controllerId")
    collection.alias("tag", "tag.name")
    collection.alias("type", "type.key")
    # hawkBit 1.0 named the type `targetType`; later versions keep it as an alias.
    for sub in ("id", "key", "name"):
        collection.alias("targetType." + sub, "type." + sub)
    collection.alias("targetType", "type.key")
    return collection


def _actions():
    fields = [
        Field("id", NUMBER, _plain(Action.id)),
        Field("active", BOOLEAN, _plain(Action.active)),
        ActionStatusField("status", STRING, _plain(Action.status)),
        Field("lastStatusCode", NUMBER, _plain(Action.last_status_code)),
        # An action without a weight shows (and filters) as 1000, hawkBit's default.
        Field("weight", NUMBER, lambda: fn.COALESCE(Action.weight, 1000)),
        Field("target.controllerId", STRING, _related(Target, Action.target, "controller_id")),
        Field("target.name", STRING, _related(Target, Action.target, "name")),
        Field("target.updateStatus", STRING, _related(Target, Action.target, "update_status")),
        Field("target.address", STRING, _related(Target, Action.target, "address")),
        Field("distributionSet.id", NUMBER, _plain(Action.distribution_set)),
        Field("distributionSet.name", STRING,
              _related(DistributionSet, Action.distribution_set, "name")),
        Field("distributionSet.version", STRING,
              _related(DistributionSet, Action.distribution_set, "version")),
        Field("distributionSet.type", STRING, _set_type_key_of_action),
        Field("rollout.id", NUMBER, _plain(Action.rollout)),
        Field("rollout.name", STRING, _related(Rollout, Action.rollout, "name")),
        Field("rolloutGroup.id", NUMBER, _plain(Action.rollout_group)),
        Field("rolloutGroup.name", STRING, _related(RolloutGroup, Action.rollout_group, "name")),
    ] + _audit(Action)
    collection = Collection("actions", Action, fields, "id:DESC",
                            needs_sub=("target", "distributionset", "rollout", "rolloutgroup"))
    collection.alias("detailStatus", "status")
    return collection


def _set_type_key_of_action():
    distribution_set = DistributionSet.alias()
    set_type = DistributionSetType.alias()
    return _scalar(distribution_set.select(set_type.key)
                   .join(set_type, on=(distribution_set.set_type == set_type.id))
                   .where(distribution_set.id == Action.distribution_set))


def _typed(type_model, foreign_key):
    return [
        Field("type.id", NUMBER, _plain(foreign_key)),
        Field("type.key", STRING, _related(type_model, foreign_key, "key")),
        Field("type.name", STRING, _related(type_model, foreign_key, "name")),
    ]


def _software_modules():
    fields = [
        Field("id", NUMBER, _plain(SoftwareModule.id)),
        Field("name", STRING, _plain(SoftwareModule.name)),
        Field("description", STRING, _plain(SoftwareModule.description)),
        Field("version", STRING, _plain(SoftwareModule.version)),
    ] + _typed(SoftwareModuleType, SoftwareModule.module_type) \
        + _audit(SoftwareModule)
    collection = Collection(
        "softwaremodules", SoftwareModule, fields, "id:ASC",
        maps={"metadata": _metadata(SoftwareModuleMetadata, "module", SoftwareModule.id)})
    collection.alias("type", "type.key")
    return collection


def _distribution_sets():
    fields = [
        Field("id", NUMBER, _plain(DistributionSet.id)),
        Field("name", STRING, _plain(DistributionSet.name)),
        Field("description", STRING, _plain(DistributionSet.description)),
        Field("version", STRING, _plain(DistributionSet.version)),
        Field("module.id", NUMBER, exists=_set_modules("id")),
        Field("module.name", STRING, exists=_set_modules("name")),
        Field("valid", BOOLEAN, _plain(DistributionSet.valid)),
        Field("complete", BOOLEAN, _set_complete),
        Field("tag.name", STRING, exists=_tagged(DistributionSetTagAssignment,
                                                 DistributionSetTag, "distribution_set",
                                                 DistributionSet.id)),
    ] + _typed(DistributionSetType, DistributionSet.set_type) \
        + _audit(DistributionSet)
    collection = Collection(
        "distributionsets", DistributionSet, fields, "id:ASC",
        maps={"metadata": _metadata(DistributionSetMetadata, "distribution_set",
                                    DistributionSet.id)},
        needs_sub=("module",))
    collection.alias("type", "type.key")
    collection.alias("tag", "tag.name")
    return collection


def _types(name, model, extra=()):
    fields = [
        Field("id", NUMBER, _plain(model.id)),
        Field("key", STRING, _plain(model.key)),
        Field("name", STRING, _plain(model.name)),
        Field("description", STRING, _plain(model.description)),
    ] + list(extra) + _audit(model)
    return Collection(name, model, fields, "id:ASC")


def _tags(name, model):
    fields = [
        Field("id", NUMBER, _plain(model.id)),
        Field("name", STRING, _plain(model.name)),
        Field("description", STRING, _plain(model.description)),
        Field("colour", STRING, _plain(model.colour)),
    ] + _audit(model)
    return Collection(name, model, fields, "id:ASC")


def _action_status():
    fields = [
        Field("id", NUMBER, _plain(ActionStatus.id)),
        Field("timestamp", NUMBER, _plain(ActionStatus.timestamp)),
        Field("reportedAt", NUMBER, _plain(ActionStatus.reported_at)),
        Field("createdBy", STRING, _plain(ActionStatus.created_by)),
    ]
    collection = Collection("actionstatus", ActionStatus, fields, "id:DESC")
    collection.alias("createdAt", "reportedAt")
    return collection


def _target_filters():
    fields = [
        Field("id", NUMBER, _plain(TargetFilter.id)),
        Field("name", STRING, _plain(TargetFilter.name)),
        Field("autoAssignDistributionSet.name", STRING,
              _related(DistributionSet, TargetFilter.auto_assign_ds, "name")),
        Field("autoAssignDistributionSet.version", STRING,
              _related(DistributionSet, TargetFilter.auto_assign_ds, "version")),
    ] + _audit(TargetFilter)
    return Collection("targetfilters", TargetFilter, fields, "id:ASC",
                      needs_sub=("autoassigndistributionset",))


def _rollouts():
    fields = [
        Field("id", NUMBER, _plain(Rollout.id)),
        Field("name", STRING, _plain(Rollout.name)),
        Field("description", STRING, _plain(Rollout.description)),
        Field("status", STRING, _plain(Rollout.status)),
        Field("distributionSet.id", NUMBER, _plain(Rollout.distribution_set)),
        Field("distributionSet.name", STRING,
              _related(DistributionSet, Rollout.distribution_set, "name")),
        Field("distributionSet.version", STRING,
              _related(DistributionSet, Rollout.distribution_set, "version")),
        Field("distributionSet.type", STRING, _set_type_key_of(Rollout.distribution_set)),
    ] + _audit(Rollout)
    return Collection("rollouts", Rollout, fields, "id:ASC", needs_sub=("distributionset",))


def _set_type_key_of(foreign_key):
    def column():
        distribution_set = DistributionSet.alias()
        set_type = DistributionSetType.alias()
        return _scalar(distribution_set.select(set_type.key)
                       .join(set_type, on=(distribution_set.set_type == set_type.id))
                       .where(distribution_set.id == foreign_key))
    return column


def _rollout_groups():
    fields = [
        Field("id", NUMBER, _plain(RolloutGroup.id)),
        Field("name", STRING, _plain(RolloutGroup.name)),
        Field("description", STRING, _plain(RolloutGroup.description)),
        Field("status", STRING, _plain(RolloutGroup.status)),
    ] + _audit(RolloutGroup)
    return Collection("rolloutgroups", RolloutGroup, fields, "id:ASC")


COLLECTIONS = {
    "targets": _targets(),
    "actions": _actions(),
    "softwaremodules": _software_modules(),
    "distributionsets": _distribution_sets(),
    "softwaremoduletypes": _types(
        "softwaremoduletypes", SoftwareModuleType,
        [Field("maxAssignments", NUMBER, _plain(SoftwareModuleType.max_assignments))]),
    "distributionsettypes": _types("distributionsettypes", DistributionSetType),
    "actionstatus": _action_status(),
    "targettags": _tags("targettags", TargetTag),
    "distributionsettags": _tags("distributionsettags", DistributionSetTag),
    "targettypes": _types("targettypes", TargetType),
    "targetfilters": _target_filters(),
    "rollouts": _rollouts(),
    "rolloutgroups": _rollout_groups(),
}


def _collection(collection):
    if isinstance(collection, Collection):
        return collection
    try:
        return COLLECTIONS[collection]
    except KeyError:
        raise ValueError("unknown collection %r" % (collection,))


# --------------------------------------------------------------------------------------------
# Compiler: AST -> Peewee expression

_PLACEHOLDER = re.compile(r"\$\{(NOW_TS|OVERDUE_TS)\}")


def _duration_seconds(text):
    """Seconds of a duration setting; tolerates a `~NN%` jitter or an override list."""
    text = str(text)
    try:
        return schedule.parse_duration(text)
    except ValueError:
        head = re.split(r"[~,]", text, maxsplit=1)[0].strip()
        try:
            return schedule.parse_duration(head)
        except ValueError:
            return 0


class _Context:
    def __init__(self, now=None):
        self._now = now
        self._overdue = None

    @property
    def now(self):
        if self._now is None:
            self._now = int(time.time() * 1000)
        return self._now

    @property
    def overdue(self):
        if self._overdue is None:
            settings = tenant.settings()
            seconds = (_duration_seconds(settings["pollingTime"])
                       + _duration_seconds(settings["pollingOverdueTime"]))
            self._overdue = self.now - seconds * 1000
        return self._overdue

    def placeholders(self, text):
        if "${" not in text:
            return text
        return _PLACEHOLDER.sub(
            lambda m: str(self.now if m.group(1) == "NOW_TS" else self.overdue), text)

    def text(self, argument):
        return self.placeholders(argument.text)


def _balanced(operator, expressions):
    """Combine many expressions into a balanced tree (keeps SQL expression depth low)."""
    if len(expressions) == 1:
        return expressions[0]
    middle = len(expressions) // 2
    return operator(_balanced(operator, expressions[:middle]),
                    _balanced(operator, expressions[middle:]))


def _compile(node, collection, context):
    if isinstance(node, And):
        return _balanced(lambda a, b: a & b,
                         [_compile(child, collection, context) for child in node.children])
    if isinstance(node, Or):
        return _balanced(lambda a, b: a | b,
                         [_compile(child, collection, context) for child in node.children])
    return _comparison(node, collection, context)


def _comparison(node, collection, context):
    field = collection.field(node.selector)
    operator, arguments = node.operator, node.arguments
    if operator in ("is", "not") and arguments[0].is_null:
        present = field.not_null()
        return present if operator == "not" else ~present
    negate = operator in ("ne", "not", "out")
    positive = {"ne": "eq", "not": "eq", "out": "in"}.get(operator, operator)
    if positive in ("eq", "is") and not arguments[0].has_wildcard and arguments[0].text == "":
        # =="" is "null or empty", !="" is "present and non-empty".
        present = field.present()
        return present if negate else ~present
    expression = field.positive(positive, arguments, context)
    return ~expression if negate else expression


def filter_expression(collection, q, now=None):
    """The Peewee expression for the RSQL filter `q`, or None when `q` is empty."""
    collection = _collection(collection)
    tree = parse(q)
    if tree is None:
        return None
    return _compile(tree, collection, _Context(now))


# --------------------------------------------------------------------------------------------
# Sorting and paging


def parse_sort(collection, sort):
    """[(Field, descending)] for a `sort` parameter; [] when it is empty."""
    collection = _collection(collection)
    terms = []
    for term in (sort or "").split(","):
        if not term.strip():
            continue
        pieces = term.split(":")
        if len(pieces) != 2:
            raise SortSyntax("The sort parameter '%s' is not of the form field:ASC|DESC[,...]."
                             % sort)
        name, direction = pieces[0].strip(), pieces[1].strip()
        field = collection.fields.get(name.lower())
        if field is None or not field.sortable:
            raise SortInvalidField("Sorting by '%s' is not supported; sortable fields are: %s."
                                   % (name, ", ".join(sorted(
                                       set(f.name for f in collection.fields.values()
                                           if f.sortable)))))
        if direction.upper() not in ("ASC", "DESC"):
            raise SortInvalidDirection("The sort direction '%s' is neither ASC nor DESC."
                                       % direction)
        terms.append((field, direction.upper() == "DESC"))
    return terms


def order_by(collection, sort=None):
    """Peewee ordering for `sort` (or the collection's default), ties broken by id ascending."""
    collection = _collection(collection)
    terms = parse_sort(collection, sort) or parse_sort(collection, collection.default_sort)
    ordering = []
    for field, descending in terms:
        for key in field.sort_keys():
            ordering.append(ascending(key, descending))
    return ordering + list(collection.tiebreak)


def clamp(offset, limit):
    """hawkBit's paging rules: negative offset -> 0, limit < 1 -> 50, limit > 500 -> 500."""
    offset = 0 if offset is None or offset < 0 else offset
    if limit is None or limit < 1:
        limit = DEFAULT_LIMIT
    return offset, min(limit, MAX_LIMIT)


def page(select, collection, q=None, sort=None, offset=None, limit=None, now=None,
         default_order=None):
    """Filter, sort and page `select` (based on the collection's model): (rows, total).

    `default_order` (a list of Peewee orderings) replaces the collection's default order
    when `sort` is empty, e.g. creation order for the targets of a distribution set.
    """
    collection = _collection(collection)
    expression = filter_expression(collection, q, now=now)
    if expression is not None:
        select = select.where(expression)
    if default_order is not None and not parse_sort(collection, sort):
        ordering = list(default_order) + list(collection.tiebreak)
    else:
        ordering = order_by(collection, sort)
    total = select.order_by().count()
    offset, limit = clamp(offset, limit)
    rows = list(select.order_by(*ordering).offset(offset).limit(limit))
    return rows, total


__all__ = [
    "COLLECTIONS", "Collection", "Field", "Argument", "And", "Or", "Comparison", "STAR",
    "RsqlSyntax", "RsqlInvalidField", "SortSyntax", "SortInvalidField",
    "SortInvalidDirection", "parse", "filter_expression", "parse_sort", "order_by", "clamp",
    "page",
]
