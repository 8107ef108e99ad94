"""A campaign run's report: what its members bought in the attribution window, treated against holdout.

Run on demand by an operator (`cadence campaign report RUN`), with the operator's credentials: it reads one
run's members.csv, its ledger partition, the order history of the window's months and the contact history of
the window's days (a few S3 reads per day, one Query), computes in a second or so for a large audience, and
writes `reports/campaigns/<campaign>/<run>/report.json` and `report.html`. No Lambda is needed, so no new IAM:
the report is read-only over data the stack already keeps, and nothing waits on it.
"""

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cadence.campaign_runs import members_key
from cadence.campaigns import html_report
from cadence.campaigns.attribution import REACHED_STATES, Attribution, MemberOutcome, RunMember, Window, attribute, iso
from cadence.campaigns.uplift import Estimate, difference
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, contact_history, order_history, sends_table, uploads
from cadence.dal.sends_table import SendStatus
from cadence.errors import InvalidInputError

DEFAULT_WINDOW_DAYS = 7
# Fewer converters than this in a group and a normal interval for revenue is too narrow (see the uplift tests).
MIN_CONVERTERS = 30
PREFIX = "reports/campaigns"


def report_prefix(campaign_id: str, run_id: str) -> str:
    return f"{PREFIX}/{campaign_id}/{contact_history.run_key(run_id)}"


def run_time(run_id: str) -> datetime:
    """The scheduled time a run id carries (`winback@2026-11-23T10:00:00Z`).

    Raises:
        InvalidInputError: the run id has no time.
    """
    try:
        return datetime.strptime(run_id.partition("@")[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInputError(f"{run_id} is not a run id (campaign@YYYY-MM-DDTHH:MM:SSZ)") from exc


def _touch_time(name: str) -> datetime | None:
    """A contact-history object name (`winback_2026-11-23T100000Z.csv.gz`) -> its run's scheduled time."""
    stamp = name.removesuffix(".csv.gz").rpartition("_")[2]
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _members(bucket: str, campaign_id: str, run_id: str) -> list[RunMember]:
    text = uploads.read_bytes(bucket, members_key(campaign_id, run_id)).decode("utf-8")
    return [RunMember.from_row(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def _messaged(table: str, run_id: str) -> set[str]:
    """Members at least one of whose sends the provider accepted."""
    return {
        customer_id
        for batch in sends_table.run_batches(table, run_id).values()
        for customer_id, outcome in batch.outcomes.items()
        if outcome.status is SendStatus.SENT
    }


def _later_touches(bucket: str, run_id: str, window: Window) -> dict[str, list[datetime]]:
    days = [window.start.date() + timedelta(days=n) for n in range((window.end.date() - window.start.date()).days + 1)]
    touches: dict[str, list[datetime]] = defaultdict(list)
    for _day, _campaign, name, customer_id, _channel in contact_history.contacts_on(bucket, days, except_run=run_id):
        at = _touch_time(name)
        if at is not None and at > window.start:
            touches[customer_id].append(at)
    return touches


def build_report(
    settings: CampaignSettings, run_id: str, *, window_days: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Read what the run's report needs and compute it (nothing written; see `publish`).

    Raises:
        InvalidInputError: the run id is malformed, or the run has no members file (it never fanned out).
    """
    if window_days is not None and not 1 <= window_days <= 90:
        raise InvalidInputError("the attribution window is 1 to 90 days")
    campaign_id = run_id.partition("@")[0]
    stored = campaigns_table.get_campaign(settings.campaigns_table, campaign_id)
    days = window_days or int((stored.definition if stored else {}).get("attribution_window_days") or 0)
    window = Window(run_time(run_id), days or DEFAULT_WINDOW_DAYS)
    members = _members(settings.data_bucket, campaign_id, run_id)
    orders = order_history.orders_between(settings.data_bucket, iso(window.start), iso(window.end))
    touches = _later_touches(settings.data_bucket, run_id, window)
    attribution = attribute(members, orders, window, touches)
    messaged = _messaged(settings.sends_table, run_id)
    return compute(
        campaign_id, run_id, members, attribution=attribution, messaged=messaged, window=window,
        now=now or datetime.now(UTC),
    )  # fmt: skip


def compute(
    campaign_id: str,
    run_id: str,
    members: Sequence[RunMember],
    *,
    attribution: Attribution,
    messaged: set[str] | None,
    window: Window,
    now: datetime,
) -> dict[str, Any]:
    """The report document from the run's members and their outcomes.

    `messaged`: members with a send the provider accepted (None: count queued and deferred members instead).
    """
    in_experiment = [member for member in members if member.in_experiment]
    treated = [member for member in in_experiment if member.treated]
    reached = {
        member.customer_id
        for member in treated
        if (member.customer_id in messaged if messaged is not None else member.state in REACHED_STATES)
    }
    attributed = [attribution.outcomes[member.customer_id] for member in treated]
    return {
        "campaign_id": campaign_id,
        "run_id": run_id,
        "generated_at": iso(now),
        "window": {
            "days": window.days,
            "start": iso(window.start),
            "end": iso(window.end),
            # Until the window closes, orders still to come are missing from both groups alike.
            "closed": now >= window.end,
        },
        "members_by_state": dict(sorted(Counter(member.state for member in members).items())),
        "attribution": {
            "orders": attribution.orders_by_coupon + attribution.orders_by_window,
            "orders_by_coupon": attribution.orders_by_coupon,
            "orders_by_window": attribution.orders_by_window,
            "revenue": round(attribution.attributed_revenue, 2),
            "customers": sum(outcome.attributed_orders > 0 for outcome in attributed),
            "orders_to_later_touch": attribution.orders_to_later_touch,
            "orders_with_other_code": attribution.orders_with_other_code,
        },
        "overall": _segment("all", in_experiment, attribution.outcomes, reached),
        "by_variant": _segments(in_experiment, attribution.outcomes, reached, lambda m: m.variant or "default"),
        "by_decile": _segments(
            [m for m in in_experiment if m.decile is not None], attribution.outcomes, reached, lambda m: m.decile
        ),
        "method": (
            "Treated: every member assigned to the campaign (reached or not); holdout: the randomised holdout. "
            "Conversion: at least one order in the window; revenue per customer: the window's order amounts. "
            "Difference of means with Welch standard errors, normal 95 % interval, two-sided p-value. "
            "Per messaged customer: the difference divided by the share of the treated the provider accepted a "
            "send for (assumes no effect on members never reached)."
        ),
    }


def _segments(
    members: Sequence[RunMember],
    outcomes: dict[str, MemberOutcome],
    reached: set[str],
    key: Callable[[RunMember], Any],
) -> list[dict[str, Any]]:
    groups: dict[Any, list[RunMember]] = defaultdict(list)
    for member in members:
        groups[key(member)].append(member)
    return [_segment(name, groups[name], outcomes, reached) for name in sorted(groups)]


def _segment(
    name: Any, members: Iterable[RunMember], outcomes: dict[str, MemberOutcome], reached: set[str]
) -> dict[str, Any]:
    treated: list[MemberOutcome] = []
    holdout: list[MemberOutcome] = []
    reached_count = 0
    for member in members:
        (treated if member.treated else holdout).append(outcomes[member.customer_id])
        reached_count += member.customer_id in reached
    share = reached_count / len(treated) if treated else 0.0
    conversion = difference([o.converted for o in treated], [o.converted for o in holdout])
    revenue = difference([o.window_revenue for o in treated], [o.window_revenue for o in holdout])
    converters = (sum(o.window_orders > 0 for o in treated), sum(o.window_orders > 0 for o in holdout))
    return {
        "segment": name,
        "treated": len(treated),
        "holdout": len(holdout),
        "treated_converters": converters[0],
        "holdout_converters": converters[1],
        "reached_share": round(share, 4),
        "conversion": _rounded(conversion),
        "revenue_per_customer": _rounded(revenue),
        "conversion_per_messaged": _rounded(conversion.scaled(share)),
        "revenue_per_messaged": _rounded(revenue.scaled(share)),
        "approximate": min(converters) < MIN_CONVERTERS,
    }


def _rounded(estimate: Estimate) -> dict[str, Any]:
    return {key: round(value, 6) if isinstance(value, float) else value for key, value in estimate.to_dict().items()}


def publish(bucket: str, report: dict[str, Any]) -> tuple[str, str]:
    """Write the report as JSON and HTML under reports/campaigns/<campaign>/<run>/; returns both keys."""
    prefix = report_prefix(report["campaign_id"], report["run_id"])
    json_key, html_key = f"{prefix}/report.json", f"{prefix}/report.html"
    uploads.put_json(bucket, json_key, report)
    uploads.put_bytes(bucket, html_key, html_report.render(report).encode("utf-8"), "text/html; charset=utf-8")
    return json_key, html_key
