"""The collector is held off only for the bulk step, however the step ends, and nested steps keep it off."""

import gc
import io
from collections.abc import Iterator

import pytest

from cadence import collector


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


@collector.paused()
def bulk_step() -> bool:
    return gc.isenabled()


def test_the_collector_is_off_during_the_step_and_on_after_it() -> None:
    assert bulk_step() is False
    assert gc.isenabled()


def test_the_collector_is_back_on_when_the_step_raises() -> None:
    with pytest.raises(ValueError, match="bad row"), collector.paused():
        raise ValueError("bad row")
    assert gc.isenabled()


def test_a_nested_step_leaves_the_collector_off_for_the_rest_of_the_outer_one() -> None:
    with collector.paused():
        assert bulk_step() is False
        assert not gc.isenabled()
    assert gc.isenabled()


def test_code_that_turned_the_collector_off_itself_keeps_it_off() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_at_most_one_collection_a_chunk_runs_while_a_csv_file_is_read() -> None:
    # The records of a chunk live until the chunk is built; a collection in between would walk them all again.
    # (One may run when the collector comes back on after a chunk.)
    from cadence.ingest.mapping import load_mapping  # noqa: PLC0415
    from cadence.ingest.readers import open_table  # noqa: PLC0415
    from cadence.ingest.schemas import CUSTOMERS  # noqa: PLC0415

    text = "customer_id,email\n" + "".join(f"C{i},user{i}@example.com\n" for i in range(30_000))
    reader = open_table(
        io.BytesIO(text.encode()),
        key="incoming/customers/x.csv",
        metadata={},
        feed=CUSTOMERS,
        mapping=load_mapping([]),
        chunk_rows=10_000,
    )
    chunks = reader.chunks()
    collections: list[int] = []
    gc.collect()

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        rows = [len(chunk.frame) for chunk in chunks]
    finally:
        gc.callbacks.remove(count)

    assert rows == [10_000, 10_000, 10_000]
    assert len(collections) <= len(rows), collections
