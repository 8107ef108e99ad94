"""Batches: every planned send in exactly one batch of at most 50 with one variant, cut the same way whatever the
order."""

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cadence.campaigns.plan import BATCH_LIMIT, Plan, Send

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)

sends_by_moment = st.dictionaries(
    st.integers(min_value=0, max_value=3).map(lambda hours: NOW + timedelta(hours=hours)),
    st.lists(
        st.tuples(
            st.text("abc0123456789", min_size=1, max_size=6),
            st.sampled_from(["email", "sms"]),
            st.sampled_from([None, "a", "b-2"]),
        ),
        unique_by=lambda send: send[:2],
        max_size=160,
    ),
    max_size=3,
)


def plan_of(by_moment: dict[datetime, list[tuple[str, str, str | None]]], reverse: bool = False) -> Plan:
    releases = {
        moment: [
            Send("spring", "spring@r1", customer, channel, variant)  # type: ignore[arg-type]
            for customer, channel, variant in sends
        ]
        for moment, sends in by_moment.items()
    }
    if reverse:
        releases = {moment: sends[::-1] for moment, sends in reversed(releases.items())}
    return Plan(run_id="spring@r1", releases=releases)


@given(sends_by_moment)
def test_every_send_is_in_exactly_one_batch_of_at_most_the_limit_with_one_channel_release_and_variant(
    by_moment: dict[datetime, list[tuple[str, str, str | None]]],
) -> None:
    plan = plan_of(by_moment)

    batches = plan.batches()

    placed = Counter((send.customer_id, send.channel, batch.release_at) for batch in batches for send in batch.sends)
    expected = Counter(
        (send.customer_id, send.channel, moment) for moment, sends in plan.releases.items() for send in sends
    )
    assert placed == expected
    assert all(0 < len(batch.sends) <= BATCH_LIMIT for batch in batches)
    assert all({send.channel for send in batch.sends} == {batch.channel} for batch in batches)
    # One SendBulkEmail call a batch: it takes one template, and each variant has its own.
    assert all(len({send.variant for send in batch.sends}) == 1 for batch in batches)
    assert len({batch.batch_id for batch in batches}) == len(batches)


@given(sends_by_moment)
def test_the_cut_does_not_depend_on_the_order_of_the_sends(
    by_moment: dict[datetime, list[tuple[str, str, str | None]]],
) -> None:
    assert plan_of(by_moment).batches() == plan_of(by_moment, reverse=True).batches()


def test_a_batch_message_names_the_run_once_and_each_recipient_with_what_the_run_decided() -> None:
    sends = [
        Send("spring", "spring@r1", f"c{index:03d}", "email", variant="b", offer_value="10") for index in range(120)
    ]
    plan = Plan(run_id="spring@r1", releases={NOW: [*sends, Send("spring", "spring@r1", "c000", "sms")]})

    messages = [batch.to_message() for batch in plan.batches()]

    assert [(m["channel"], m["batch_id"], len(m["sends"])) for m in messages] == [
        ("email", "email-20260310T0930Z-b-00000", 50),
        ("email", "email-20260310T0930Z-b-00001", 50),
        ("email", "email-20260310T0930Z-b-00002", 20),
        ("sms", "sms-20260310T0930Z-00000", 1),
    ]
    assert messages[0]["sends"][0] == {"customer_id": "c000", "variant": "b", "offer_value": "10"}
    assert messages[3]["sends"] == [{"customer_id": "c000"}]
    assert {m["run_id"] for m in messages} == {"spring@r1"}


def test_an_ab_campaign_gets_one_batch_per_variant_when_its_sends_would_fit_in_one() -> None:
    sends = [Send("spring", "spring@r1", f"c{index:03d}", "email", variant="ab"[index % 2]) for index in range(30)]
    plan = Plan(run_id="spring@r1", releases={NOW: sends})

    batches = plan.batches()

    assert [(batch.batch_id, len(batch.sends)) for batch in batches] == [
        ("email-20260310T0930Z-a-00000", 15),
        ("email-20260310T0930Z-b-00000", 15),
    ]
