from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cadence.campaigns import CampaignDefinition, in_holdout, plan_run, run_id_for


def definition(**overrides: object) -> CampaignDefinition:
    values: dict[str, object] = {
        "campaign_id": "winback",
        "name": "Win back",
        "channels": ["email", "sms"],
        "audience": {"max_decile": 3},
        "holdout_percent": 10,
        "email": {"subject": "Hi {first_name}", "body": "We miss you"},
        "sms": {"text": "We miss you"},
    }
    values.update(overrides)
    return CampaignDefinition.model_validate(values)


def profile(customer_id: str, **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "customer_id": customer_id,
        "email": f"{customer_id}@example.com",
        "phone": "+8613800138000",
        "consent_email": True,
        "consent_sms": True,
        "score": 0.9,
        "decile": 1,
    }
    values.update(overrides)
    return values


def test_definition_is_rejected_when_a_channel_has_no_message() -> None:
    with pytest.raises(ValidationError, match="channel sms is listed but has no sms message"):
        definition(sms=None)


def test_definition_is_rejected_when_it_has_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        definition(audiense={"max_decile": 2})


def test_plan_sends_only_on_consented_channels_with_an_address() -> None:
    campaign = definition(holdout_percent=0)
    profiles = [
        profile("both"),
        profile("email-only", consent_sms=False),
        profile("sms-only", email=None),
        profile("none", consent_email=False, consent_sms=False),
    ]

    plan = plan_run(campaign, "run-1", profiles)

    planned = {(send.customer_id, send.channel) for send in plan.sends}
    assert planned == {("both", "email"), ("both", "sms"), ("email-only", "email"), ("sms-only", "sms")}
    assert plan.skipped_by_reason == {"no_consented_channel": 1}
    assert plan.sends_by_channel() == {"email": 2, "sms": 2}


def test_plan_leaves_out_unscored_and_low_deciles() -> None:
    plan = plan_run(
        definition(holdout_percent=0),
        "run-1",
        [profile("top"), profile("low", decile=7), profile("new", score=None, decile=None)],
    )

    assert {send.customer_id for send in plan.sends} == {"top"}
    assert plan.audience_size == 1
    assert plan.skipped_by_reason == {"below_threshold": 1, "not_scored": 1}


def test_holdout_customers_get_nothing_and_are_counted() -> None:
    profiles = [profile(f"C{i:05d}") for i in range(4000)]

    plan = plan_run(definition(holdout_percent=10), "run-1", profiles)

    held_out = {p["customer_id"] for p in profiles} - {send.customer_id for send in plan.sends}
    assert plan.holdout_size == len(held_out)
    assert 320 <= plan.holdout_size <= 480  # 10 % of 4,000, within sampling noise
    assert all(in_holdout("winback", customer_id, 10) for customer_id in held_out)


@given(customer_id=st.text(min_size=1, max_size=20), percent=st.floats(min_value=0, max_value=50))
def test_holdout_membership_is_stable_across_runs(customer_id: str, percent: float) -> None:
    assert in_holdout("winback", customer_id, percent) == in_holdout("winback", customer_id, percent)
    assert not in_holdout("winback", customer_id, 0)


def test_run_id_is_the_same_for_the_same_firing_in_any_time_zone() -> None:
    utc = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    shanghai = utc.astimezone(timezone(timedelta(hours=8)))

    assert run_id_for("winback", utc) == run_id_for("winback", shanghai) == "winback@2026-11-23T02:00:00Z"
