"""Orders summed per customer over the whole file: whatever the splitting, retries and redeliveries, counted once."""

import math
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.dal import activity_table
from cadence.errors import TransientError
from cadence.ingest import service
from tests.unit.cadence.ingest.test_ingest_splitting import Relay

KEY = "incoming/orders/split.csv"

# An order: (order id, customer, day, amount in cents). A repeated id repeats its whole row, so the
# expected totals do not depend on which of its rows a chunk keeps.
orders_strategy = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 14), st.integers(1, 28), st.integers(1, 99_999)),
    min_size=1,
    max_size=45,
)


def orders_file(orders: list[tuple[int, int, int, int]]) -> str:
    rows = {}
    for order_id, customer, day, cents in orders:
        rows.setdefault(order_id, (customer, day, cents))
    # Every row of the draw, repeats included; a repeat carries what its id's first row says.
    lines = [f"o{oid},c{rows[oid][0]},2024-01-{rows[oid][1]:02d},{Decimal(rows[oid][2]) / 100}\n" for oid, *_ in orders]
    return "order_id,customer_id,order_date,amount\n" + "".join(lines)


def expected(body: str) -> dict[str, dict[str, Any]]:
    """Per customer: distinct orders, their total and first / last order date."""
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"order_count": 0, "total_spend": Decimal(0), "dates": []})
    seen = set()
    for line in body.splitlines()[1:]:
        order_id, customer, date, amount = line.split(",")
        if order_id in seen:
            continue
        seen.add(order_id)
        totals[customer]["order_count"] += 1
        totals[customer]["total_spend"] += Decimal(amount)
        totals[customer]["dates"].append(date)
    return {
        customer: {
            "order_count": t["order_count"],
            "total_spend": t["total_spend"],
            "first_order_at": min(t["dates"]),
            "last_order_at": max(t["dates"]),
        }
        for customer, t in totals.items()
    }


def stored(stack: Any, customers: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for customer in customers:
        item = stack.activity(customer) or {}
        found[customer] = {
            "order_count": item.get("order_count"),
            "total_spend": Decimal(str(item.get("total_spend"))),
            "first_order_at": str(item.get("first_order_at", ""))[:10],
            "last_order_at": str(item.get("last_order_at", ""))[:10],
        }
    return found


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=orders_strategy,
    chunk_rows=st.integers(10, 12),
    # Per run of an event: how many extra times it is delivered again (Lambda's retry, a duplicate), and
    # whether that invocation has time to spare, so runs of one event split the rest of the file differently.
    repeats=st.lists(st.integers(0, 2), min_size=8, max_size=8),
    plenty=st.lists(st.booleans(), min_size=8, max_size=8),
    # Whether that run dies half-way through its activity updates (a timeout), to be retried.
    crashes=st.lists(st.booleans(), min_size=8, max_size=8),
    redeliver=st.booleans(),
)
def test_split_retried_and_redelivered_orders_count_once(
    stack, monkeypatch, orders, chunk_rows, repeats, plenty, crashes, redeliver
):
    stack.wipe()
    crash = {"now": False}
    real = activity_table.apply_deltas

    def maybe_crash(table_name: str, deltas: Any, **kwargs: Any) -> Any:
        if crash["now"]:
            crash["now"] = False
            real(table_name, deltas[: len(deltas) // 2], **kwargs)
            raise TransientError("timed out")
        return real(table_name, deltas, **kwargs)

    monkeypatch.setattr(activity_table, "apply_deltas", maybe_crash)
    body = orders_file(orders)
    version = stack.put(KEY, body)
    # Slices of the totals are chunk_rows customers too: up to 15 customers take two continuations.
    relay = Relay(stack, KEY, chunk_rows=chunk_rows)

    relay.start(version)
    step = 0
    while relay.events:
        event = relay.events[0]
        # Only the first runs are repeated: repeating every run would never let the queue drain.
        for _ in range(repeats[step] if step < len(repeats) else 0):
            relay.events.append(event)
        spare = plenty[step % len(plenty)]
        relay.invocation = service.Invocation(
            time_left=lambda spare=spare: math.inf if spare else 0.0, hand_off=relay.events.append
        )
        crash["now"] = crashes[step % len(crashes)] and step < 3 * len(crashes)
        try:
            relay.run_next()
        except TransientError:
            relay.events.append(event)  # Lambda's async retry of the same event
        crash["now"] = False
        step += 1
    if redeliver:
        # The S3 event once more, after the file finished: and the same bytes under another key.
        relay.start(version)
        other = Relay(stack, "incoming/orders/copy.csv", chunk_rows=chunk_rows)
        other.start(stack.put("incoming/orders/copy.csv", body))
        while other.events:
            other.run_next()

    want = expected(body)
    assert stored(stack, want) == want
    assert stack.report(KEY)["rows_read"] == len(orders)


def test_a_part_that_crashed_while_applying_and_is_retried_with_less_time_counts_once(stack, monkeypatch):
    # given 40 orders of 10 customers, one in each of four chunks of 10 rows
    body = "order_id,customer_id,order_date,amount\n" + "".join(
        f"o{i},c{i % 10},2024-01-{1 + i // 10:02d},2.5\n" for i in range(40)
    )
    relay = Relay(stack, KEY, chunk_rows=10)
    relay.start(stack.put(KEY, body))
    real = activity_table.apply_deltas
    calls = {"n": 0}

    def crash_after_half(table_name: str, deltas: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            real(table_name, deltas[: len(deltas) // 2], **kwargs)
            raise TransientError("timed out")  # as if the invocation died half-way through the updates
        return real(table_name, deltas, **kwargs)

    monkeypatch.setattr(activity_table, "apply_deltas", crash_after_half)

    # when part 2 has time for the rest of the file, dies half-way through the updates, and its retry
    # has no time to spare, so the file goes on in parts 3 and 4 and is applied by another part
    part_two = relay.events[0]
    relay.invocation = service.Invocation(time_left=lambda: math.inf, hand_off=relay.events.append)
    with pytest.raises(TransientError):
        relay.run_next()
    relay.events.append(part_two)
    relay.invocation = service.Invocation(time_left=lambda: 0.0, hand_off=relay.events.append)
    while relay.events:
        relay.run_next()

    # then every customer holds its four orders once: none twice, none lost
    assert {stack.activity(f"c{i}")["order_count"] for i in range(10)} == {4}
    assert {stack.activity(f"c{i}")["total_spend"] for i in range(10)} == {10}
    assert [part["first_chunk"] for part in stack.report(KEY)["parts"]] == [0, 1, 2, 3]
