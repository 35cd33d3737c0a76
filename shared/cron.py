"""Standard 5-field cron (as the guide writes it): validation, conversion to EventBridge's
6-field form, next fire times. The conversion parses the Unix form into sets of values and
writes EventBridge's from them, so it is exact by construction (tests check it against two
independent evaluators). Next fire times use croniter, imported lazily: the Lambda handlers
never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "CronError",
    "CronExpr",
    "next_fire_times",
    "parse",
    "previous_fire_time",
    "scheduled_minute",
    "to_eventbridge",
]


class CronError(ValueError):
    """A cron expression that is malformed or that EventBridge cannot express."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
# Unix day-of-week: 0-7, both 0 and 7 are Sunday.
_DOW = _Field("day-of-week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"))
_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_EB_DOW_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # Unix 0..6


@dataclass(frozen=True)
class CronExpr:
    """A parsed 5-field cron expression: the set of values each field allows."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0..6, Sunday = 0 (7 folded into 0)
    dom_restricted: bool
    dow_restricted: bool


def _value(token: str, field: _Field, expr: str) -> int:
    if token.isdigit():
        value = int(token)
    elif field.names and token.upper() in field.names:
        value = field.low + field.names.index(token.upper())
    else:
        hint = f" or a name ({', '.join(dict.fromkeys(field.names))})" if field.names else ""
        raise CronError(
            f"{expr!r}: {token!r} is not valid in the {field.name} field; use a number {field.low}-{field.high}{hint}"
        )
    if not field.low <= value <= field.high:
        raise CronError(f"{expr!r}: {value} is out of range for the {field.name} field ({field.low}-{field.high})")
    return value


def _parse_field(text: str, field: _Field, expr: str) -> set[int]:
    values: set[int] = set()
    if not text:
        raise CronError(f"{expr!r}: empty {field.name} field")
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{expr!r}: step {step_text!r} in the {field.name} field must be a positive number")
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, field, expr), _value(last, field, expr)
            if low > high:
                raise CronError(f"{expr!r}: range {base!r} in the {field.name} field runs backwards; write it low-high")
        elif base == "" or base == "?":
            raise CronError(
                f"{expr!r}: {item!r} is not standard cron; the registry takes 5-field Unix cron "
                "(the EventBridge form is generated)"
            )
        else:
            low = _value(base, field, expr)
            high = field.high if step_text else low  # Vixie: "a/s" means a-max/s
        values.update(range(low, high + 1, step))
    return values


def parse(expr: str) -> CronExpr:
    """Parse and validate a 5-field Unix cron expression (UTC)."""
    if not isinstance(expr, str):
        raise CronError(f"a cron expression must be text, not {type(expr).__name__}")
    text = " ".join(expr.split())
    text = _MACROS.get(text.lower(), text)
    if text.lower().startswith("cron(") or text.lower().startswith("rate("):
        raise CronError(
            f"{expr!r} is an EventBridge expression; write standard 5-field cron such as '0 0 * * *' "
            "(the EventBridge form is generated from it)"
        )
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(
            f"{expr!r} has {len(parts)} field(s); standard cron has 5: minute hour day-of-month month day-of-week"
        )
    sets = [_parse_field(part, field, expr) for part, field in zip(parts, _FIELDS, strict=True)]
    dow = {0 if d == 7 else d for d in sets[4]}
    return CronExpr(
        text=text,
        minutes=frozenset(sets[0]),
        hours=frozenset(sets[1]),
        days_of_month=frozenset(sets[2]),
        months=frozenset(sets[3]),
        days_of_week=frozenset(dow),
        # Any day field other than a bare "*" restricts it (so "*/2" does too: cron
        # dialects disagree on how "*/2" combines with the other day field).
        dom_restricted=parts[2] != "*",
        dow_restricted=parts[4] != "*",
    )


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _eb_numeric(values: frozenset[int], low: int, high: int) -> str:
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) > 2:  # two values read better as a list: "5,35"
        step = ordered[1] - ordered[0]
        # A full progression to the field's end is EventBridge's "start/step".
        if ordered == list(range(ordered[0], high + 1, step)) and step > 1:
            return f"{ordered[0]}/{step}"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in _runs(ordered))


def _eb_dow(values: frozenset[int]) -> str:
    names = [_EB_DOW_NAMES[a] if a == b else f"{_EB_DOW_NAMES[a]}-{_EB_DOW_NAMES[b]}" for a, b in _runs(sorted(values))]
    return ",".join(names)


def to_eventbridge(expr: str) -> str:
    """Convert 5-field Unix cron to EventBridge's ``cron(...)`` schedule expression.

    >>> to_eventbridge("0 0 * * 0")
    'cron(0 0 ? * SUN *)'
    >>> to_eventbridge("*/15 * * * *")
    'cron(0/15 * * * ? *)'
    """
    cron = parse(expr)
    if cron.dom_restricted and cron.dow_restricted:
        raise CronError(
            f"{expr!r} restricts both day-of-month and day-of-week, which Unix cron reads as "
            "'either matches' and EventBridge cannot express; keep one of the two as '*' "
            "(or schedule two jobs, one per condition)"
        )
    if cron.dow_restricted and len(cron.days_of_week) < 7:
        dom, dow = "?", _eb_dow(cron.days_of_week)
    elif cron.dow_restricted:  # e.g. "0-6": every day
        dom, dow = "*", "?"
    else:
        dom, dow = _eb_numeric(cron.days_of_month, 1, 31), "?"
    minute = _eb_numeric(cron.minutes, 0, 59)
    hour = _eb_numeric(cron.hours, 0, 23)
    month = _eb_numeric(cron.months, 1, 12)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise CronError("times must be timezone-aware (UTC)")
    return moment.astimezone(UTC)


def next_fire_times(expr: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, in UTC (Unix semantics)."""
    from croniter import croniter  # lazy: only the CLI, the scheduler and the watchdog need it

    text = parse(expr).text
    it = croniter(text, _as_utc(after))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def previous_fire_time(expr: str, at_or_before: datetime) -> datetime:
    """The latest fire time at or before ``at_or_before``, in UTC."""
    from croniter import croniter

    text = parse(expr).text
    moment = _as_utc(at_or_before)
    if croniter.match(text, moment) and moment.second == 0 and moment.microsecond == 0:
        return moment
    return croniter(text, moment).get_prev(datetime).astimezone(UTC)


def scheduled_minute(stamp: datetime) -> datetime:
    """The occurrence a scheduled event stamped ``stamp`` belongs to: the start of its minute, in UTC.

    EventBridge fires a cron rule within the scheduled minute, not on its second, so the
    event's ``time`` may read ``00:00:07`` for the ``00:00`` occurrence. Every cron
    occurrence is a whole minute, so the minute is the occurrence, whatever the schedule
    (the registry's or a ``jobctl reschedule``'s), and no croniter is loaded to find it.
    """
    return _as_utc(stamp).replace(second=0, microsecond=0)
