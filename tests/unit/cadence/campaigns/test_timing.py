"""Local-time delivery and quiet hours: deferred members are released later, never dropped."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.campaigns.definition import CampaignDefinition, QuietHours
from cadence.campaigns.plan import Candidate, MemberState, StackRules, plan_run
from cadence.campaigns.timezones import customer_zone

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUIET = {"start": "21:00", "end": "08:00"}


def definition(**extra: object) -> CampaignDefinition:
    return CampaignDefinition.model_validate(
        {"campaign_id": "spring", "name": "Spring", "channels": ["sms"], "sms": {"text": "Hi"}, "holdout_percent": 0,
         **extra}
    )  # fmt: skip


def customer(customer_id: str = "c1", **profile: object) -> Candidate:
    return Candidate({"customer_id": customer_id, "phone": "+8613800000001", "consent_sms": True, **profile}, None,
                     {"decile": 1})  # fmt: skip


def local(hour: int, minute: int = 0, day: int = 10, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=zone)


# ---------- quiet hours ----------


@pytest.mark.parametrize(("run_at", "release"), [(local(23), local(8, day=11)), (local(21), local(8, day=11)),
                                                 (local(2, 15), local(8)), (local(7, 59), local(8))])  # fmt: skip
def test_member_inside_quiet_hours_is_deferred_to_their_end(run_at: datetime, release: datetime) -> None:
    plan = plan_run(definition(quiet_hours=QUIET), "r", [customer(timezone="Asia/Shanghai")], now=run_at)

    [member] = plan.members
    assert member.state is MemberState.DEFERRED
    assert member.release_at == release.astimezone(UTC)
    assert member.release_at.tzinfo is UTC
    assert [send.customer_id for send in plan.releases[release.astimezone(UTC)]] == ["c1"]
    assert plan.counters()["state_deferred"] == 1
    assert plan.counters()["sends_sms"] == 1


def test_run_at_23_shanghai_releases_at_midnight_utc() -> None:
    plan = plan_run(definition(quiet_hours=QUIET), "r", [customer(country="CN")], now=local(23))

    assert plan.members[0].release_at == datetime(2026, 3, 11, 0, 0, tzinfo=UTC)
    assert list(plan.releases) == [datetime(2026, 3, 11, 0, 0, tzinfo=UTC)]


@pytest.mark.parametrize("run_at", [local(8), local(12, 30), local(20, 59)])
def test_member_outside_quiet_hours_is_queued_now(run_at: datetime) -> None:
    plan = plan_run(definition(quiet_hours=QUIET), "r", [customer(timezone="Asia/Shanghai")], now=run_at)

    [member] = plan.members
    assert member.state is MemberState.QUEUED
    assert member.release_at == run_at.astimezone(UTC)
    assert list(plan.releases) == [run_at.astimezone(UTC)]


def test_quiet_hours_follow_each_customers_own_clock() -> None:
    # 15:00 UTC is 23:00 in Shanghai and 15:00 in London.
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    people = [customer("cn", country="CN"), customer("gb", country="GB", phone="+447700900001")]

    plan = plan_run(definition(quiet_hours=QUIET), "r", people, now=now)

    states = {member.customer_id: (member.state, member.release_at) for member in plan.members}
    assert states == {
        "cn": (MemberState.DEFERRED, datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),
        "gb": (MemberState.QUEUED, now),
    }
    assert len(plan.sends()) == 2


def test_stack_quiet_hours_apply_unless_the_campaign_sets_its_own() -> None:
    stack = StackRules(quiet_hours=QuietHours.model_validate(QUIET))

    by_stack = plan_run(definition(), "r", [customer(country="CN")], now=local(23), stack=stack)
    own = plan_run(definition(quiet_hours={"start": "23:30", "end": "06:00"}), "r", [customer(country="CN")],
                   now=local(23), stack=stack)  # fmt: skip
    none = plan_run(definition(), "r", [customer(country="CN")], now=local(23))

    assert by_stack.members[0].state is MemberState.DEFERRED
    assert own.members[0].state is MemberState.QUEUED
    assert none.members[0].state is MemberState.QUEUED


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours.model_validate({"start": "12:00", "end": "14:00"})

    assert [lunch.contains(time(hour)) for hour in (11, 12, 13, 14)] == [False, True, True, False]
    night = QuietHours.model_validate(QUIET)
    assert [night.contains(time(hour)) for hour in (20, 21, 0, 7, 8)] == [False, True, True, True, False]


# ---------- send_at_local ----------

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("profile", "release"),
    [
        ({"timezone": "Europe/Berlin"}, datetime(2026, 3, 11, 9, 0, tzinfo=UTC)),  # 10:30 there: tomorrow
        ({"country": "JP"}, datetime(2026, 3, 11, 1, 0, tzinfo=UTC)),
        ({"phone": "+447700900001"}, datetime(2026, 3, 10, 10, 0, tzinfo=UTC)),  # 09:30 there: today
        ({"phone": "+5511999990000"}, datetime(2026, 3, 10, 13, 0, tzinfo=UTC)),
        ({"timezone": "America/New_York", "country": "CN"}, datetime(2026, 3, 10, 14, 0, tzinfo=UTC)),  # EDT
        ({"timezone": "Mars/Olympus", "country": "CN"}, datetime(2026, 3, 11, 2, 0, tzinfo=UTC)),
        ({"country": "ZZ", "phone": "12345"}, datetime(2026, 3, 10, 13, 0, tzinfo=UTC)),  # default: Sao Paulo
    ],
)
def test_send_at_local_is_ten_in_each_customers_zone(profile: dict, release: datetime) -> None:
    campaign = definition(send_at_local="10:00", default_timezone="America/Sao_Paulo")

    plan = plan_run(campaign, "r", [customer(**profile)], now=NOW)

    [member] = plan.members
    assert (member.state, member.release_at) == (MemberState.QUEUED, release)
    assert [send.customer_id for send in plan.releases[release]] == ["c1"]


def test_send_at_local_within_the_current_minute_goes_now() -> None:
    now = datetime(2026, 3, 10, 10, 0, 40, tzinfo=UTC)

    plan = plan_run(definition(send_at_local="10:00"), "r", [customer(timezone="UTC")], now=now)

    assert plan.members[0].release_at == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def test_send_at_local_inside_quiet_hours_is_deferred_to_their_end() -> None:
    campaign = definition(send_at_local="22:00", quiet_hours=QUIET)

    plan = plan_run(campaign, "r", [customer(timezone="Asia/Shanghai")], now=local(12))

    assert plan.members[0].state is MemberState.DEFERRED
    assert plan.members[0].release_at == local(8, day=11).astimezone(UTC)


ZONES = ["Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland",
         "America/Sao_Paulo", "UTC"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=6),
    channels=st.sampled_from([["sms"], ["email", "sms"]]),
)
def test_send_at_local_is_that_wall_time_at_or_after_the_run_once_per_customer(
    now: datetime, zones: list[str], channels: list[str]
) -> None:
    campaign = definition(send_at_local="10:00", channels=channels, email={"subject": "s", "body": "b"})
    people = [
        Candidate({"customer_id": f"c{index}", "timezone": name, "phone": f"+1555000{index:04d}",
                   "email": f"c{index}@example.com", "consent_sms": True, "consent_email": True}, None, {"decile": 1})
        for index, name in enumerate(zones)
    ]  # fmt: skip

    plan = plan_run(campaign, "r", people, now=now)

    this_minute = now.replace(second=0, microsecond=0)
    for member, name in zip(plan.members, zones, strict=True):
        assert member.state is MemberState.QUEUED
        assert this_minute <= member.release_at < now + timedelta(days=1, hours=1)
        assert member.release_at.astimezone(ZoneInfo(name)).time() == time(10, 0)
    sends = [(send.customer_id, send.channel) for send in plan.sends()]
    assert len(sends) == len(set(sends)) == len(people) * len(channels)
    released = {}
    for moment, batch in plan.releases.items():
        for send in batch:
            assert released.setdefault(send.customer_id, moment) == moment  # all of a customer's sends leave together


# ---------- customer_zone ----------


@pytest.mark.parametrize(
    ("profile", "zone"),
    [
        ({"timezone": "Europe/Paris", "country": "CN", "phone": "+81312345678"}, "Europe/Paris"),
        ({"timezone": "", "country": "JP"}, "Asia/Tokyo"),
        ({"timezone": "Not/AZone", "country": "KR"}, "Asia/Seoul"),
        ({"country": "XX", "phone": "+886912345678"}, "Asia/Taipei"),  # longest calling code, not +86
        ({"phone": "+85291234567"}, "Asia/Hong_Kong"),
        ({"phone": "+8613800000001"}, "Asia/Shanghai"),
        ({"phone": "+14155550100"}, "America/New_York"),
        ({"phone": "8613800000001"}, "Europe/Lisbon"),  # no + : no prefix to read
        ({}, "Europe/Lisbon"),
    ],
)
def test_customer_zone_prefers_profile_then_country_then_phone_then_default(profile: dict, zone: str) -> None:
    assert customer_zone(profile, "Europe/Lisbon") == ZoneInfo(zone)
