"""One address, one message; and every audience member accounted for in exactly one state."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.campaigns.definition import CampaignDefinition
from cadence.campaigns.plan import Candidate, Contact, ContactHistory, MemberState, plan_run

# The run's coupon secret (in the stack it comes from Secrets Manager).
KEY = "key-for-tests"
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
SENDING = {MemberState.QUEUED, MemberState.DEFERRED}


def definition(**extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {"campaign_id": "spring", "name": "Spring", "channels": ["sms"], "sms": {"text": "Hi"}, "holdout_percent": 0,
         "email": {"subject": "s", "body": "b"}, **extra}
    )  # fmt: skip


def person(customer_id: str, score: float | None, **profile: object) -> Candidate:
    return Candidate({"customer_id": customer_id, "consent_sms": True, "consent_email": True, **profile}, None,
                     {"decile": 1, "score": score})  # fmt: skip


# ---------- one address, one message ----------


def test_customers_sharing_a_phone_get_one_message_kept_by_the_highest_score() -> None:
    people = [person("low", 0.2, phone="+8613800000001"), person("high", 0.9, phone="+8613800000001")]

    for order in (people, people[::-1]):
        plan = plan_run(definition(), "r", order, now=NOW)
        states = {member.customer_id: (member.state, member.duplicate_of) for member in plan.members}
        assert states == {"high": (MemberState.QUEUED, None), "low": (MemberState.DUPLICATE_ADDRESS, "high")}
        assert [send.customer_id for send in plan.sends()] == ["high"]
        assert plan.counters()["state_duplicate_address"] == 1


def test_shared_address_ties_go_to_the_lowest_id_and_compare_normalised() -> None:
    people = [person("b", 0.5, email="Same@Example.com"), person("a", 0.5, email=" same@example.com ")]

    plan = plan_run(definition(channels=["email"]), "r", people, now=NOW)

    states = {member.customer_id: (member.state, member.duplicate_of) for member in plan.members}
    assert states == {"a": (MemberState.QUEUED, None), "b": (MemberState.DUPLICATE_ADDRESS, "a")}


def test_a_shared_address_drops_only_that_channel() -> None:
    people = [
        person("kept", 0.9, phone="+8613800000001", email="kept@example.com"),
        person("other", 0.1, phone="+8613800000001", email="other@example.com"),
    ]

    plan = plan_run(definition(channels=["email", "sms"]), "r", people, now=NOW)

    channels = {member.customer_id: (member.state, member.channels) for member in plan.members}
    assert channels == {"kept": (MemberState.QUEUED, ("email", "sms")), "other": (MemberState.QUEUED, ("email",))}
    assert sorted((send.customer_id, send.channel) for send in plan.sends()) == [
        ("kept", "email"), ("kept", "sms"), ("other", "email"),
    ]  # fmt: skip


def test_unscored_customer_ranks_below_a_scored_one_for_a_shared_address() -> None:
    people = [person("unscored", None, phone="+8613800000001"), person("scored", 0.01, phone="+8613800000001")]

    plan = plan_run(definition(audience={"field": "order_count", "gte": 0}), "r", people, now=NOW)

    assert {m.customer_id: m.duplicate_of for m in plan.members} == {"scored": None, "unscored": "scored"}


def test_unreachable_members_are_no_address_or_no_consent() -> None:
    people = [
        person("nothing", 0.5),
        Candidate({"customer_id": "refused", "phone": "+8613800000002", "consent_sms": False}, None, {"decile": 1}),
        Candidate({"customer_id": "text-consent", "phone": "+8613800000003", "consent_sms": "true"}, None,
                  {"decile": 1}),
        person("email-only", 0.5, email="e@example.com"),  # the campaign sends SMS only
    ]  # fmt: skip

    plan = plan_run(definition(), "r", people, now=NOW)

    assert {member.customer_id: member.state for member in plan.members} == {
        "nothing": MemberState.NO_ADDRESS,
        "refused": MemberState.NO_CONSENT,
        "text-consent": MemberState.NO_CONSENT,
        "email-only": MemberState.NO_ADDRESS,
    }
    assert plan.sends() == []


# ---------- every member accounted for ----------

PHONES = [None, "+8613800000001", "+8613800000002", "+447700900001", "+14155550100"]
EMAILS = [None, "a@example.com", "A@example.com", "b@example.com"]


@st.composite
def runs(draw: st.DrawFn) -> tuple[CampaignDefinition, list[Candidate], ContactHistory]:
    variants = draw(st.sampled_from([[], [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]]))
    campaign = definition(
        channels=draw(st.sampled_from([["sms"], ["email"], ["email", "sms"]])),
        audience=draw(st.sampled_from([{"field": "decile", "lte": 5}, {"field": "order_count", "gte": 0},
                                       {"any": [{"field": "score", "gte": 0.5}, {"field": "country", "eq": "CN"}]}])),
        holdout_percent=draw(st.sampled_from([0, 10, 50])),
        variants=variants,
        reentry=draw(st.sampled_from([{}, {"days": 7}])),
        caps=draw(st.sampled_from([None, {"overall": {"max": 1, "days": 7}}, {"sms": {"max": 1, "days": 3}}])),
        quiet_hours=draw(st.sampled_from([None, {"start": "21:00", "end": "08:00"}, {"start": "09:00",
                                                                                       "end": "10:00"}])),
        send_at_local=draw(st.sampled_from([None, "10:00", "22:30"])),
        offer=draw(st.sampled_from([None, {"value": 5}, {"by": "decile", "tiers": [{"max": 2, "value": 5}],
                                                         "otherwise": 1}])),
    )  # fmt: skip
    count = draw(st.integers(min_value=0, max_value=30))
    people = []
    for index in range(count):
        profile = {
            "customer_id": f"c{index}",
            "phone": draw(st.sampled_from(PHONES)),
            "email": draw(st.sampled_from(EMAILS)),
            "consent_sms": draw(st.booleans()),
            "consent_email": draw(st.booleans()),
            "country": draw(st.sampled_from([None, "CN", "GB", "US"])),
        }
        score = draw(st.one_of(st.none(), st.fixed_dictionaries(
            {"decile": st.integers(min_value=1, max_value=10), "score": st.floats(0, 1)})))  # fmt: skip
        people.append(Candidate(profile, None, score))
    contacts = [
        Contact(f"c{draw(st.integers(0, max(count - 1, 0)))}", NOW.date() - timedelta(days=draw(st.integers(0, 10))),
                draw(st.sampled_from(["email", "sms"])), draw(st.sampled_from(["spring", "other"])))
        for _ in range(draw(st.integers(min_value=0, max_value=10)))
    ]  # fmt: skip
    return campaign, people, ContactHistory(contacts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)))
def test_every_member_is_in_exactly_one_state_and_sends_match(
    run: tuple[CampaignDefinition, list[Candidate], ContactHistory], now: datetime
) -> None:
    campaign, people, history = run

    plan = plan_run(campaign, "r", people, now=now, history=history, secret=KEY)

    counters = plan.counters()
    ids = [member.customer_id for member in plan.members]
    assert len(ids) == len(set(ids))
    assert sum(counters[f"state_{state.value}"] for state in MemberState) == counters["audience"] == len(ids)
    assert counters["considered"] == len(people) >= counters["audience"]
    assert all(isinstance(member.state, MemberState) for member in plan.members)
    sending = [member for member in plan.members if member.state in SENDING]
    sends = plan.sends()
    assert len(sends) == sum(len(member.channels) for member in sending)
    assert sum(counters[f"sends_{channel}"] for channel in ("email", "sms")) == len(sends)
    assert {(send.customer_id, send.channel) for send in sends} == {
        (member.customer_id, channel) for member in sending for channel in member.channels
    }
    for member in plan.members:
        if member.state in SENDING:
            assert member.channels
            assert member.release_at is not None
            assert member.release_at >= now.replace(second=0, microsecond=0)
        else:
            assert member.channels == ()
        assert (member.duplicate_of is not None) is (member.state is MemberState.DUPLICATE_ADDRESS)
    for moment, batch in plan.releases.items():
        assert all(next(m for m in sending if m.customer_id == send.customer_id).release_at == moment for send in batch)
    # No address gets a channel's message twice.
    addresses = [(send.channel, _address(people, send.customer_id, send.channel)) for send in sends]
    assert len(addresses) == len(set(addresses))
    if campaign.variants:
        assert all(member.variant in {"a", "b"} for member in plan.members)


def _address(people: list[Candidate], customer_id: str, channel: str) -> str:
    profile = next(candidate.profile for candidate in people if candidate.customer_id == customer_id)
    return str(profile["email" if channel == "email" else "phone"]).strip().lower()


# ---------- quiet periods ----------


def test_a_customer_in_a_quiet_period_is_left_out_until_it_ends_and_counted() -> None:
    people = [
        person("quiet", 0.9, phone="+8613800000001", quiet_until=(NOW + timedelta(days=3)).isoformat()),
        person("over", 0.8, phone="+8613800000002", quiet_until=(NOW - timedelta(minutes=1)).isoformat()),
        person("never", 0.7, phone="+8613800000003"),
    ]

    plan = plan_run(definition(), "r", people, now=NOW)
    later = plan_run(definition(), "r2", people, now=NOW + timedelta(days=3, seconds=1))

    assert {m.customer_id: m.state for m in plan.members} == {
        "quiet": MemberState.QUIET_PERIOD,
        "over": MemberState.QUEUED,
        "never": MemberState.QUEUED,
    }
    assert plan.counters()["state_quiet_period"] == 1
    assert sorted(send.customer_id for send in later.sends()) == ["never", "over", "quiet"]
