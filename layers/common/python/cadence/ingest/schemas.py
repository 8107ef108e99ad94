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
    # A Pinpoint endpoint's ChannelType: only EMAIL and SMS carry an address cadence can message.
    CHANNEL = "channel"
    # A campaign coupon as a customer types it: case, spaces and hyphens do not matter.
    COUPON = "coupon"


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
        Column(
            "coupon_code",
            Kind.COUPON,
            description="The campaign coupon the order redeemed, as sent; attributes the order to that campaign run.",
        ),
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

# Amazon Pinpoint endpoint exports (CreateExportJob), one endpoint a line. The reader flattens each
# endpoint onto these columns (cadence.ingest.pinpoint); the endpoints of a user become one profile.
PINPOINT_ENDPOINTS = Feed(
    name="pinpoint-endpoints",
    prefix="incoming/pinpoint-endpoints/",
    columns=(
        Column("user_id", Kind.ID, required=True, description="`User.UserId`; becomes the profile's customer_id."),
        Column(
            "channel_type",
            Kind.CHANNEL,
            required=True,
            description="`ChannelType`: EMAIL or SMS; push, voice and custom endpoints are rejected.",
        ),
        Column("endpoint_id", Kind.ID, description="`Id`; shown in rejected rows, not stored."),
        Column("email", Kind.EMAIL, description="`Address` of an EMAIL endpoint."),
        Column("phone", Kind.PHONE, description="`Address` of an SMS endpoint, normalised to E.164."),
        Column(
            "opt_out",
            Kind.TEXT,
            description="`OptOut`: NONE gives consent for the channel, ALL (or anything else) does not.",
        ),
        Column(
            "endpoint_status",
            Kind.TEXT,
            description="`EndpointStatus`: only ACTIVE is contactable; INACTIVE gives no consent.",
        ),
        Column(
            "effective_date",
            Kind.DATETIME,
            description="`EffectiveDate`: when the endpoint last changed; the newest endpoint of a channel wins.",
        ),
        Column("country", Kind.COUNTRY, description="`Location.Country`, ISO 3166-1 alpha-2."),
        Column("city", Kind.TEXT, description="`Location.City`."),
        Column("timezone", Kind.TIMEZONE, description="`Demographic.Timezone`, IANA name."),
        Column("language", Kind.LANGUAGE, description="`Demographic.Locale`, e.g. en_US -> en-US."),
        Column(
            "user_attributes",
            Kind.JSON,
            description="`User.UserAttributes`; FirstName/LastName fill the names, the rest become `attr_<name>`.",
            multiline=True,
        ),
    ),
    any_of=("email", "phone"),
)

FEEDS: tuple[Feed, ...] = (CUSTOMERS, ORDERS, EVENTS, PINPOINT_ENDPOINTS)
# Feeds whose rows become profiles (merged against what is stored, so repeats are harmless by themselves).
PROFILE_FEEDS: tuple[Feed, ...] = (CUSTOMERS, PINPOINT_ENDPOINTS)


def feed_for_key(key: str) -> Feed | None:
    """The feed whose prefix the key sits under, or None."""
    return next((feed for feed in FEEDS if key.startswith(feed.prefix)), None)
