"""Time rules of hawkBit: polling durations and maintenance windows.

hawkBit exchanges durations as ``HH:mm:ss`` strings (how long a device
should sleep between polls, how long a maintenance window stays open) and
describes a maintenance window as a Quartz cron schedule, a duration and a
fixed UTC offset. Everything here is pure: times are integer epoch
milliseconds in UTC and nothing reads the clock, so callers pass ``now_ms``.
"""

import bisect
import calendar
import functools
import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Sequence, Tuple

_DAY_SECONDS = 24 * 60 * 60

_CLOCK = re.compile(r"(?:(?:([0-9]{1,2}):)?([0-9]{1,2}):)?([0-9]{1,2})")
_ISO_DURATION = re.compile(
    r"P(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?", re.IGNORECASE
)
_UTC_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
_MAX_OFFSET_MINUTES = 18 * 60


def parse_duration(text: str) -> int:
    """Return the seconds in ``HH:mm:ss``, ``mm:ss``, ``ss`` or ISO-8601 ``PnDTnHnMnS``."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: expected a string")
    clock = _CLOCK.fullmatch(text)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        if hours > 23:
            raise ValueError(f"invalid duration {text!r}: hours must be 0-23")
        if minutes > 59 or seconds > 59:
            raise ValueError(f"invalid duration {text!r}: minutes and seconds must be 0-59")
        return (hours * 60 + minutes) * 60 + seconds
    iso = _ISO_DURATION.fullmatch(text)
    # The pattern alone would accept "P", "PT" and "P1DT", which ISO-8601 forbids.
    if iso and any(iso.groups()) and not text.upper().endswith("T"):
        days, hours, minutes, seconds = (int(part or 0) for part in iso.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    raise ValueError(
        f"invalid duration {text!r}: expected HH:mm:ss, mm:ss, ss or ISO-8601 such as PT1H30M"
    )


def format_duration(seconds: int) -> str:
    """Render seconds as zero-padded ``HH:MM:SS``, clamped to 00:00:00..23:59:59."""
    # Device clients parse this with strptime("%H:%M:%S"), which cannot express a day or more.
    clamped = min(max(int(seconds), 0), _DAY_SECONDS - 1)
    hours, rest = divmod(clamped, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


class PollingTime(NamedTuple):
    """A tenant's pollingTime: the interval, hawkBit's optional `~NN%` deviation, and per-target
    overrides as (RSQL target filter, seconds) pairs, first match wins."""

    seconds: int
    deviation_percent: int
    overrides: Tuple[Tuple[str, int], ...]


_DEVIATION = re.compile(r"(.*?)\s*~\s*([0-9]{1,2})\s*%\s*")


def parse_polling_time(text: str) -> PollingTime:
    """`00:05:00`, `00:05:00~10%`, or `00:05:00, <filter> -> 00:01:00, <filter> -> ...`."""
    if not isinstance(text, str):
        raise ValueError("invalid polling time %r" % (text,))
    head, _, rest = text.partition(",")
    deviation = _DEVIATION.fullmatch(head.strip())
    base = parse_duration((deviation.group(1) if deviation else head).strip())
    overrides = []
    if rest.strip():
        # "f1 -> d1, f2 -> d2": each piece between arrows ends with a duration, except the
        # first (a filter only) and the last (a duration only); filters may contain commas.
        pieces = rest.split("->")
        if len(pieces) < 2:
            raise ValueError("invalid polling time override in %r" % text)
        target_filter = pieces[0].strip()
        for piece in pieces[1:-1]:
            duration, separator, next_filter = piece.partition(",")
            if not separator:
                raise ValueError("invalid polling time override in %r" % text)
            overrides.append((target_filter, parse_duration(duration.strip())))
            target_filter = next_filter.strip()
        overrides.append((target_filter, parse_duration(pieces[-1].strip())))
        if any(not target_filter for target_filter, _ in overrides):
            raise ValueError("a polling time override needs a target filter in %r" % text)
    return PollingTime(base, int(deviation.group(2)) if deviation else 0, tuple(overrides))


def parse_utc_offset(text: str) -> int:
    """Return the offset from UTC in minutes for ``±HH:MM``, ``±HHMM`` or ``Z``."""
    if text == "Z":
        return 0
    match = _UTC_OFFSET.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid UTC offset {text!r}: expected ±HH:MM, ±HHMM or Z")
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    total = hours * 60 + minutes
    if minutes > 59 or total > _MAX_OFFSET_MINUTES:
        raise ValueError(f"invalid UTC offset {text!r}: must lie within -18:00..+18:00")
    return -total if sign == "-" else total


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: Dict[str, int]


_MONTH_NAMES = {name: number for number, name in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
# Quartz numbers the days of the week from Sunday = 1, unlike ISO-8601 and Unix cron.
_WEEKDAY_NAMES = {name: number for number, name in enumerate(
    "SUN MON TUE WED THU FRI SAT".split(), start=1)}
_SATURDAY = _WEEKDAY_NAMES["SAT"]
_SUNDAY = _WEEKDAY_NAMES["SUN"]

_SECONDS = _Field("seconds", 0, 59, {})
_MINUTES = _Field("minutes", 0, 59, {})
_HOURS = _Field("hours", 0, 23, {})
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, _WEEKDAY_NAMES)
_YEAR = _Field("year", 1970, 2199, {})

# Wall-clock seconds since 1970-01-01T00:00 at which the supported years end.
_WALL_END = calendar.timegm((_YEAR.high + 1, 1, 1, 0, 0, 0))

# A day rule yields the matching days of one month, given its length and the
# Quartz weekday of its first day.
_DayRule = Callable[[int, int], Iterable[int]]


def _number(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise ValueError(f"{what}: expected a number, got {text!r}")
    return int(text)


def _value(token: str, field: _Field) -> int:
    if token in field.names:
        return field.names[token]
    value = _number(token, field.name)
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _terms(text: str, field: _Field) -> List[str]:
    if "?" in text:
        raise ValueError(
            f"{field.name}: '?' must stand alone, in day-of-month or day-of-week only"
        )
    terms = text.split(",")
    if "" in terms:
        raise ValueError(f"{field.name}: empty element in list {text!r}")
    return terms


def _plain_values(term: str, field: _Field) -> List[int]:
    """Expand ``*``, ``a``, ``a-b`` and their ``/step`` forms."""
    base, slash, step_text = term.partition("/")
    if base == "*":
        first, last = field.low, field.high
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = _value(first_text, field), _value(last_text, field)
    else:
        first = _value(base, field)
        last = field.high if slash else first
    if first <= last:
        run = list(range(first, last + 1))
    else:
        # Quartz lets a range wrap past the end of its field, as in FRI-MON or 22-2.
        run = list(range(first, field.high + 1)) + list(range(field.low, last + 1))
    if slash:
        step = _number(step_text, f"{field.name} step")
        span = field.high - field.low + 1
        if not 1 <= step <= span:
            raise ValueError(f"{field.name}: step {step} is outside 1-{span}")
        run = run[::step]
    return run


def _parse_values(text: str, field: _Field) -> Tuple[int, ...]:
    values = set()
    for term in _terms(text, field):
        values.update(_plain_values(term, field))
    return tuple(sorted(values))


def _weekday_of(day: int, first_weekday: int) -> int:
    return (first_weekday + day - 2) % 7 + 1


def _listed_days(days: FrozenSet[int], length: int, first_weekday: int) -> List[int]:
    return [day for day in days if day <= length]


def _listed_weekdays(weekdays: FrozenSet[int], length: int, first_weekday: int) -> List[int]:
    return [day for day in range(1, length + 1) if _weekday_of(day, first_weekday) in weekdays]


def _days_before_last(offset: int, length: int, first_weekday: int) -> List[int]:
    return [length - offset] if length - offset >= 1 else []


def _nearest_weekday(day: int, length: int, first_weekday: int) -> List[int]:
    if day > length:
        return []
    weekday = _weekday_of(day, first_weekday)
    # Quartz never moves the fire day into a neighbouring month.
    if weekday == _SATURDAY:
        return [day - 1] if day > 1 else [day + 2]
    if weekday == _SUNDAY:
        return [day + 1] if day < length else [day - 2]
    return [day]


def _last_weekday(length: int, first_weekday: int) -> List[int]:
    return _nearest_weekday(length, length, first_weekday)


def _last_of_weekday(weekday: int, length: int, first_weekday: int) -> List[int]:
    return [length - (_weekday_of(length, first_weekday) - weekday) % 7]


def _nth_of_weekday(weekday: int, nth: int, length: int, first_weekday: int) -> List[int]:
    day = 1 + (weekday - first_weekday) % 7 + 7 * (nth - 1)
    return [day] if day <= length else []


def _day_of_month_rules(text: str) -> Tuple[_DayRule, ...]:
    rules: List[_DayRule] = []
    listed: List[int] = []
    for term in _terms(text, _DAY_OF_MONTH):
        if term == "L":
            rules.append(functools.partial(_days_before_last, 0))
        elif term == "LW":
            rules.append(_last_weekday)
        elif term.startswith("L-"):
            offset = _number(term[2:], "day-of-month offset from L")
            if not 1 <= offset <= 30:
                raise ValueError(f"day-of-month: offset {offset} in {term!r} is outside 1-30")
            rules.append(functools.partial(_days_before_last, offset))
        elif term.endswith("W"):
            rules.append(functools.partial(_nearest_weekday, _value(term[:-1], _DAY_OF_MONTH)))
        else:
            listed.extend(_plain_values(term, _DAY_OF_MONTH))
    if listed:
        rules.append(functools.partial(_listed_days, frozenset(listed)))
    return tuple(rules)


def _day_of_week_rules(text: str) -> Tuple[_DayRule, ...]:
    rules: List[_DayRule] = []
    listed: List[int] = []
    for term in _terms(text, _DAY_OF_WEEK):
        if "#" in term:
            weekday_text, _, nth_text = term.partition("#")
            nth = _number(nth_text, "day-of-week occurrence after #")
            if not 1 <= nth <= 5:
                raise ValueError(f"day-of-week: occurrence {nth} in {term!r} is outside 1-5")
            rules.append(
                functools.partial(_nth_of_weekday, _value(weekday_text, _DAY_OF_WEEK), nth)
            )
        elif term == "L":
            # A bare L here is the last day of the week.
            listed.append(_SATURDAY)
        elif term.endswith("L"):
            rules.append(functools.partial(_last_of_weekday, _value(term[:-1], _DAY_OF_WEEK)))
        else:
            listed.extend(_plain_values(term, _DAY_OF_WEEK))
    if listed:
        rules.append(functools.partial(_listed_weekdays, frozenset(listed)))
    return tuple(rules)


class QuartzCron:
    """A parsed Quartz cron expression: ``sec min hour day-of-month month day-of-week [year]``."""

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str):
            raise ValueError(f"invalid Quartz cron expression {expression!r}: expected a string")
        self.expression = expression
        try:
            self._parse(expression.upper().split())
        except ValueError as exc:
            raise ValueError(f"invalid Quartz cron expression {expression!r}: {exc}") from None

    def _parse(self, fields: List[str]) -> None:
        if len(fields) not in (6, 7):
            raise ValueError(
                "expected 6 or 7 fields (seconds minutes hours day-of-month month "
                f"day-of-week [year]), got {len(fields)}"
            )
        seconds, minutes, hours, day_of_month, month, day_of_week = fields[:6]
        if (day_of_month == "?") == (day_of_week == "?"):
            raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
        if day_of_month == "?":
            self._day_rules = _day_of_week_rules(day_of_week)
        else:
            self._day_rules = _day_of_month_rules(day_of_month)
        # Ordered as the search descends; the days slot stays empty because
        # matching days depend on the year and month.
        self._levels: Tuple[Tuple[int, ...], ...] = (
            _parse_values(fields[6] if len(fields) == 7 else "*", _YEAR),
            _parse_values(month, _MONTH),
            (),
            _parse_values(hours, _HOURS),
            _parse_values(minutes, _MINUTES),
            _parse_values(seconds, _SECONDS),
        )

    def __repr__(self) -> str:
        return f"QuartzCron({self.expression!r})"

    def next_fire_after(self, after_ms: int, offset_minutes: int = 0) -> Optional[int]:
        """Return the first fire time strictly after ``after_ms``, or None if there is none.

        The expression is read on the wall clock of the fixed UTC offset
        ``offset_minutes``; fire times have whole-second resolution.
        """
        shift = offset_minutes * 60
        wall = after_ms // 1000 + 1 + shift
        if wall >= _WALL_END:
            return None
        # Nothing fires before 1970, so earlier starts need not be represented.
        start = tuple(time.gmtime(max(wall, 0))[:6])
        found = self._search((), start, True)
        if found is None:
            return None
        return (calendar.timegm(found) - shift) * 1000

    def _search(
        self, prefix: Tuple[int, ...], start: Sequence[int], tight: bool
    ) -> Optional[Tuple[int, ...]]:
        """Find the earliest matching (year, month, day, hour, minute, second) >= start.

        Each level only tries values its field allows, so unmatchable years,
        months, days, hours and minutes are skipped whole. While ``tight``,
        the prefix equals start's prefix and values below start are excluded.
        """
        level = len(prefix)
        if level == 6:
            return prefix
        candidates = self._days(*prefix) if level == 2 else self._levels[level]
        lowest = start[level] if tight else 0
        for value in candidates[bisect.bisect_left(candidates, lowest):]:
            found = self._search(prefix + (value,), start, tight and value == lowest)
            if found is not None:
                return found
        return None

    def _days(self, year: int, month: int) -> Sequence[int]:
        monday_based, length = calendar.monthrange(year, month)
        first_weekday = (monday_based + 1) % 7 + 1
        days = set()
        for rule in self._day_rules:
            days.update(rule(length, first_weekday))
        return sorted(days)


@functools.lru_cache(maxsize=256)
def quartz_cron(expression: str) -> QuartzCron:
    """Parse ``expression`` once; every poll re-evaluates the same few schedules."""
    return QuartzCron(expression)


@dataclass(frozen=True)
class WindowState:
    """Where ``now`` falls relative to a maintenance schedule.

    ``start_ms`` is the start of the window open now or else of the next
    one; ``lapsed`` means there is neither.
    """

    start_ms: Optional[int]
    is_open: bool
    lapsed: bool


def window_state(schedule: str, duration: str, timezone: str, now_ms: int) -> WindowState:
    """Locate ``now_ms`` against a maintenance window.

    ``schedule`` is a Quartz cron expression, ``duration`` how long each
    window stays open (``HH:mm:ss``) and ``timezone`` the ``±hh:mm`` offset
    the schedule is read in.
    """
    length_ms = parse_duration(duration) * 1000
    offset = parse_utc_offset(timezone)
    # A window that started less than one duration ago is still open.
    start = quartz_cron(schedule).next_fire_after(now_ms - length_ms, offset)
    if start is None:
        return WindowState(start_ms=None, is_open=False, lapsed=True)
    return WindowState(start_ms=start, is_open=start <= now_ms < start + length_ms, lapsed=False)


def validate_window(schedule: str, duration: str, timezone: str, now_ms: int) -> WindowState:
    """Check a maintenance window as hawkBit does on assignment; return its state if valid."""
    if parse_duration(duration) == 0:
        raise ValueError(f"invalid maintenance window duration {duration!r}: must be positive")
    state = window_state(schedule, duration, timezone, now_ms)
    if state.lapsed:
        raise ValueError(
            f"maintenance schedule {schedule!r} has no window that is open now or starts later"
        )
    return state
