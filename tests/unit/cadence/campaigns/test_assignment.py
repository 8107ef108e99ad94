"""Variant and holdout assignment: stable per customer, proportional to the weights, recorded for every member."""

from collections import Counter
from datetime import UTC, datetime

from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.plan import Candidate, MemberState, assign, plan_run

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
N = 100_000


def definition(**extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {
            "campaign_id": "spring",
            "name": "Spring",
            "channels": ["sms"],
            "sms": {"text": "Hi"},
            "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}],
            "holdout_percent": 10,
            **extra,
        }
    )


def customer(index: int) -> Candidate:
    return Candidate(
        {"customer_id": f"cust-{index}", "phone": f"+86138{index:08d}", "consent_sms": True}, None, {"decile": 1}
    )


def test_variants_and_holdout_follow_their_weights_on_100k_customers() -> None:
    campaign = definition()
    outcomes = [assign(campaign, f"cust-{index}") for index in range(N)]

    variants = Counter(variant for variant, _ in outcomes)
    holdout = sum(held for _, held in outcomes)
    assert abs(variants["a"] / N - 0.25) <= 0.01
    assert abs(variants["b"] / N - 0.75) <= 0.01
    assert set(variants) == {"a", "b"}
    assert abs(holdout / N - 0.10) <= 0.01
    # Independent of each other: the holdout holds each variant in its share too.
    held_a = sum(1 for variant, held in outcomes if held and variant == "a")
    assert abs(held_a / holdout - 0.25) <= 0.02


def test_assignment_is_stable_across_calls_and_definitions_of_the_same_campaign() -> None:
    first = [assign(definition(), f"cust-{index}") for index in range(2_000)]

    assert [assign(definition(), f"cust-{index}") for index in range(2_000)] == first
    # Rewording a message does not reshuffle who is in which arm.
    assert [assign(definition(sms={"text": "Hello"}), f"cust-{index}") for index in range(2_000)] == first


def test_assignment_differs_between_campaigns() -> None:
    one = [assign(definition(), f"cust-{index}") for index in range(2_000)]
    other = [assign(definition(campaign_id="autumn"), f"cust-{index}") for index in range(2_000)]

    assert one != other


def test_holdout_percent_sets_the_holdout_share() -> None:
    for percent in (0, 5, 50):
        campaign = definition(holdout_percent=percent)
        held = sum(assign(campaign, f"cust-{index}")[1] for index in range(20_000))
        assert abs(held / 20_000 - percent / 100) <= 0.01


def test_no_variants_means_no_variant_name() -> None:
    campaign = definition(variants=[])

    assert {assign(campaign, f"cust-{index}")[0] for index in range(100)} == {None}


def test_plan_records_a_variant_for_every_member_holdout_included() -> None:
    campaign = definition()
    people = [customer(index) for index in range(5_000)]

    plan = plan_run(campaign, "r", people, now=NOW)

    assert len(plan.members) == 5_000
    for member in plan.members:
        variant, held = assign(campaign, member.customer_id)
        assert member.variant == variant
        assert (member.state is MemberState.HOLDOUT) is held
    holdout = [member for member in plan.members if member.state is MemberState.HOLDOUT]
    assert {member.variant for member in holdout} == {"a", "b"}
    assert all(not member.channels and member.release_at is None for member in holdout)
    sent = {send.customer_id for send in plan.sends()}
    assert sent.isdisjoint(member.customer_id for member in holdout)
    counters = plan.counters()
    assert counters["variant_a"] + counters["variant_b"] == 5_000
    assert counters["state_holdout"] == len(holdout)


def test_each_send_carries_its_members_variant_and_message() -> None:
    campaign = definition(variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "sms": {"text": "B"}}])

    plan = plan_run(campaign, "r", [customer(index) for index in range(300)], now=NOW)

    variant_of = {member.customer_id: member.variant for member in plan.members}
    assert all(send.variant == variant_of[send.customer_id] for send in plan.sends())
    assert campaign.message("sms", "b").text == "B"
    assert campaign.message("sms", "a").text == "Hi"
