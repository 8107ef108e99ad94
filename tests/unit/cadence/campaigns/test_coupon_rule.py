"""The shipped coupon campaign (infra/campaigns/coupon.yaml) selects exactly the customers it describes."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.plan import Candidate, plan_run

COUPON_YAML = Path(__file__).resolve().parents[4] / "infra" / "campaigns" / "coupon.yaml"
# The run's coupon secret (in the stack it comes from Secrets Manager).
KEY = "key-for-tests"
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def load_coupon() -> CampaignDefinition:
    return CampaignDefinition.model_validate(yaml.safe_load(COUPON_YAML.read_text(encoding="utf-8")))


def wants_coupon(activity: dict | None, now: datetime) -> bool:
    """The oracle, written from the campaign's description: loyal (3+ orders) and not seen for 3 months."""
    activity = activity or {}
    orders = float(activity.get("order_count") or 0)
    visit = activity.get("last_visit_at")
    if visit is None:
        return orders >= 3
    moment = datetime.fromisoformat(visit)
    if moment.tzinfo is None:  # a bare date is that day's midnight, UTC
        moment = moment.replace(tzinfo=UTC)
    whole_days = (now - moment) // DAY
    return orders >= 3 and whole_days > 90


def _visit_text(moment: datetime, form: str) -> str:
    if form == "date":
        return moment.astimezone(UTC).date().isoformat()
    if form == "z":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


visits = st.builds(
    _visit_text,
    # Mostly around the 90-day boundary, where an off-by-one hides.
    st.one_of(
        st.integers(min_value=88 * 86_400, max_value=93 * 86_400),
        st.integers(min_value=-86_400, max_value=400 * 86_400),
    ).map(lambda seconds: NOW - timedelta(seconds=seconds)),
    st.sampled_from(["date", "z", "offset"]),
)
visits_with_zone = st.builds(
    lambda seconds, hours: (NOW - timedelta(seconds=seconds)).astimezone(timezone(timedelta(hours=hours))).isoformat(),
    st.integers(min_value=88 * 86_400, max_value=93 * 86_400),
    st.integers(min_value=-11, max_value=13),
)
order_counts = st.one_of(
    st.none(), st.integers(min_value=0, max_value=8), st.integers(min_value=0, max_value=8).map(Decimal)
)
activities = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "order_count": order_counts,
            "last_visit_at": st.one_of(visits, visits_with_zone),
            "total_spend": st.integers(min_value=0, max_value=5000).map(Decimal),
            "last_order_at": visits,
            "event_count": st.integers(min_value=0, max_value=50),
        },
    ),
)
scores = st.one_of(
    st.none(),
    st.fixed_dictionaries({"decile": st.integers(min_value=1, max_value=10), "score": st.floats(0, 1)}),
)


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(min_value=1, max_value=25))
    return [
        Candidate(
            {
                "customer_id": f"c{index}",
                "phone": draw(st.sampled_from([None, f"+86138{index:08d}"])),
                "consent_sms": draw(st.booleans()),
                "country": draw(st.sampled_from([None, "CN", "GB"])),
            },
            draw(activities),
            draw(scores),
        )
        for index in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(candidates())
def test_coupon_audience_is_exactly_loyal_customers_not_seen_for_90_days(people: list[Candidate]) -> None:
    plan = plan_run(load_coupon(), "loyal-winback-coupon@2026-03-10T09:30:00Z", people, now=NOW, secret=KEY)

    expected = {person.customer_id for person in people if wants_coupon(person.activity, NOW)}
    assert {member.customer_id for member in plan.members} == expected
    assert plan.considered == len(people)


def test_coupon_rule_counts_whole_days_not_calendar_days_when_visit_has_a_time() -> None:
    # 90 days and 23 hours ago is not "more than 90 days"; 91 days ago is.
    almost = NOW - timedelta(days=90, hours=23)
    enough = NOW - timedelta(days=91)
    people = [
        Candidate({"customer_id": "almost"}, {"order_count": 3, "last_visit_at": _visit_text(almost, "z")}),
        Candidate({"customer_id": "enough"}, {"order_count": 3, "last_visit_at": _visit_text(enough, "z")}),
    ]

    plan = plan_run(load_coupon(), "r", people, now=NOW)

    assert [member.customer_id for member in plan.members] == ["enough"]


def test_coupon_rule_includes_never_visited_and_excludes_fewer_than_three_orders() -> None:
    long_ago = (NOW - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    people = [
        Candidate({"customer_id": "never-visited"}, {"order_count": 3}),
        Candidate({"customer_id": "two-orders"}, {"order_count": 2, "last_visit_at": long_ago}),
        Candidate({"customer_id": "no-activity"}, None),
        Candidate({"customer_id": "recent"}, {"order_count": 9, "last_visit_at": NOW.isoformat()}),
        Candidate({"customer_id": "loyal-lapsed"}, {"order_count": Decimal(5), "last_visit_at": long_ago}),
    ]

    plan = plan_run(load_coupon(), "r", people, now=NOW)

    assert sorted(member.customer_id for member in plan.members) == ["loyal-lapsed", "never-visited"]


def test_coupon_example_is_short_and_sends_a_tiered_sms_coupon() -> None:
    lines = COUPON_YAML.read_text(encoding="utf-8").splitlines()
    content = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    definition = load_coupon()

    assert len(content) <= 10
    assert definition.channels == ("sms",)
    assert definition.offer is not None
    assert definition.offer.coupon is True
    assert [definition.offer.value_for(decile, None) for decile in (1, 2, 3, 5, 6, 10)] == [
        "5", "5", "10", "10", "20", "20",
    ]  # fmt: skip
    assert "{coupon_code}" in definition.sms.text


def test_coupon_sms_carries_a_code_and_the_decile_value() -> None:
    person = Candidate(
        {"customer_id": "c1", "phone": "+8613800000001", "consent_sms": True, "first_name": "Li"},
        {"order_count": 4},
        {"decile": 4, "score": 0.5},
    )
    definition = load_coupon().model_copy(update={"holdout_percent": 0.0})

    [send] = plan_run(definition, "r", [person], now=NOW, secret=KEY).sends()

    assert (send.customer_id, send.channel, send.offer_value) == ("c1", "sms", "10")
    assert send.coupon_code is not None
    assert len(send.coupon_code) == 12
