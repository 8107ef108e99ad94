"""A file too large for one invocation continues in the next: nothing lost, nothing counted twice."""

import json
from collections.abc import Mapping
from typing import Any

import pytest

from cadence.errors import InvalidInputError
from cadence.ingest import service
from cadence.ingest.models import FileRef

KEY = "incoming/events/big.jsonl"


def events_file(rows: int) -> str:
    """`rows` events of three customers; every 5th line has no event_time and is rejected."""
    lines = []
    for i in range(rows):
        event = {
            "customer_id": f"c{i % 3}",
            "event_type": "visit",
            "event_time": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
        }
        if i % 5 == 4:
            del event["event_time"]
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"


class Relay:
    """Stands in for Lambda: records each continuation and runs it as the next invocation would."""

    def __init__(self, stack: Any, key: str = KEY, chunk_rows: int = 10) -> None:
        self.stack = stack
        self.key = key
        self.chunk_rows = chunk_rows
        self.events: list[Mapping[str, Any]] = []
        # No time to spare: every invocation does its one guaranteed chunk and hands the rest on.
        self.invocation = service.Invocation(time_left=lambda: 0.0, hand_off=self.events.append)

    def start(self, version: str | None) -> list[dict[str, Any]]:
        return service.ingest_files(
            [FileRef(self.stack.bucket, self.key, version)], settings=self.settings, invocation=self.invocation
        )

    def run_next(self) -> dict[str, Any]:
        event = self.events.pop(0)
        return service.continue_file(event[service.CONTINUATION], settings=self.settings, invocation=self.invocation)

    @property
    def settings(self) -> Any:
        return self.stack.settings.model_copy(update={"ingest_chunk_rows": self.chunk_rows})


@pytest.fixture
def relay(stack):
    return Relay(stack)


def test_large_file_is_split_into_parts_that_add_up(stack, relay):
    version = stack.put(KEY, events_file(35))

    first = relay.start(version)
    assert first[0]["status"] == "in_progress"
    assert stack.report(KEY)["status"] == "in_progress"
    while relay.events:
        relay.run_next()

    report = stack.report(KEY)
    assert report["status"] == "ok"
    assert [(p["part"], p["first_chunk"], p["chunks"], p["rows_read"]) for p in report["parts"]] == [
        (1, 0, 1, 10),
        (2, 1, 1, 10),
        (3, 2, 1, 10),
        (4, 3, 1, 5),
    ]
    assert (report["rows_read"], report["rows_accepted"], report["rows_rejected"]) == (35, 28, 7)
    assert report["duration_s"] == pytest.approx(sum(p["duration_s"] for p in report["parts"]), abs=0.01)
    assert sum(stack.activity(f"c{i}")["event_count"] for i in range(3)) == 28


def test_split_file_rejects_are_merged_into_one_csv(stack, relay):
    version = stack.put(KEY, events_file(35))

    relay.start(version)
    while relay.events:
        relay.run_next()

    rejected = stack.rejected(KEY)
    assert [row["line"] for row in rejected] == [str(i) for i in range(5, 36, 5)]
    assert {row["reason"] for row in rejected} == {"missing:event_time"}
    assert stack.report(KEY)["rejected_parts"] == []
    assert not [key for key in stack.keys("rejected/") if "/part-" in key]


def test_retried_continuation_counts_nothing_twice(stack, relay):
    version = stack.put(KEY, events_file(35))
    relay.start(version)
    retried = relay.events[0]

    # Part 2 runs twice (Lambda retried it after a timeout, say); both chains go on to the end.
    relay.run_next()
    relay.events.append(retried)
    while relay.events:
        relay.run_next()

    assert stack.report(KEY)["rows_read"] == 35
    assert sum(stack.activity(f"c{i}")["event_count"] for i in range(3)) == 28


def test_small_file_finishes_in_one_invocation_even_without_time_to_spare(stack, relay):
    version = stack.put(KEY, events_file(6))

    summaries = relay.start(version)

    assert summaries[0]["status"] == "ok"
    assert relay.events == []
    assert len(stack.report(KEY)["parts"]) == 1


def test_malformed_continuation_is_refused(stack):
    with pytest.raises(InvalidInputError):
        service.continue_file({"file": {"bucket": stack.bucket}}, settings=stack.settings)


def test_a_duplicated_event_for_a_split_file_leaves_one_finished_report(stack, relay):
    # given the same S3 event delivered twice: two runs of one file
    version = stack.put(KEY, events_file(35))
    relay.start(version)
    relay.start(version)
    first_chain, second_chain = relay.events
    relay.events[:] = [first_chain]

    def first_chain_finishes_meanwhile() -> float:
        while relay.events:
            relay.run_next()
        return 0.0

    # when the first run finishes while a part of the second is under way
    late: list = []
    second = service.Invocation(time_left=first_chain_finishes_meanwhile, hand_off=late.append)
    service.continue_file(second_chain[service.CONTINUATION], settings=relay.settings, invocation=second)

    # then the finished report stands, rejects are whole, no part file is left, nothing counts twice
    assert late == []
    report = stack.report(KEY)
    assert (report["status"], report["rows_read"]) == ("ok", 35)
    assert [row["line"] for row in stack.rejected(KEY)] == [str(i) for i in range(5, 36, 5)]
    assert not [key for key in stack.keys("rejected/") if "/part-" in key]
    assert sum(stack.activity(f"c{i}")["event_count"] for i in range(3)) == 28


def test_split_file_leaves_no_hand_off_state_behind(stack, relay):
    version = stack.put(KEY, events_file(35))

    relay.start(version)
    assert stack.keys("ingest-state/")
    while relay.events:
        relay.run_next()

    assert stack.keys("ingest-state/") == []


def test_order_repeated_on_both_sides_of_a_continuation_counts_once(stack):
    # given 20 order rows holding 19 orders: o3 comes again in the second chunk
    key = "incoming/orders/repeat.csv"
    ids = [f"o{i}" for i in range(19)]
    ids.insert(15, "o3")
    body = "order_id,customer_id,order_date,amount\n" + "".join(f"{oid},c1,2024-01-01,1\n" for oid in ids)

    # when one invocation reads it whole, and when it is split after every chunk
    whole = stack.put(key, body)
    service.ingest_files(
        [FileRef(stack.bucket, key, whole)], settings=stack.settings.model_copy(update={"ingest_chunk_rows": 10})
    )
    counted_whole = stack.activity("c1")["order_count"]
    stack.wipe()
    relay = Relay(stack, key)
    relay.start(stack.put(key, body))
    while relay.events:
        relay.run_next()

    # then the totals do not depend on timing
    assert counted_whole == stack.activity("c1")["order_count"] == 19


def test_two_versions_of_one_key_running_at_once_keep_their_own_outputs(stack):
    # given version A of a file, and version B uploaded while A is still running
    first, second = Relay(stack), Relay(stack)
    version_a = stack.put(KEY, events_file(35))
    first.start(version_a)
    version_b = stack.put(KEY, events_file(25).replace(': "c', ': "b'))
    second.start(version_b)

    # when their parts interleave
    while first.events or second.events:
        for relay in (first, second):
            if relay.events:
                relay.run_next()

    # then each version finishes with its own report and its own rejected rows
    report_a, report_b = stack.report(KEY, version_a), stack.report(KEY, version_b)
    assert (report_a["status"], report_a["rows_read"], report_a["rows_rejected"]) == ("ok", 35, 7)
    assert (report_b["status"], report_b["rows_read"], report_b["rows_rejected"]) == ("ok", 25, 5)
    assert {row["customer_id"] for row in stack.rejected(KEY, version_a)} <= {"c0", "c1", "c2"}
    assert {row["customer_id"] for row in stack.rejected(KEY, version_b)} <= {"b0", "b1", "b2"}
    assert len(stack.rejected(KEY, version_a)) == 7
    assert len(stack.rejected(KEY, version_b)) == 5
    assert sum(stack.activity(f"b{i}")["event_count"] for i in range(3)) == 20


def test_continuation_event_stays_far_below_the_async_payload_limit(stack):
    # given JSON Lines whose every line brings a new unknown key, so the report grows with the file
    key = "incoming/events/wide.jsonl"
    lines = [
        json.dumps(
            {"customer_id": "c1", "event_type": "visit", "event_time": "2024-01-01T00:00:00Z", f"{'k' * 90}{i}": 1}
        )
        for i in range(6_000)
    ]
    relay = Relay(stack, key, chunk_rows=3_000)

    relay.start(stack.put(key, "\n".join(lines) + "\n"))
    sizes = [len(json.dumps(event)) for event in relay.events]
    while relay.events:
        relay.run_next()

    # Lambda refuses asynchronous payloads over 256 KB, which would leave the file in_progress for good.
    assert sizes and max(sizes) < 256 * 1024
    report = stack.report(key)
    assert (report["status"], report["rows_accepted"]) == ("ok", 6_000)
    assert (len(report["ignored_columns"]), report["ignored_columns_truncated"]) == (100, True)
