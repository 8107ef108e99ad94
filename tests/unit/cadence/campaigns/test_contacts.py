"""Re-entry and frequency caps: what earlier contacts (of this and other campaigns) allow."""

from datetime import UTC, date, datetime, timedelta

import pytest

from cadence.campaigns.definition import CampaignDefinition, Caps
from cadence.campaigns.plan import Candidate, Contact, ContactHistory, MemberState, StackRules, contacts_of, plan_run

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
TODAY = NOW.date()


def definition(campaign_id: str = "campaign-b", **extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {
            "campaign_id": campaign_id,
            "name": campaign_id,
            "channels": ["email", "sms"],
            "email": {"subject": "Hi", "body": "Hello {first_name}"},
            "sms": {"text": "Hi"},
            "holdout_percent": 0,
            **extra,
        }
    )


CUSTOMER = Candidate(
    {"customer_id": "c1", "email": "c1@example.com", "phone": "+8613800000001", "consent_email": True,
     "consent_sms": True},
    None,
    {"decile": 1, "score": 0.9},
)  # fmt: skip


def contact(days_ago: int, campaign_id: str, channel: str = "sms", customer_id: str = "c1") -> Contact:
    return Contact(customer_id, TODAY - timedelta(days=days_ago), channel, campaign_id, f"{campaign_id}@run")


def run(campaign: CampaignDefinition, *contacts: Contact, stack: StackRules | None = None):
    plan = plan_run(campaign, "run-1", [CUSTOMER], now=NOW, history=ContactHistory(contacts), stack=stack)
    [member] = plan.members
    return member, plan.sends()


# ---------- re-entry ----------


@pytest.mark.parametrize("days_ago", [0, 1, 365])
def test_once_only_campaign_excludes_anyone_it_contacted_before(days_ago: int) -> None:
    member, sends = run(definition(), contact(days_ago, "campaign-b"))

    assert member.state is MemberState.REENTRY_EXCLUDED
    assert sends == []


@pytest.mark.parametrize(("days_ago", "state"), [(0, MemberState.REENTRY_EXCLUDED), (29, MemberState.REENTRY_EXCLUDED),
                                                 (30, MemberState.QUEUED), (120, MemberState.QUEUED)])  # fmt: skip
def test_reentry_days_excludes_inside_the_window_and_allows_after(days_ago: int, state: MemberState) -> None:
    member, sends = run(definition(reentry={"days": 30}), contact(days_ago, "campaign-b"))

    assert member.state is state
    assert len(sends) == (2 if state is MemberState.QUEUED else 0)


def test_reentry_looks_at_the_latest_contact_of_the_campaign() -> None:
    member, _ = run(definition(reentry={"days": 30}), contact(100, "campaign-b"), contact(3, "campaign-b"))

    assert member.state is MemberState.REENTRY_EXCLUDED


def test_contacts_of_other_campaigns_do_not_count_for_reentry() -> None:
    member, sends = run(definition(), contact(0, "campaign-a"), contact(1, "campaign-a", "email"))

    assert member.state is MemberState.QUEUED
    assert [send.channel for send in sends] == ["email", "sms"]


def test_contacts_of_other_customers_do_not_count() -> None:
    member, _ = run(definition(), contact(0, "campaign-b", customer_id="c2"))

    assert member.state is MemberState.QUEUED


def test_reentry_is_decided_before_the_holdout() -> None:
    member, _ = run(definition(holdout_percent=50, reentry={"days": 7}), contact(1, "campaign-b"))

    assert member.state is MemberState.REENTRY_EXCLUDED


# ---------- caps ----------

WEEKLY_ONE = {"overall": {"max": 1, "days": 7}}


def test_customer_contacted_by_another_campaign_yesterday_is_capped() -> None:
    member, sends = run(definition(caps=WEEKLY_ONE), contact(1, "campaign-a"))

    assert member.state is MemberState.CAPPED
    assert sends == []
    assert member.channels == ()


def test_a_plan_of_campaign_a_caps_campaign_b_through_its_contacts() -> None:
    # given campaign A ran yesterday
    yesterday = NOW - timedelta(days=1)
    plan_a = plan_run(definition("campaign-a"), "campaign-a@run", [CUSTOMER], now=yesterday)
    history = ContactHistory(contacts_of(plan_a, "campaign-a"))
    assert len(history) == 2
    # when campaign B runs today under a stack-wide cap of one message a week
    plan_b = plan_run(definition(), "campaign-b@run", [CUSTOMER], now=NOW, history=history,
                      stack=StackRules(caps=Caps.model_validate(WEEKLY_ONE)))  # fmt: skip
    # then
    assert plan_b.members[0].state is MemberState.CAPPED
    assert plan_b.sends() == []


@pytest.mark.parametrize("days_ago", [7, 8, 30])
def test_contacts_older_than_the_cap_window_do_not_count(days_ago: int) -> None:
    member, sends = run(definition(caps={"overall": {"max": 1, "days": 7}, "sms": {"max": 1, "days": 7}}),
                        contact(days_ago, "campaign-a"))  # fmt: skip

    assert member.state is MemberState.QUEUED
    assert len(sends) == 1  # overall room for one message: the first channel the campaign lists
    assert member.channels == ("email",)


def test_contact_history_counts_a_contact_read_twice_once() -> None:
    twice = contact(1, "campaign-a")
    member, sends = run(definition(caps={"overall": {"max": 2, "days": 7}}), twice, twice)

    assert member.state is MemberState.QUEUED
    assert [send.channel for send in sends] == ["email"]


def test_per_channel_cap_drops_only_that_channel() -> None:
    member, sends = run(definition(caps={"sms": {"max": 1, "days": 7}}), contact(2, "campaign-a", "sms"))

    assert member.state is MemberState.QUEUED
    assert member.channels == ("email",)
    assert [(send.customer_id, send.channel) for send in sends] == [("c1", "email")]


def test_per_channel_cap_counts_only_its_channel() -> None:
    member, _ = run(definition(caps={"sms": {"max": 1, "days": 7}}), contact(2, "campaign-a", "email"),
                    contact(3, "campaign-a", "email"))  # fmt: skip

    assert member.channels == ("email", "sms")


def test_every_channel_capped_is_capped() -> None:
    caps = {"sms": {"max": 1, "days": 7}, "email": {"max": 2, "days": 30}}
    history = (contact(1, "campaign-a", "sms"), contact(10, "campaign-a", "email"), contact(20, "campaign-x", "email"))

    member, sends = run(definition(caps=caps), *history)

    assert member.state is MemberState.CAPPED
    assert sends == []


def test_overall_room_limits_the_number_of_channels() -> None:
    member, _ = run(definition(caps={"overall": {"max": 3, "days": 7}}), contact(1, "campaign-a"),
                    contact(2, "campaign-c", "email"))  # fmt: skip

    assert member.channels == ("email",)


def test_campaign_caps_replace_the_stack_caps() -> None:
    stack = StackRules(caps=Caps.model_validate(WEEKLY_ONE))

    capped_by_stack, _ = run(definition(), contact(1, "campaign-a"), stack=stack)
    loose, _ = run(definition(caps={"overall": {"max": 5, "days": 7}}), contact(1, "campaign-a"), stack=stack)

    assert capped_by_stack.state is MemberState.CAPPED
    assert loose.state is MemberState.QUEUED


def test_no_caps_means_no_limit() -> None:
    member, sends = run(definition(), *(contact(days, "campaign-a") for days in range(5)))

    assert member.state is MemberState.QUEUED
    assert len(sends) == 2


def test_contacts_of_a_plan_fall_on_their_release_day() -> None:
    late = NOW.replace(hour=23, minute=50)
    campaign = definition(quiet_hours={"start": "21:00", "end": "08:00"}, default_timezone="UTC")

    plan = plan_run(campaign, "run-1", [CUSTOMER], now=late)

    assert {item.day for item in contacts_of(plan, "campaign-b")} == {date(2026, 3, 11)}
