"""Amazon Pinpoint endpoint exports: one endpoint a line, several endpoints a user, into customer rows.

A CreateExportJob export is JSON Lines (usually gzip) of EndpointResponse objects: `ChannelType`,
`Address`, `OptOut`, `EndpointStatus`, `EffectiveDate`, `Location`, `Demographic`, `User` (`UserId`,
`UserAttributes`), ... The reader flattens each endpoint onto the columns of the PINPOINT_ENDPOINTS feed
(`endpoint_columns`), so the usual cleaning, rejection and report apply; `to_customers` then turns the
accepted endpoints into customers-shaped rows, which merge into profiles like a customers file:

- an EMAIL endpoint gives `email` and `consent_email`, an SMS endpoint `phone` and `consent_sms`;
- consent is yes only when `OptOut` is NONE and `EndpointStatus` is ACTIVE (OptOut ALL, INACTIVE, or
  anything unreadable is no: consent fails closed);
- `EffectiveDate` is the row's updated_at, so the newest endpoint of a channel wins, per channel (see
  cadence.ingest.merge): an older opt-in never overwrites a newer opt-out, wherever the endpoints sit;
- `UserAttributes` FirstName/LastName fill the names; every other attribute becomes `attr_<name>`.
"""

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pandas as pd

from cadence.ingest.cleaning import Context, clean_text
from cadence.ingest.mapping import normalise_header
from cadence.ingest.schemas import CUSTOMERS

# Top-level objects whose members are columns of their own ("Location.Country").
NESTED = ("User", "Location", "Demographic")
_COLUMNS = {
    "User.UserId": "user_id",
    "ChannelType": "channel_type",
    "Id": "endpoint_id",
    "OptOut": "opt_out",
    "EndpointStatus": "endpoint_status",
    "EffectiveDate": "effective_date",
    "Location.Country": "country",
    "Location.City": "city",
    "Demographic.Timezone": "timezone",
    "Demographic.Locale": "language",
    "User.UserAttributes": "user_attributes",
}
_ADDRESS_COLUMN = {"EMAIL": "email", "SMS": "phone"}
ATTRIBUTE_PREFIX = "attr_"
_NAMES = {"firstname": "first_name", "first_name": "first_name", "lastname": "last_name", "last_name": "last_name"}


def endpoint_columns(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """One endpoint's members under the feed's column names; members cadence does not use keep their dotted names.

    The Address goes to `email` or `phone` by ChannelType; the address of any other channel (a device
    token) is dropped, and the row is rejected for its channel.
    """
    flat: dict[str, Any] = {}
    for key, value in endpoint.items():
        if key in NESTED and isinstance(value, Mapping):
            flat.update({f"{key}.{member}": item for member, item in value.items()})
        else:
            flat[key] = value
    address = flat.pop("Address", None)
    row = {_COLUMNS.get(key, key): value for key, value in flat.items()}
    channel = str(flat.get("ChannelType") or "").strip().upper()
    if channel in _ADDRESS_COLUMN:
        row[_ADDRESS_COLUMN[channel]] = address
    return row


def _attributes(text: str | None) -> dict[str, Any]:
    """UserAttributes (a map of lists of strings) as profile attributes: one value as text, several as a list."""
    if text is None:
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    attributes: dict[str, Any] = {}
    for name, raw in parsed.items():
        values = [str(value).strip() for value in (raw if isinstance(raw, list) else [raw]) if value is not None]
        values = [value for value in values if value]
        key = normalise_header(str(name))
        if not values or not key:
            continue
        attributes[_NAMES.get(key, ATTRIBUTE_PREFIX + key)] = values[0] if len(values) == 1 else values
    return attributes


# The values Pinpoint writes; anything else is unreadable and reads as no consent.
_KNOWN = {"opt_out": ("NONE", "ALL"), "endpoint_status": ("ACTIVE", "INACTIVE")}


def unreadable_consent(accepted: pd.DataFrame) -> Counter[str]:
    """Accepted endpoints whose OptOut or EndpointStatus is neither of Pinpoint's values (read as no consent)."""
    counts: Counter[str] = Counter()
    for name, known in _KNOWN.items():
        values = accepted[name]
        unreadable = int((values.notna() & ~values.str.upper().isin(known)).sum())
        if unreadable:
            counts[f"unreadable_as_no:{name}"] = unreadable
    return counts


def to_customers(accepted: pd.DataFrame, context: Context) -> pd.DataFrame:
    """Accepted endpoint rows as customers-shaped rows (one per endpoint, line kept), ready for merge_customers."""
    channel = accepted["channel_type"]
    opted_in = accepted["opt_out"].str.upper().eq("NONE").isin([True])
    active = accepted["endpoint_status"].str.upper().eq("ACTIVE").isin([True])
    contactable = opted_in & active
    attributes = pd.DataFrame.from_records(
        [_attributes(text) for text in accepted["user_attributes"]], index=accepted.index
    )
    frame = accepted.rename(columns={"user_id": "customer_id", "effective_date": "updated_at"}).drop(
        columns=["channel_type", "endpoint_id", "opt_out", "endpoint_status", "user_attributes"]
    )
    for name in CUSTOMERS.names:
        if name not in frame:
            frame[name] = None
    frame["consent_email"] = contactable.where(channel.eq("EMAIL"), None).astype(object)
    frame["consent_sms"] = contactable.where(channel.eq("SMS"), None).astype(object)
    for name in ("first_name", "last_name"):
        if name in attributes:
            frame[name] = clean_text(attributes.pop(name).astype(object), context).values
    extra = attributes.astype(object).where(attributes.notna(), None)
    frame = pd.concat([frame.astype(object), extra[sorted(extra.columns)]], axis=1)
    return frame.where(frame.notna(), None)
