"""Synthetic feeds (customers, orders, events) with a known purchase signal, for demos and tests.

The signal: every customer has a hidden "active" state that persists for months (a two-state Markov
chain, one step a day), a personal order rate and an engagement level. Active customers order at
their rate and visit/open/click often; dormant ones almost never do. The state is hidden but leaves
traces, so recency, frequency and recent engagement all predict a purchase in the next 30 days,
while names, cities and phone formats carry no signal at all.

customers.csv also gets a handful of deliberately bad rows (``BAD_ROW_REASONS``) for ingest to reject.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from tqdm import tqdm

from cadence.ingest import schemas

# The feeds' columns as ingest declares them: generated files follow the contract upstream systems get.
CUSTOMER_COLUMNS: Final = schemas.CUSTOMERS.names
ORDER_COLUMNS: Final = schemas.ORDERS.names
EVENT_COLUMNS: Final = schemas.EVENTS.names

HISTORY_DAYS: Final = 365
BAD_ROW_REASONS: Final = (
    "missing customer_id",
    "invalid email and no phone",
    "no email and no phone",
    "invalid country code",
    "unparseable signup_date",
    "invalid phone and no email",
)

_SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Jun", "Yan", "Tao", "Ming", "Hui", "Xin", "Yu", "Hao", "Ling")
_MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com")
_CN_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "186", "188")
_CN_CITIES = ("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Nanjing", "Wuhan")
# country, city, timezone, language, phone prefix, share of customers
_ABROAD = (
    ("HK", "Hong Kong", "Asia/Hong_Kong", "zh-HK", "+852", 0.04),
    ("SG", "Singapore", "Asia/Singapore", "en-SG", "+65", 0.03),
    ("US", "New York", "America/New_York", "en-US", "+1 212", 0.02),
    ("GB", "London", "Europe/London", "en-GB", "+44 7700", 0.02),
)
_CHANNELS = ("web", "app", "wechat", "store")
_CAMPAIGNS = ("spring-sale", "new-arrivals", "loyalty", "win-back")


@dataclass(frozen=True)
class SyntheticData:
    """The three feeds as string DataFrames in the feed schemas, plus what was generated on purpose."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    events: pd.DataFrame
    as_of: datetime
    bad_rows: tuple[tuple[int, str], ...]
    """(row index in customers, reason) of every deliberately bad customer row."""


def generate(n_customers: int, seed: int, as_of: datetime, *, progress: bool = False) -> SyntheticData:
    """Generate HISTORY_DAYS of history ending just before as_of; the same arguments give the same data."""
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    end = (as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)).astimezone(UTC)
    start = end - timedelta(days=HISTORY_DAYS)
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{index:07d}" for index in range(1, n_customers + 1)])

    customers = _customers(rng, ids, start, end)
    has_email = customers["email"].str.len() > 0
    opens_allowed = (has_email & (customers["consent_email"] == "true")).to_numpy()
    signup_day = ((pd.to_datetime(customers["signup_date"], utc=True) - start).dt.days).to_numpy()
    orders_matrix, visits, opens, clicks, carts = _simulate(rng, n_customers, signup_day, opens_allowed, progress)

    orders = _orders(rng, ids, orders_matrix, start)
    events = _events(
        rng, ids, start, {"visit": visits, "open": opens, "click": clicks, "add_to_cart": carts & orders_matrix}
    )
    customers, bad_rows = _with_bad_rows(rng, customers, end)
    return SyntheticData(customers=customers, orders=orders, events=events, as_of=end, bad_rows=bad_rows)


def write_feeds(data: SyntheticData, out_dir: Path) -> dict[str, Path]:
    """Write customers.csv, orders.csv and events.csv into out_dir; returns the paths by feed name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in ("customers", "orders", "events")}
    data.customers.to_csv(paths["customers"], index=False)
    data.orders.to_csv(paths["orders"], index=False)
    data.events.to_csv(paths["events"], index=False)
    return paths


def _simulate(
    rng: np.random.Generator, n: int, signup_day: np.ndarray, opens_allowed: np.ndarray, progress: bool
) -> tuple[np.ndarray, ...]:
    order_rate = np.clip(np.exp(rng.normal(np.log(1 / 40), 0.6, n)), 0.002, 0.2)
    engagement = rng.beta(2, 5, n)
    churn = 1 / rng.uniform(45, 240, n)
    reactivation = 1 / 300
    active = rng.random(n) < 0.5
    shape = (n, HISTORY_DAYS)
    orders, visits, opens, clicks, carts = (np.zeros(shape, dtype=bool) for _ in range(5))
    for day in tqdm(range(HISTORY_DAYS), desc="simulating days", unit="day", disable=not progress):
        joined = signup_day <= day
        flip = rng.random(n)
        # A customer's first days are active: a sign-up is a sign of interest.
        just_joined = signup_day == day
        active = np.where(active, flip >= churn, flip < reactivation) | just_joined
        live = joined & active
        orders[:, day] = joined & (rng.random(n) < np.where(active, order_rate, order_rate * 0.03))
        visit_rate = np.where(live, 0.02 + 0.15 * engagement, 0.002 + 0.01 * engagement)
        visits[:, day] = joined & ((rng.random(n) < visit_rate) | (orders[:, day] & (rng.random(n) < 0.8)))
        open_rate = np.where(live, 0.04 + 0.12 * engagement, 0.01)
        opens[:, day] = joined & opens_allowed & (rng.random(n) < open_rate)
        clicks[:, day] = opens[:, day] & (rng.random(n) < np.where(live, 0.35, 0.05))
        carts[:, day] = orders[:, day] & (rng.random(n) < 0.7)
    return orders, visits, opens, clicks, carts


def _timestamps(
    rng: np.random.Generator, start: datetime, days: np.ndarray, seconds: np.ndarray | None = None
) -> pd.Series:
    if seconds is None:
        seconds = rng.integers(0, 86_400, len(days))
    moments = pd.Timestamp(start) + pd.to_timedelta(days, unit="D") + pd.to_timedelta(seconds, unit="s")
    return pd.Series(moments.strftime("%Y-%m-%dT%H:%M:%S+00:00"))


def _orders(rng: np.random.Generator, ids: np.ndarray, matrix: np.ndarray, start: datetime) -> pd.DataFrame:
    rows, days = np.nonzero(matrix)
    basket = np.exp(rng.normal(np.log(180), 0.5, len(ids)))
    amounts = np.round(basket[rows] * np.exp(rng.normal(0, 0.4, len(rows))), 2)
    frame = pd.DataFrame(
        {
            "customer_id": ids[rows],
            "order_date": _timestamps(rng, start, days),
            "amount": [f"{amount:.2f}" for amount in amounts],
            "currency": "CNY",
            "items": (1 + rng.poisson(1.2, len(rows))).astype(str),
            "channel": rng.choice(_CHANNELS, len(rows), p=[0.35, 0.35, 0.2, 0.1]),
            "coupon_code": "",  # history before any campaign: no campaign coupons
        }
    )
    frame = frame.sort_values(["order_date", "customer_id"], kind="stable").reset_index(drop=True)
    frame.insert(0, "order_id", [f"O{index:08d}" for index in range(1, len(frame) + 1)])
    return frame.loc[:, list(ORDER_COLUMNS)]


@dataclass(frozen=True)
class CampaignEffect:
    """How a campaign changes buying in its window: a member it messaged converts with `base + lift`, every other
    member of the run (holdout, or treated but never reached) with `base`. Half the messaged converters who got a
    coupon code use it."""

    base: float = 0.10
    lift: float = 0.20
    window_days: int = 7
    coupon_use: float = 0.5


def campaign_orders(
    members: pd.DataFrame, messaged: set[str], run_at: datetime, effect: CampaignEffect, seed: int
) -> pd.DataFrame:
    """Orders after a campaign run, generated with a known effect, from its members (members.csv's columns).

    Members left out before the holdout was drawn (re-entry) buy at the base rate too but are not in the test.
    Each group (by state, and messaged or not) converts at exactly its rate, rounded to whole customers, its buyers
    drawn at random: the effect in the data is the known one, not a draw around it, so a report's 95 % interval
    covers it on every demo run rather than on 19 in 20.
    """
    rng = np.random.default_rng(seed)
    ids = members["customer_id"].astype(str).to_numpy()
    reached = np.isin(ids, list(messaged))
    states = members["state"].astype(str).to_numpy() if "state" in members else np.full(len(ids), "")
    converted = np.zeros(len(ids), dtype=bool)
    for state in np.unique(states):
        for messaged_group, rate in ((True, effect.base + effect.lift), (False, effect.base)):
            group = np.flatnonzero((states == state) & (reached == messaged_group))
            converted[rng.choice(group, round(rate * len(group)), replace=False)] = True
    buyers = ids[converted]
    codes = members["coupon_code"].fillna("").astype(str).to_numpy()[converted]
    use_code = reached[converted] & (codes != "") & (rng.random(len(buyers)) < effect.coupon_use)
    seconds = rng.integers(60, effect.window_days * 86_400 - 60, len(buyers))
    moments = pd.Timestamp(run_at) + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame(
        {
            "order_id": [f"P{index:08d}" for index in range(1, len(buyers) + 1)],
            "customer_id": buyers,
            "order_date": pd.Series(moments.strftime("%Y-%m-%dT%H:%M:%S+00:00")),
            "amount": [f"{amount:.2f}" for amount in np.exp(rng.normal(np.log(180), 0.5, len(buyers)))],
            "currency": "CNY",
            "items": (1 + rng.poisson(1.2, len(buyers))).astype(str),
            "channel": rng.choice(_CHANNELS, len(buyers)),
            "coupon_code": np.where(use_code, codes, ""),
        }
    )
    return frame.loc[:, list(ORDER_COLUMNS)]


def _events(
    rng: np.random.Generator, ids: np.ndarray, start: datetime, matrices: dict[str, np.ndarray]
) -> pd.DataFrame:
    frames = []
    open_keys = open_seconds = np.empty(0, dtype=np.int64)
    for event_type, matrix in matrices.items():
        rows, days = np.nonzero(matrix)
        seconds = rng.integers(0, 86_400, len(rows))
        keys = rows.astype(np.int64) * matrix.shape[1] + days
        if event_type == "open":
            open_keys, open_seconds = keys, seconds
        elif event_type == "click":
            # A click follows its open the same day (clicks are drawn only on days with an open).
            opened = open_seconds[np.searchsorted(open_keys, keys)]
            seconds = np.minimum(opened + rng.integers(10, 3600, len(rows)), 86_399)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids[rows],
                    "event_type": event_type,
                    "event_time": _timestamps(rng, start, days, seconds),
                    "attributes": _attributes(rng, event_type, len(rows)),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["event_time", "customer_id", "event_type"], kind="stable").reset_index(drop=True)


def _attributes(rng: np.random.Generator, event_type: str, count: int) -> list[str]:
    if event_type in {"open", "click"}:
        return [json.dumps({"campaign": name}) for name in rng.choice(_CAMPAIGNS, count)]
    key, prefix = ("sku", "SKU-") if event_type == "add_to_cart" else ("page", "/product/")
    return [json.dumps({key: f"{prefix}{number}"}) for number in rng.integers(1000, 9999, count)]


def _customers(rng: np.random.Generator, ids: np.ndarray, start: datetime, end: datetime) -> pd.DataFrame:
    n = len(ids)
    first = rng.choice(_GIVEN, n)
    last = rng.choice(_SURNAMES, n)
    # Sign-ups spread over the year before the history and the history itself, none in its last week.
    signup = [start + timedelta(days=int(day)) for day in rng.integers(-365, HISTORY_DAYS - 7, n)]
    places = _places(rng, n)
    no_email = rng.random(n) < 0.05
    no_phone = rng.random(n) < 0.08
    return pd.DataFrame(
        {
            "customer_id": ids,
            "email": ["" if skip else _email(rng, f, s) for skip, f, s in zip(no_email, first, last, strict=True)],
            "phone": ["" if skip else _phone(rng, p[4]) for skip, p in zip(no_phone, places, strict=True)],
            "first_name": first,
            "last_name": last,
            "country": [p[0] for p in places],
            "city": [p[1] for p in places],
            "timezone": [p[2] for p in places],
            "language": [p[3] for p in places],
            "signup_date": [moment.date().isoformat() for moment in signup],
            "consent_email": np.where(rng.random(n) < 0.7, "true", "false"),
            "consent_sms": np.where(rng.random(n) < 0.5, "true", "false"),
            "updated_at": _timestamps(rng, end - timedelta(days=30), rng.integers(0, 30, n)),
        }
    )


def _places(rng: np.random.Generator, n: int) -> list[tuple[str, str, str, str, str]]:
    shares = [share for *_, share in _ABROAD]
    choices = rng.choice(len(_ABROAD) + 1, n, p=[1 - sum(shares), *shares])
    cities = rng.choice(_CN_CITIES, n)
    places = []
    for choice, city in zip(choices, cities, strict=True):
        if choice == 0:
            places.append(("CN", str(city), "Asia/Shanghai", "zh-CN", "+86"))
        else:
            country, town, zone, language, prefix, _ = _ABROAD[choice - 1]
            places.append((country, town, zone, language, prefix))
    return places


def _email(rng: np.random.Generator, first: str, last: str) -> str:
    local = f"{first}.{last}{rng.integers(1, 999)}" if rng.random() < 0.6 else f"{last}{first}{rng.integers(10, 99)}"
    domain = str(rng.choice(_MAIL_DOMAINS))
    # Mixed case on purpose: ingest must compare addresses case-insensitively.
    styles = (
        f"{local}@{domain}".lower(),
        f"{local}@{domain}",
        f"{local}@{domain.upper()}",
        f"{local}@{domain}".upper(),
    )
    return styles[int(rng.choice(4, p=[0.4, 0.4, 0.15, 0.05]))]


def _phone(rng: np.random.Generator, prefix: str) -> str:
    if prefix != "+86":
        return f"{prefix} {rng.integers(1000, 9999)} {rng.integers(1000, 9999)}"
    head = str(rng.choice(_CN_PREFIXES))
    body = f"{rng.integers(0, 10_000):04d}{rng.integers(0, 10_000):04d}"
    style = rng.integers(0, 5)
    formats = (
        f"{head} {body[:4]} {body[4:]}",
        f"+86 {head} {body[:4]} {body[4:]}",
        f"{head}{body}",
        f"+86{head}{body}",
        f"{head}-{body[:4]}-{body[4:]}",
    )
    return formats[int(style)]


def _with_bad_rows(
    rng: np.random.Generator, customers: pd.DataFrame, end: datetime
) -> tuple[pd.DataFrame, tuple[tuple[int, str], ...]]:
    template = dict.fromkeys(CUSTOMER_COLUMNS, "") | {
        "first_name": "Bad",
        "last_name": "Row",
        "country": "CN",
        "city": "Shanghai",
        "timezone": "Asia/Shanghai",
        "language": "zh-CN",
        "signup_date": (end - timedelta(days=100)).date().isoformat(),
        "consent_email": "true",
        "consent_sms": "true",
        "updated_at": end.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    }
    overrides: dict[str, dict[str, str]] = {
        "missing customer_id": {"email": "No.Id@Example.com", "phone": "138 0013 8000"},
        "invalid email and no phone": {"customer_id": "BAD0000002", "email": "not-an-email"},
        "no email and no phone": {"customer_id": "BAD0000003"},
        "invalid country code": {"customer_id": "BAD0000004", "email": "bad.country@qq.com", "country": "CHN"},
        "unparseable signup_date": {
            "customer_id": "BAD0000005",
            "email": "bad.date@163.com",
            "signup_date": "2024-13-45",
        },
        "invalid phone and no email": {"customer_id": "BAD0000006", "phone": "12345"},
    }
    bad = pd.DataFrame([template | overrides[reason] for reason in BAD_ROW_REASONS], columns=list(CUSTOMER_COLUMNS))
    # Scatter the bad rows through the file: a reader that stops at the first bad row must fail visibly.
    positions = np.sort(rng.choice(len(customers) + len(bad), len(bad), replace=False))
    good_positions = np.setdiff1d(np.arange(len(customers) + len(bad)), positions)
    combined = pd.concat(
        [customers.set_axis(good_positions), bad.set_axis(positions)],
    ).sort_index()
    return combined.reset_index(drop=True), tuple(
        (int(position), reason) for position, reason in zip(positions, BAD_ROW_REASONS, strict=True)
    )
