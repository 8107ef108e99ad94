"""The planner leaves every address on the suppression list out of every campaign's sends."""

from datetime import UTC, datetime
from decimal import Decimal

import boto3

from cadence import campaign_runs, config
from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.plan import MemberState
from cadence.dal import suppression_table
from cadence.suppression import Reason, Suppression

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CAMPAIGN = CampaignDefinition.model_validate(
    {
        "campaign_id": "suppressed-audience",
        "name": "Everyone",
        "channels": ["email", "sms"],
        "holdout_percent": 0,
        "email": {"subject": "Hello", "body": "Hi {first_name}"},
        "sms": {"text": "Hi"},
    }
)


def test_suppressed_addresses_are_not_planned_and_a_withdrawn_consent_follows_the_profile(
    tables: dict[str, str], data_bucket: str
) -> None:
    dynamodb = boto3.resource("dynamodb")
    for number, customer_id in enumerate(("bounced", "opted-out", "withdrawn", "fine"), start=1):
        dynamodb.Table(tables["ProfilesTable"]).put_item(
            Item={
                "customer_id": customer_id,
                "email": f"{customer_id}@example.com",
                "phone": f"+861380013800{number}",
                "first_name": "Li",
                "consent_email": True,
                "consent_sms": customer_id != "bounced",
            }
        )
        dynamodb.Table(tables["ScoresTable"]).put_item(
            Item={"customer_id": customer_id, "score": Decimal("0.5"), "decile": 3, "model_version": "m"}
        )
    suppression_table.add(
        tables["SuppressionTable"],
        [
            Suppression.of_address("email", "Bounced@example.com", Reason.HARD_BOUNCE, "ses"),
            Suppression.of_address("sms", "+8613800138002", Reason.SMS_OPT_OUT, "sns"),
            # a withdrawal by file is the profile's business: it says yes again, so the customer is planned
            Suppression.of_address("email", "withdrawn@example.com", Reason.CONSENT_WITHDRAWN, "ingest"),
        ],
    )

    plan = campaign_runs.preview(CAMPAIGN, config.campaign_settings(), NOW)

    states = {member.customer_id: member.state for member in plan.members}
    sends = {(send.customer_id, send.channel) for send in plan.sends()}
    assert states["bounced"] is MemberState.SUPPRESSED  # its only consented channel is suppressed
    assert sends == {
        ("opted-out", "email"),
        ("withdrawn", "email"),
        ("withdrawn", "sms"),
        ("fine", "email"),
        ("fine", "sms"),
    }
    assert plan.counters()["state_suppressed"] == 1
