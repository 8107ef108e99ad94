"""Conversion between our plain Python values and DynamoDB items, done once at the boundary."""

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Floats become Decimal, times ISO strings; None and NaN become missing attributes."""
    item: dict[str, Any] = {}
    for key, value in values.items():
        converted = to_attribute(value)
        if converted is not None:
            item[key] = converted
    return item


def to_attribute(value: Any) -> Any:
    if type(value) is str:  # most attributes: checked first, it is the one test they need
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else Decimal(repr(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Decimals become int when integral, float otherwise."""
    return {key: from_attribute(value) for key, value in item.items()}


def from_attribute(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [from_attribute(v) for v in value]
    if isinstance(value, dict):
        return from_item(value)
    if isinstance(value, set):
        return {from_attribute(v) for v in value}
    return value
