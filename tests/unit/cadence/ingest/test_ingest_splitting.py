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

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.events: list[Mapping[str, Any]] = []
        # No time to spare: every invocation does its one guaranteed chunk and hands the rest on.
        self.invocation = service.Invocation(time_left=lambda: 0.0, hand_off=self.events.append)

    def start(self, version: str | None) -> list[dict[str, Any]]:
        return service.ingest_files(
            [FileRef(self.stack.bucket, KEY, version)], settings=self.settings, invocation=self.invocation
        )

    def run_next(self) -> dict[str, Any]:
        event = self.events.pop(0)
        return service.continue_file(event[service.CONTINUATION], settings=self.settings, invocation=self.invocation)

    @property
    def settings(self) -> Any:
        return self.stack.settings.model_copy(update={"ingest_chunk_rows": 10})


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
    assert not [key for key in stack.keys("rejected/") if ".part-" in key]


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
    assert not [key for key in stack.keys("rejected/") if ".part-" in key]
    assert sum(stack.activity(f"c{i}")["event_count"] for i in range(3)) == 28
