"""The webhook channel in a definition and a plan: its own address and consent, and every rule SMS obeys."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from cadence import campaign_runs, config
from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.plan import Candidate, Contact, ContactHistory, MemberState, StackRules, plan_run
from cadence.suppression import address_hash

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
WEBHOOK = {
    "url": "https://hooks.example.com/cadence",
    "text": "{first_name}, {offer_value}% off with {coupon_code}",
    "address_attribute": "attr_wechat_openid",
    "consent_attribute": "attr_wechat_consent",
}


def definition(**extra: Any) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {
            "campaign_id": "wechat-winback",
            "name": "WeChat win-back",
            "channels": ["webhook"],
            "webhook": WEBHOOK,
            "offer": {"value": 10},
            "holdout_percent": 0,
            **extra,
        }
    )


def candidate(customer_id: str, score: float = 0.5, **profile: Any) -> Candidate:
    fields = {"customer_id": customer_id, "attr_wechat_openid": f"oWx-{customer_id}", "attr_wechat_consent": "yes"}
    return Candidate({**fields, **profile}, None, {"decile": 3, "score": score})


def states(plan: Any) -> dict[str, MemberState]:
    return {member.customer_id: member.state for member in plan.members}


# ---------- the definition ----------


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.example.com/cadence", "https"),
        ("http://localhost:8080/hooks", "https"),
        ("https:///no-host", "https"),
        ("https://user:pass@hooks.example.com/cadence", "credentials"),
    ],
)
def test_a_webhook_url_is_https_without_credentials(url: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        definition(webhook={**WEBHOOK, "url": url})


def test_a_loopback_http_url_is_accepted_for_a_local_receiver() -> None:
    assert definition(webhook={**WEBHOOK, "url": "http://127.0.0.1:8080/hooks"}).webhook is not None


@pytest.mark.parametrize("missing", ["address_attribute", "consent_attribute", "url", "text"])
def test_the_campaigns_webhook_names_its_address_consent_url_and_text(missing: str) -> None:
    with pytest.raises(ValidationError, match=missing):
        definition(webhook={key: value for key, value in WEBHOOK.items() if key != missing})


def test_a_webhook_text_takes_only_the_known_placeholders() -> None:
    with pytest.raises(ValidationError, match="unknown placeholder"):
        definition(webhook={**WEBHOOK, "text": "Hi {email}"})


def test_variants_replace_the_webhook_message_but_not_where_the_address_is() -> None:
    variants = [{"name": "a", "weight": 1, "webhook": {"url": "https://b.example.com/x", "text": "A {first_name}"}},
                {"name": "b", "weight": 1}]  # fmt: skip
    campaign = definition(variants=variants)

    assert campaign.message("webhook", "a").url == "https://b.example.com/x"  # type: ignore[union-attr]
    assert campaign.message("webhook", "b") == campaign.webhook
    with pytest.raises(ValidationError, match="address_attribute"):
        definition(variants=[{"name": "a", "weight": 1, "webhook": {**WEBHOOK}}])


def test_a_webhook_channel_needs_the_campaigns_webhook_even_when_every_variant_has_one() -> None:
    variant = {"name": "a", "weight": 1, "webhook": {"url": "https://b.example.com/x", "text": "A"}}
    with pytest.raises(ValidationError, match="no webhook"):
        CampaignDefinition.model_validate(
            {"campaign_id": "c", "name": "c", "channels": ["webhook"], "variants": [variant]}
        )


# ---------- planning ----------


def test_webhook_members_are_planned_on_their_address_attribute_with_consent_from_theirs() -> None:
    plan = plan_run(
        definition(),
        "run-1",
        [
            candidate("ok"),
            candidate("consent-true", attr_wechat_consent=True),
            candidate("said-no", attr_wechat_consent="no"),
            candidate("no-consent", attr_wechat_consent=None),
            candidate("no-address", attr_wechat_openid=" "),
            candidate("two-addresses", attr_wechat_openid=["oWx-1", "oWx-2"]),
            # SMS consent and a phone do not make a webhook recipient
            candidate("sms-only", attr_wechat_openid=None, phone="+8613800000001", consent_sms=True),
        ],
        now=NOW,
    )

    assert states(plan) == {
        "ok": MemberState.QUEUED,
        "consent-true": MemberState.QUEUED,
        "said-no": MemberState.NO_CONSENT,
        "no-consent": MemberState.NO_CONSENT,
        "no-address": MemberState.NO_ADDRESS,
        "two-addresses": MemberState.NO_ADDRESS,
        "sms-only": MemberState.NO_ADDRESS,
    }
    assert {(send.customer_id, send.channel) for send in plan.sends()} == {
        ("ok", "webhook"),
        ("consent-true", "webhook"),
    }
    assert all(send.coupon_code and send.offer_value == "10" for send in plan.sends())


def test_customers_sharing_a_webhook_address_get_one_message_the_highest_score_keeps_it() -> None:
    plan = plan_run(
        definition(),
        "run-1",
        [
            candidate("low", 0.2, attr_wechat_openid="oWx-shared"),
            candidate("high", 0.9, attr_wechat_openid="oWx-shared"),
        ],
        now=NOW,
    )

    assert states(plan) == {"low": MemberState.DUPLICATE_ADDRESS, "high": MemberState.QUEUED}
    assert next(m for m in plan.members if m.customer_id == "low").duplicate_of == "high"


@pytest.mark.parametrize(
    ("caps", "state"),
    [
        ({"webhook": {"max": 1, "days": 7}}, MemberState.CAPPED),  # its own cap, met by a webhook contact
        ({"sms": {"max": 1, "days": 7}}, MemberState.QUEUED),  # another channel's cap does not count it
        ({"overall": {"max": 1, "days": 7}}, MemberState.CAPPED),
    ],
)
def test_frequency_caps_count_webhook_contacts_per_channel_and_overall(
    caps: dict[str, Any], state: MemberState
) -> None:
    history = ContactHistory([Contact("c1", NOW.date() - timedelta(days=2), "webhook", "other-campaign", "other@run")])

    plan = plan_run(definition(caps=caps), "run-1", [candidate("c1")], now=NOW, history=history)

    assert states(plan) == {"c1": state}


def test_a_suppressed_webhook_address_is_left_out_and_quiet_hours_defer_it() -> None:
    suppressed = frozenset({("webhook", address_hash("oWx-gone"))})
    stack = StackRules(suppressed=suppressed)
    campaign = definition(quiet_hours={"start": "09:00", "end": "12:00"})

    plan = plan_run(
        campaign, "run-1", [candidate("gone", attr_wechat_openid="oWx-gone"), candidate("c1")], now=NOW, stack=stack
    )

    assert states(plan) == {"gone": MemberState.SUPPRESSED, "c1": MemberState.DEFERRED}
    [batch] = plan.batches()
    assert (batch.channel, batch.release_at, batch.batch_id) == (
        "webhook", datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "webhook-20260310T1200Z-00000"
    )  # fmt: skip


def test_reentry_and_the_holdout_apply_to_webhook_members() -> None:
    history = ContactHistory([Contact("c1", NOW.date() - timedelta(days=1), "webhook", "wechat-winback", "old@run")])
    candidates = [candidate(f"c{number}") for number in range(1, 201)]

    plan = plan_run(definition(holdout_percent=20), "run-1", candidates, now=NOW, history=history)

    assert states(plan)["c1"] is MemberState.REENTRY_EXCLUDED
    held = sum(state is MemberState.HOLDOUT for state in states(plan).values())
    assert 20 <= held <= 60  # about 20% of 200
    assert plan.counters()["sends_webhook"] == sum(state is MemberState.QUEUED for state in states(plan).values())


def test_a_run_reads_the_webhook_attributes_of_each_profile(tables: dict[str, str], data_bucket: str) -> None:
    # given profiles in the table, read with only the attributes the run plans with
    dynamodb = boto3.resource("dynamodb")
    for customer_id, consent in (("w1", "yes"), ("w2", "no")):
        dynamodb.Table(tables["ProfilesTable"]).put_item(
            Item={
                "customer_id": customer_id,
                "attr_wechat_openid": f"oWx-{customer_id}",
                "attr_wechat_consent": consent,
            }
        )
        dynamodb.Table(tables["ScoresTable"]).put_item(
            Item={"customer_id": customer_id, "score": Decimal("0.5"), "decile": 3, "model_version": "m"}
        )

    plan = campaign_runs.preview(definition(), config.campaign_settings(), NOW)

    assert states(plan) == {"w1": MemberState.QUEUED, "w2": MemberState.NO_CONSENT}
