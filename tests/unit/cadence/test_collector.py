"""The collector is held off only for the bulk step, however the step ends, and nested steps keep it off."""

import gc
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
