"""The data contract: which feeds exist, where their files land and which columns each declares.

docs/ingest-contract.md renders these tables for upstream teams; a test keeps the two in step.
"""

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a column is cleaned and validated (see cadence.ingest.cleaning)."""

    ID = "id"
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    COUNTRY = "country"
    TIMEZONE = "timezone"
    LANGUAGE = "language"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"
    # Fails closed: a value that is neither a clear yes nor a clear no is read as no.
    CONSENT = "consent"
    DECIMAL = "decimal"
    INT = "int"
    CURRENCY = "currency"
    EVENT_TYPE = "event_type"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Column:
    """One canonical column. A required column must be in the header and non-empty in every row.

    An invalid value in a required column rejects the row; in an optional column it is cleared
    (the profile keeps what it had) and counted in the report's `values_cleared`.
    """

    name: str
    kind: Kind
    required: bool = False
    description: str = ""
    # Only free-form columns may hold a line break; in any other a break rejects the record, because it is
    # how a stray quote swallows the records after it (another customer's email in this one's name).
    multiline: bool = False


@dataclass(frozen=True, slots=True)
class Feed:
    name: str
    prefix: str
    columns: tuple[Column, ...]
    # Columns of which at least one must hold a valid value (customers: email or phone).
    any_of: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)


CUSTOMERS = Feed(
    name="customers",
    prefix="incoming/customers/",
    columns=(
        Column("customer_id", Kind.ID, required=True, description="Stable id from the source system; kept as text."),
        Column("email", Kind.EMAIL, description="Trimmed and lower-cased; must look like local@domain.tld."),
        Column("phone", Kind.PHONE, description="Normalised to E.164; numbers without +CC use DEFAULT_PHONE_REGION."),
        Column("first_name", Kind.TEXT),
        Column("last_name", Kind.TEXT),
        Column("country", Kind.COUNTRY, description="ISO 3166-1 alpha-2, e.g. CN."),
        Column("city", Kind.TEXT),
        Column("timezone", Kind.TIMEZONE, description="IANA name, e.g. Asia/Shanghai."),
        Column("language", Kind.LANGUAGE, description="BCP 47 tag, e.g. zh-CN."),
        Column("signup_date", Kind.DATE, description="A calendar date; stored as YYYY-MM-DD."),
        Column(
            "consent_email",
            Kind.CONSENT,
            description="true/false, yes/no, 1/0, y/n, 是/否; any other value (unsubscribed, N/A, ...) is no.",
        ),
        Column("consent_sms", Kind.CONSENT),
        Column(
            "updated_at",
            Kind.DATETIME,
            description=(
                "When the source last changed the row; the newest wins. Defaults to the upload time, which "
                "never turns a stored no-consent into yes."
            ),
        ),
    ),
    any_of=("email", "phone"),
)

ORDERS = Feed(
    name="orders",
    prefix="incoming/orders/",
    columns=(
        Column(
            "order_id",
            Kind.ID,
            required=True,
            description="Counted once within a file; send each order in one file only.",
        ),
        Column("customer_id", Kind.ID, required=True),
        Column("order_date", Kind.DATETIME, required=True),
        Column("amount", Kind.DECIMAL, required=True, description="1,234.50 and 1234.5 both work; may be negative."),
        Column("currency", Kind.CURRENCY, description="ISO 4217, e.g. CNY."),
        Column("items", Kind.INT, description="Whole number of items."),
        Column("channel", Kind.TEXT),
    ),
)

EVENTS = Feed(
    name="events",
    prefix="incoming/events/",
    columns=(
        Column("customer_id", Kind.ID, required=True),
        Column(
            "event_type",
            Kind.EVENT_TYPE,
            required=True,
            description="visit, open, click, add_to_cart, ...: lower-case letters, digits and _.",
        ),
        Column("event_time", Kind.DATETIME, required=True),
        Column("attributes", Kind.JSON, description="Free-form JSON object or text, at most 4 KiB.", multiline=True),
    ),
)

FEEDS: tuple[Feed, ...] = (CUSTOMERS, ORDERS, EVENTS)


def feed_for_key(key: str) -> Feed | None:
    """The feed whose prefix the key sits under, or None."""
    return next((feed for feed in FEEDS if key.startswith(feed.prefix)), None)
