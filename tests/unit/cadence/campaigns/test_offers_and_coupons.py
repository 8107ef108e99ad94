"""Offers (fixed, tiered by decile or score) and the per-recipient coupon codes a plan hands out."""

import itertools
import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cadence.campaigns.definition import CampaignDefinition, Offer
from cadence.campaigns.plan import Candidate, coupon_code, plan_run

# The run's coupon secret (in the stack it comes from Secrets Manager).
KEY = "key-for-tests"
OTHER_KEY = "other-key-for-tests"
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# order_count is 0 without activity, so this holds for every customer, scored or not.
EVERYONE = {"field": "order_count", "gte": 0}
DECILE_TIERS = {"by": "decile", "tiers": [{"max": 2, "value": 5}, {"max": 5, "value": 10}], "otherwise": 20}


def definition(offer: dict | None, **extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {
            "campaign_id": "spring",
            "name": "Spring",
            "channels": ["sms"],
            "sms": {"text": "{offer_value} off with {coupon_code}"},
            "holdout_percent": 0,
            "audience": EVERYONE,
            "offer": offer,
            **extra,
        }
    )


def customer(index: int, decile: int | None = 1, score: float | None = 0.5) -> Candidate:
    scores = None if decile is None and score is None else {"decile": decile, "score": score}
    return Candidate({"customer_id": f"c{index:06d}", "phone": f"+86138{index:08d}", "consent_sms": True}, None, scores)


def test_fixed_offer_is_the_same_for_everyone() -> None:
    plan = plan_run(definition({"value": 15}), "r", [customer(1, 1), customer(2, 9), customer(3, None, None)], now=NOW)

    assert [send.offer_value for send in plan.sends()] == ["15", "15", "15"]


@pytest.mark.parametrize(("decile", "value"), [(1, "5"), (2, "5"), (3, "10"), (4, "10"), (5, "10"), (6, "20"),
                                               (10, "20"), (None, "20")])  # fmt: skip
def test_decile_tiers_set_the_offer(decile: int | None, value: str) -> None:
    plan = plan_run(definition(DECILE_TIERS), "r", [customer(1, decile, 0.5)], now=NOW)

    [member] = plan.members
    assert member.offer_value == value
    assert [send.offer_value for send in plan.sends()] == [value]


@pytest.mark.parametrize(("score", "value"), [(0.95, "30"), (0.8, "30"), (0.79, "15"), (0.5, "15"), (0.49, "5"),
                                              (None, "5")])  # fmt: skip
def test_score_tiers_set_the_offer(score: float | None, value: str) -> None:
    offer = {"by": "score", "tiers": [{"min": 0.8, "value": 30}, {"min": 0.5, "max": 0.8, "value": 15}],
             "otherwise": 5}  # fmt: skip

    plan = plan_run(definition(offer), "r", [customer(1, 1, score)], now=NOW)

    assert plan.members[0].offer_value == value


def test_first_matching_tier_wins_when_tiers_overlap() -> None:
    offer = Offer.model_validate({"by": "decile", "tiers": [{"max": 5, "value": 7}, {"max": 2, "value": 9}],
                                  "otherwise": 1})  # fmt: skip

    assert offer.value_for(1.0, None) == "7"


@pytest.mark.parametrize(
    ("value", "text"), [(10, "10"), (10.0, "10"), (12.5, "12.5"), ("free shipping", "free shipping"), (0, "0")]
)
def test_whole_values_render_without_a_decimal_point(value: object, text: str) -> None:
    assert Offer.model_validate({"value": value}).value_for(None, None) == text
    tiered = Offer.model_validate({"by": "decile", "tiers": [{"max": 2, "value": value}], "otherwise": value})
    assert tiered.value_for(1.0, None) == text
    assert tiered.value_for(9.0, None) == text


@pytest.mark.parametrize(
    ("offer", "problem"),
    [
        ({"value": 5, "by": "decile", "tiers": [{"max": 2, "value": 5}], "otherwise": 1}, "not both"),
        ({"by": "decile", "tiers": [{"max": 2, "value": 5}]}, "needs by"),
        ({"tiers": [{"max": 2, "value": 5}], "otherwise": 1}, "needs by"),
        ({"by": "decile", "otherwise": 1}, "needs by"),
        ({"by": "decile", "tiers": [{"value": 5}], "otherwise": 1}, "min, max or both"),
        ({"value": 5, "coupon_prefix": "win-"}, "coupon_prefix"),
        ({"by": "age", "tiers": [{"max": 2, "value": 5}], "otherwise": 1}, "by"),
    ],
)
def test_malformed_offer_is_rejected(offer: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        definition(offer)


def test_variant_offer_replaces_the_campaign_offer() -> None:
    campaign = definition(
        {"value": 5},
        variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "offer": {"value": 25}}],
    )

    plan = plan_run(campaign, "r", [customer(index) for index in range(200)], now=NOW)

    by_variant = {(send.variant, send.offer_value) for send in plan.sends()}
    assert by_variant == {("a", "5"), ("b", "25")}


def test_no_offer_means_no_value_and_no_code() -> None:
    plan = plan_run(definition(None, sms={"text": "hello"}), "r", [customer(1)], now=NOW, secret=KEY)

    [send] = plan.sends()
    assert (send.offer_value, send.coupon_code) == (None, None)
    assert "offer_value" not in send.to_message()


def test_coupon_off_gives_a_value_without_a_code() -> None:
    plan = plan_run(definition({"value": 5, "coupon": False}, sms={"text": "{offer_value}"}), "r", [customer(1)],
                    now=NOW, secret=KEY)  # fmt: skip

    [send] = plan.sends()
    assert (send.offer_value, send.coupon_code) == ("5", None)


def test_coupon_codes_are_unique_and_random_looking_across_100k_customers() -> None:
    people = [customer(index, index % 10 + 1) for index in range(100_000)]

    plan = plan_run(definition({**DECILE_TIERS, "coupon_prefix": "WB"}), "spring@2026-03-10T09:30:00Z", people,
                    now=NOW, secret=KEY)  # fmt: skip

    codes = [send.coupon_code for send in plan.sends()]
    assert len(codes) == 100_000
    assert len(set(codes)) == 100_000
    assert all(re.fullmatch(r"WB[0-9A-HJKMNP-TV-Z]{12}", code) for code in codes)
    assert [member.coupon_code for member in plan.members] == codes
    # Unguessable-looking: every position spreads over the whole alphabet, with no favourite symbol.
    for position in (2, 7, 13):
        counts = Counter(code[position] for code in codes)
        assert set(counts) == set(CROCKFORD)
        assert max(counts.values()) < 1.15 * 100_000 / 32
        assert min(counts.values()) > 0.85 * 100_000 / 32
    # Neighbouring customers do not get neighbouring codes.
    assert sum(a[2:8] == b[2:8] for a, b in itertools.pairwise(codes)) == 0


def test_coupon_codes_are_the_same_when_the_run_is_replanned_with_the_same_secret() -> None:
    people = [customer(index) for index in range(1_000)]
    campaign = definition({"value": 5})

    first = plan_run(campaign, "spring@2026-03-10T09:30:00Z", people, now=NOW, secret=KEY)
    again = plan_run(campaign, "spring@2026-03-10T09:30:00Z", list(reversed(people)), now=NOW, secret=KEY)
    other = plan_run(campaign, "spring@2026-03-10T09:30:00Z", people, now=NOW, secret=OTHER_KEY)

    codes = {member.customer_id: member.coupon_code for member in first.members}
    assert {member.customer_id: member.coupon_code for member in again.members} == codes
    other_codes = {member.customer_id: member.coupon_code for member in other.members}
    assert all(other_codes[customer_id] != code for customer_id, code in codes.items())


def test_coupon_code_depends_on_run_customer_secret_and_attempt() -> None:
    code = coupon_code("secret", "run-1", "c1")

    assert len(code) == 12
    assert set(code) <= set(CROCKFORD)
    assert coupon_code("secret", "run-1", "c1") == code
    assert coupon_code("secret", "run-2", "c1") != code
    assert coupon_code("secret", "run-1", "c2") != code
    assert coupon_code("other", "run-1", "c1") != code
    assert coupon_code("secret", "run-1", "c1", attempt=1) != code
    assert coupon_code("secret", "run-1", "c1", prefix="AB") == "AB" + code
