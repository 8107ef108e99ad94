"""EventBridge Scheduler expressions: ``at()``, ``rate()`` and AWS's six-field ``cron()``, in the schedule's time zone.

A campaign's lifecycle asks it whether a firing was the schedule's last; the local stack's router (moto stores
schedules but never fires them) asks it when each schedule is next due.

Semantics follow the EventBridge Scheduler user guide:

- ``cron(minutes hours day-of-month month day-of-week year)``; exactly one of day-of-month and day-of-week is ``?``;
  day-of-week counts 1 = SUN .. 7 = SAT; ``L`` (last), ``W`` (nearest weekday) in day-of-month; ``L`` and ``#`` in
  day-of-week; names JAN-DEC and SUN-SAT.
- Local times that do not exist (the hour skipped when clocks go forward) are skipped; an hour that happens twice when
  clocks go back fires once, at its first occurrence.
- ``rate(n unit)`` fires every period counted from an anchor (the schedule's start date, else its creation time).
- ``at(yyyy-mm-ddThh:mm:ss)`` is one local time in the schedule's time zone.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MAX_YEAR = 2199
_MIN_YEAR = 1970
_MONTHS = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
_EXPRESSION = re.compile(r"^\s*(at|rate|cron)\((.*)\)\s*$", re.IGNORECASE)


class ScheduleExpressionError(ValueError):
    """An expression EventBridge Scheduler would reject."""


@dataclass(frozen=True)
class AtExpression:
    """A one-time schedule: a wall-clock time in the schedule's time zone."""

    local_time: datetime  # naive


@dataclass(frozen=True)
class RateExpression:
    """A fixed period."""

    period: timedelta


@dataclass(frozen=True)
class DayOfMonthRule:
    """The day-of-month field: a set of days, ``L`` (last day), ``LW`` (last weekday) or ``nW`` (nearest weekday)."""

    days: frozenset[int] = frozenset()
    last: bool = False
    last_weekday: bool = False
    nearest_weekday_to: int | None = None

    def matches(self, day: date) -> bool:
        """Whether ``day`` is selected by this rule."""
        month_length = calendar.monthrange(day.year, day.month)[1]
        if self.last:
            return day.day == month_length
        if self.last_weekday:
            return day == _weekday_on_or_before(date(day.year, day.month, month_length))
        if self.nearest_weekday_to is not None:
            return day == _nearest_weekday(day.year, day.month, min(self.nearest_weekday_to, month_length))
        return day.day in self.days


@dataclass(frozen=True)
class DayOfWeekRule:
    """The day-of-week field: a set of weekdays (1 = SUN), ``nL`` (last such weekday) or ``n#k`` (k-th such weekday)."""

    weekdays: frozenset[int] = frozenset()
    last_of: int | None = None
    nth: tuple[int, int] | None = None  # (weekday, k)

    def matches(self, day: date) -> bool:
        """Whether ``day`` is selected by this rule."""
        weekday = _aws_weekday(day)
        if self.last_of is not None:
            month_length = calendar.monthrange(day.year, day.month)[1]
            return weekday == self.last_of and day.day + 7 > month_length
        if self.nth is not None:
            wanted, k = self.nth
            return weekday == wanted and (day.day - 1) // 7 + 1 == k
        return weekday in self.weekdays


@dataclass(frozen=True)
class CronExpression:
    """A parsed six-field cron expression; exactly one of ``day_of_month`` and ``day_of_week`` is set."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: DayOfMonthRule | None
    day_of_week: DayOfWeekRule | None

    def matches_day(self, day: date) -> bool:
        """Whether the expression selects ``day`` (its hours and minutes aside)."""
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.day_of_month is not None:
            return self.day_of_month.matches(day)
        return self.day_of_week is not None and self.day_of_week.matches(day)


Expression = AtExpression | RateExpression | CronExpression


def parse(expression: str) -> Expression:
    """Parse an EventBridge Scheduler schedule expression.

    Raises:
        ScheduleExpressionError: the expression is malformed.
    """
    match = _EXPRESSION.match(expression)
    if not match:
        raise ScheduleExpressionError(f"not an at(), rate() or cron() expression: {expression!r}")
    kind, body = match.group(1).lower(), match.group(2).strip()
    if kind == "at":
        try:
            return AtExpression(datetime.strptime(body, "%Y-%m-%dT%H:%M:%S"))
        except ValueError as exc:
            raise ScheduleExpressionError(f"at() needs yyyy-mm-ddThh:mm:ss: {expression!r}") from exc
    if kind == "rate":
        return _parse_rate(body, expression)
    return _parse_cron(body, expression)


def next_fire_time(
    expression: Expression | str,
    after: datetime,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> datetime | None:
    """The first time (aware, UTC) strictly after ``after`` at which the schedule fires, or None if it never does.

    ``anchor`` is where a rate() counts from (defaults to ``after``); cron() and at() ignore it.
    """
    parsed = parse(expression) if isinstance(expression, str) else expression
    after = _aware(after)
    if isinstance(parsed, AtExpression):
        when = at_time(parsed, timezone)
        return when if when > after else None
    if isinstance(parsed, RateExpression):
        start = _aware(anchor) if anchor is not None else after
        if after < start:
            return start
        periods = (after - start) // parsed.period + 1
        return start + periods * parsed.period
    return _next_cron(parsed, after, ZoneInfo(timezone))


def at_time(expression: AtExpression | str, timezone: str = "UTC") -> datetime:
    """The instant (aware, UTC) of a one-time schedule."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    if not isinstance(parsed, AtExpression):
        raise ScheduleExpressionError(f"not an at() expression: {expression!r}")
    zone = ZoneInfo(timezone)
    # A time inside a forward clock change does not exist; the offset before the change applies, as zoneinfo does.
    return _localize(parsed.local_time, zone) or parsed.local_time.replace(tzinfo=zone).astimezone(UTC)


def _parse_rate(body: str, expression: str) -> RateExpression:
    parts = body.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].lower() not in _RATE_UNITS:
        raise ScheduleExpressionError(f"rate() needs 'value unit' (minutes, hours, days): {expression!r}")
    value = int(parts[0])
    if value < 1:
        raise ScheduleExpressionError(f"rate() value must be positive: {expression!r}")
    return RateExpression(timedelta(seconds=value * _RATE_UNITS[parts[1].lower()]))


def _parse_cron(body: str, expression: str) -> CronExpression:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(f"cron() needs 6 fields (min hour dom month dow year): {expression!r}")
    minute, hour, dom, month, dow, year = (field.upper() for field in fields)
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(f"exactly one of day-of-month and day-of-week must be '?': {expression!r}")
    return CronExpression(
        minutes=tuple(sorted(_parse_field(minute, 0, 59, {}, expression))),
        hours=tuple(sorted(_parse_field(hour, 0, 23, {}, expression))),
        months=frozenset(_parse_field(month, 1, 12, _MONTHS, expression)),
        years=frozenset(_parse_field(year, _MIN_YEAR, MAX_YEAR, {}, expression)),
        day_of_month=None if dom == "?" else _parse_day_of_month(dom, expression),
        day_of_week=None if dow == "?" else _parse_day_of_week(dow, expression),
    )


def _parse_day_of_month(field: str, expression: str) -> DayOfMonthRule:
    if field == "L":
        return DayOfMonthRule(last=True)
    if field == "LW":
        return DayOfMonthRule(last_weekday=True)
    if field.endswith("W"):
        day = _number(field[:-1], 1, 31, {}, expression)
        return DayOfMonthRule(nearest_weekday_to=day)
    return DayOfMonthRule(days=frozenset(_parse_field(field, 1, 31, {}, expression)))


def _parse_day_of_week(field: str, expression: str) -> DayOfWeekRule:
    if field == "L":  # the last day of the week
        return DayOfWeekRule(weekdays=frozenset({7}))
    if field.endswith("L"):
        return DayOfWeekRule(last_of=_number(field[:-1], 1, 7, _WEEKDAYS, expression))
    if "#" in field:
        weekday, _, k = field.partition("#")
        return DayOfWeekRule(nth=(_number(weekday, 1, 7, _WEEKDAYS, expression), _number(k, 1, 5, {}, expression)))
    return DayOfWeekRule(weekdays=frozenset(_parse_field(field, 1, 7, _WEEKDAYS, expression)))


def _parse_field(field: str, low: int, high: int, names: dict[str, int], expression: str) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, 1, high - low + 1, {}, expression) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = (
                _number(first_text, low, high, names, expression),
                _number(last_text, low, high, names, expression),
            )
        else:
            first = _number(span, low, high, names, expression)
            last = high if step_text else first  # "5/15" means from 5 to the end in steps of 15
        if first <= last:
            values.update(range(first, last + 1, step))
        else:  # a range that wraps, e.g. FRI-MON
            wrapped = [*range(first, high + 1), *range(low, last + 1)]
            values.update(wrapped[::step])
    return values


def _number(text: str, low: int, high: int, names: dict[str, int], expression: str) -> int:
    value = names.get(text) if text in names else (int(text) if text.isdigit() else None)
    if value is None or not low <= value <= high:
        raise ScheduleExpressionError(f"{text!r} is not in {low}-{high}: {expression!r}")
    return value


def _next_cron(cron: CronExpression, after: datetime, zone: ZoneInfo) -> datetime | None:
    # Start a day early: around a backward clock change a local time on the previous day can still lie after `after`.
    day = after.astimezone(zone).date() - timedelta(days=1)
    while day.year <= MAX_YEAR:
        if day.year not in cron.years:
            day = date(day.year + 1, 1, 1)
            continue
        if day.month not in cron.months:
            day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
            continue
        if cron.matches_day(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute)
                    instant = _localize(local, zone)
                    if instant is not None and instant > after:
                        return instant
        day += timedelta(days=1)
    return None


def _localize(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, its first occurrence if it happens twice, None if it never happens."""
    aware = local.replace(tzinfo=zone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local:
        return None  # skipped when the clocks went forward
    return instant


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Python's Monday=0 -> AWS's MON=2, Sunday -> SUN=1


def _weekday_on_or_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _nearest_weekday(year: int, month: int, day_number: int) -> date:
    """The weekday nearest to the given day, never leaving the month (Quartz's ``W``)."""
    day = date(year, month, day_number)
    if day.weekday() < 5:
        return day
    month_length = calendar.monthrange(year, month)[1]
    if day.weekday() == 5:  # Saturday: Friday before, or Monday after if Friday is in the previous month
        return day - timedelta(days=1) if day_number > 1 else day + timedelta(days=2)
    # Sunday: Monday after, or Friday before if Monday is in the next month
    return day + timedelta(days=1) if day_number < month_length else day - timedelta(days=2)
