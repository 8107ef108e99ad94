"""Audience rules: conditions over a customer's profile, activity and score, evaluated by code (never eval).

A rule is a tree written in YAML:

    all: [<rule>, ...]        every rule holds
    any: [<rule>, ...]        at least one holds
    not: <rule>               the rule does not hold
    {field: F, <op>: V}       one comparison; <op> is one of eq ne gt gte lt lte in not_in exists

Fields are the ones in FIELDS (typed: a number cannot be compared with text, a typo is an error naming
the field and the closest known name), or `profile.<name>` for any attribute a profile holds. The
`days_since_*` fields of something that never happened are infinite: "not visited in 90 days" includes
customers who never visited. A comparison with a value the customer lacks is false (use `exists`).
"""

import difflib
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

COMBINATORS = ("all", "any", "not")
CUSTOM_PREFIX = "profile."


class FieldType(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    BOOL = "bool"
    ANY = "any"  # a custom profile attribute: compared as it is stored


@dataclass(frozen=True, slots=True)
class FieldSpec:
    type: FieldType
    description: str


FIELDS: dict[str, FieldSpec] = {
    "order_count": FieldSpec(FieldType.NUMBER, "orders counted so far"),
    "total_spend": FieldSpec(FieldType.NUMBER, "sum of order amounts"),
    "avg_spend": FieldSpec(FieldType.NUMBER, "total_spend / order_count (missing without orders)"),
    "event_count": FieldSpec(FieldType.NUMBER, "engagement events counted so far"),
    "days_since_last_order": FieldSpec(FieldType.NUMBER, "whole days since the latest order (infinite: never)"),
    "days_since_first_order": FieldSpec(FieldType.NUMBER, "whole days since the first order (infinite: never)"),
    "days_since_last_visit": FieldSpec(FieldType.NUMBER, "whole days since the latest visit (infinite: never)"),
    "days_since_last_open": FieldSpec(FieldType.NUMBER, "whole days since the latest email open (infinite: never)"),
    "days_since_last_click": FieldSpec(FieldType.NUMBER, "whole days since the latest click (infinite: never)"),
    "tenure_days": FieldSpec(FieldType.NUMBER, "whole days since signup_date"),
    "country": FieldSpec(FieldType.TEXT, "ISO 3166-1 alpha-2, e.g. CN"),
    "city": FieldSpec(FieldType.TEXT, "as ingested"),
    "language": FieldSpec(FieldType.TEXT, "BCP 47, e.g. zh-CN"),
    "timezone": FieldSpec(FieldType.TEXT, "IANA name from the profile"),
    "consent_email": FieldSpec(FieldType.BOOL, "consented to email"),
    "consent_sms": FieldSpec(FieldType.BOOL, "consented to SMS"),
    "has_email": FieldSpec(FieldType.BOOL, "the profile holds an email address"),
    "has_phone": FieldSpec(FieldType.BOOL, "the profile holds a phone number"),
    "decile": FieldSpec(FieldType.NUMBER, "1 (most likely to buy) .. 10"),
    "score": FieldSpec(FieldType.NUMBER, "propensity to buy, 0..1"),
}

_ORDERING = ("gt", "gte", "lt", "lte")
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda actual, values: actual in values,
    "not_in": lambda actual, values: actual not in values,
}
OPERATORS = ("eq", "ne", *_ORDERING, "in", "not_in", "exists")


class RuleError(ValueError):
    """A rule that cannot be evaluated; the message names where it is and what is wrong."""


class Rule:
    """A node of the tree; `holds` evaluates it against a member view (see `member_view`)."""

    def holds(self, view: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def fields(self) -> set[str]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class All(Rule):
    rules: tuple[Rule, ...]

    def holds(self, view: Mapping[str, Any]) -> bool:
        return all(rule.holds(view) for rule in self.rules)

    def fields(self) -> set[str]:
        return set().union(*(rule.fields() for rule in self.rules))


@dataclass(frozen=True, slots=True)
class AnyOf(Rule):
    rules: tuple[Rule, ...]

    def holds(self, view: Mapping[str, Any]) -> bool:
        return any(rule.holds(view) for rule in self.rules)

    def fields(self) -> set[str]:
        return set().union(*(rule.fields() for rule in self.rules))


@dataclass(frozen=True, slots=True)
class Not(Rule):
    rule: Rule

    def holds(self, view: Mapping[str, Any]) -> bool:
        return not self.rule.holds(view)

    def fields(self) -> set[str]:
        return self.rule.fields()


def _comparable(value: Any) -> Any:
    """Stored numbers arrive as Decimal or int; compare them as floats."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


@dataclass(frozen=True, slots=True)
class Compare(Rule):
    field: str
    op: str
    value: Any

    def holds(self, view: Mapping[str, Any]) -> bool:
        actual = _comparable(view.get(self.field))
        if self.op == "exists":
            return (actual is not None) is bool(self.value)
        if actual is None:
            return False
        try:
            return bool(_COMPARISONS[self.op](actual, self.value))
        except TypeError:
            return False  # a custom attribute of another type than the rule's value

    def fields(self) -> set[str]:
        return {self.field}


def field_spec(name: str, where: str) -> FieldSpec:
    """The spec of a known field or custom attribute.

    Raises:
        RuleError: the name is neither; the message suggests the closest known field.
    """
    if name in FIELDS:
        return FIELDS[name]
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        return FieldSpec(FieldType.ANY, "custom profile attribute")
    close = difflib.get_close_matches(name, list(FIELDS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(FIELDS)}, or profile.<attribute>)"
    raise RuleError(f"{where}: unknown field {name!r}{hint}")


def _check_value(spec: FieldSpec, op: str, value: Any, where: str) -> Any:
    if op == "exists":
        if not isinstance(value, bool):
            raise RuleError(f"{where}: exists takes true or false")
        return value
    if op in {"in", "not_in"}:
        if not isinstance(value, list | tuple) or not value:
            raise RuleError(f"{where}: {op} takes a non-empty list")
        return frozenset(_check_scalar(spec, op, item, where) for item in value)
    return _check_scalar(spec, op, value, where)


def _check_scalar(spec: FieldSpec, op: str, value: Any, where: str) -> Any:
    if spec.type is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise RuleError(f"{where}: a number field takes a number, not {value!r}")
        return float(value)
    if spec.type is FieldType.BOOL:
        if not isinstance(value, bool) or op in _ORDERING:
            raise RuleError(f"{where}: a true/false field takes eq/ne/exists with true or false")
        return value
    if spec.type is FieldType.TEXT:
        if not isinstance(value, str):
            raise RuleError(f"{where}: a text field takes text, not {value!r}")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def parse_rule(data: Any, where: str = "audience") -> Rule:
    """Build a rule tree from its YAML form.

    Raises:
        RuleError: the first problem found, with its path (``audience.all[1].field``).
    """
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: a rule is a mapping (all/any/not, or field with one operator)")
    combinators = [key for key in COMBINATORS if key in data]
    if combinators:
        if len(data) != 1:
            raise RuleError(f"{where}: {combinators[0]} stands alone in its mapping, found {sorted(data)}")
        key = combinators[0]
        if key == "not":
            return Not(parse_rule(data["not"], f"{where}.not"))
        children = data[key]
        if not isinstance(children, Sequence) or isinstance(children, str) or not children:
            raise RuleError(f"{where}.{key}: takes a non-empty list of rules")
        rules = tuple(parse_rule(child, f"{where}.{key}[{index}]") for index, child in enumerate(children))
        return All(rules) if key == "all" else AnyOf(rules)
    if "field" not in data:
        raise RuleError(f"{where}: expected all, any, not or field, found {sorted(map(str, data))}")
    name = data["field"]
    if not isinstance(name, str):
        raise RuleError(f"{where}.field: a field name is text")
    spec = field_spec(name, f"{where}.field")
    ops = [key for key in data if key != "field"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise RuleError(f"{where}: {name} takes exactly one operator of {', '.join(OPERATORS)}, found {ops}")
    op = ops[0]
    if spec.type is FieldType.TEXT and op in _ORDERING:
        raise RuleError(f"{where}: {name} is text; {op} compares numbers")
    return Compare(name, op, _check_value(spec, op, data[op], f"{where}.{op}"))


# ---------- the member view ----------


def _day(value: Any) -> date | None:
    if value is None:
        return None
    text = str(value)
    try:
        if "T" in text:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _moment(value: Any) -> datetime | None:
    """A stored timestamp as UTC (naive ones are UTC; a bare date is its midnight, UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _days_since(value: Any, now: datetime) -> float:
    # Whole days elapsed, as cadence.features counts them: 90 days and 23 hours is 90, not 91.
    moment = _moment(value)
    return math.inf if moment is None else float((now.astimezone(UTC) - moment) // timedelta(days=1))


def member_view(
    profile: Mapping[str, Any], activity: Mapping[str, Any] | None, score: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """Every field a rule can name, for one customer (custom attributes as `profile.<name>`)."""
    activity = activity or {}
    score = score or {}
    today = now.astimezone(UTC).date()
    orders = _comparable(activity.get("order_count")) or 0.0
    spend = _comparable(activity.get("total_spend")) or 0.0
    signup = _day(profile.get("signup_date"))
    view: dict[str, Any] = {f"{CUSTOM_PREFIX}{key}": value for key, value in profile.items()}
    view.update(
        {
            "order_count": orders,
            "total_spend": spend,
            "avg_spend": spend / orders if orders else None,
            "event_count": _comparable(activity.get("event_count")) or 0.0,
            "days_since_last_order": _days_since(activity.get("last_order_at"), now),
            "days_since_first_order": _days_since(activity.get("first_order_at"), now),
            "days_since_last_visit": _days_since(activity.get("last_visit_at"), now),
            "days_since_last_open": _days_since(activity.get("last_open_at"), now),
            "days_since_last_click": _days_since(activity.get("last_click_at"), now),
            "tenure_days": float((today - signup).days) if signup else None,
            "country": profile.get("country"),
            "city": profile.get("city"),
            "language": profile.get("language"),
            "timezone": profile.get("timezone"),
            "consent_email": profile.get("consent_email") is True,
            "consent_sms": profile.get("consent_sms") is True,
            "has_email": bool(profile.get("email")),
            "has_phone": bool(profile.get("phone")),
            "decile": _comparable(score.get("decile", profile.get("decile"))),
            "score": _comparable(score.get("score", profile.get("score"))),
        }
    )
    return view


# What member_view and the planner read of a profile (addresses, consent, zone); keep in step with member_view.
_PROFILE_FIELDS = (
    "customer_id",
    "email",
    "phone",
    "consent_email",
    "consent_sms",
    "signup_date",
    "country",
    "city",
    "language",
    "timezone",
    "quiet_until",
)


def profile_attributes(rule: Rule) -> tuple[str, ...]:
    """The profile attributes a run needs to plan with this rule: what member_view reads, and each `profile.<name>`."""
    custom = sorted(name.removeprefix(CUSTOM_PREFIX) for name in rule.fields() if name.startswith(CUSTOM_PREFIX))
    return tuple(dict.fromkeys((*_PROFILE_FIELDS, *custom)))


def decile_ceiling(rule: Rule) -> int:
    """The highest decile the rule can select (10 unless a top-level condition bounds it), to narrow the read."""
    conditions = rule.rules if isinstance(rule, All) else (rule,)
    bounds = [
        math.floor(c.value if c.op == "lte" else math.ceil(c.value) - 1)
        for c in conditions
        if isinstance(c, Compare) and c.field == "decile" and c.op in {"lte", "lt"}
    ]
    return int(max(1, min([10, *bounds])))
