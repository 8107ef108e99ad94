from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from cadence.campaigns import CampaignDefinition, is_reachable, run_id_for


def definition(**overrides: object) -> CampaignDefinition:
    values: dict[str, object] = {
        "campaign_id": "winback",
        "name": "Win back",
        "channels": ["email", "sms"],
        "audience": {"max_decile": 3},
        "email": {"subject": "Hi {first_name}", "body": "We miss you"},
        "sms": {"text": "We miss you"},
    }
    values.update(overrides)
    return CampaignDefinition.model_validate(values)


def test_definition_is_rejected_when_a_channel_has_no_message() -> None:
    with pytest.raises(ValidationError, match="channel sms is listed but the campaign has no sms message"):
        definition(sms=None)


def test_definition_is_rejected_when_it_has_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        definition(audiense={"max_decile": 2})


def test_definition_is_rejected_when_a_message_names_an_unknown_placeholder() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder \{coupon\}"):
        definition(sms={"text": "Use {coupon}"})


@pytest.mark.parametrize(
    ("profile", "channel", "reachable"),
    [
        ({"email": "a@example.com", "consent_email": True}, "email", True),
        ({"email": "a@example.com", "consent_email": False}, "email", False),
        ({"consent_sms": True}, "sms", False),
        ({"phone": "+8613800138000", "consent_sms": True}, "sms", True),
    ],
)
def test_a_customer_is_reachable_only_with_consent_and_an_address(profile, channel, reachable) -> None:
    assert is_reachable(profile, channel) is reachable


def test_run_id_is_the_same_for_the_same_firing_in_any_time_zone() -> None:
    utc = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    shanghai = utc.astimezone(timezone(timedelta(hours=8)))

    assert run_id_for("winback", utc) == run_id_for("winback", shanghai) == "winback@2026-11-23T02:00:00Z"
