"""Integration tests run against one local stack per test session (``infra.local_stack``, real template.yaml).

The stack listens on a free port (never 4566, so a running ``make local`` is left alone) and its workers log to
build/local-stack/pytest/logs/<LogicalId>.log. While it runs, AWS_ENDPOINT_URL points at it, so project code under
test that builds its own boto3 clients (the campaign CLI, the DAL) reaches it with no endpoint code. It is stopped,
and AWS_ENDPOINT_URL restored, right after the last integration test, so the unit tests that follow (moto's mock_aws
resets moto's in-process state) never run beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local_stack import DEFAULT_WORK_DIR, LocalStack

INTEGRATION_DIR = Path(__file__).resolve().parent
SEGMENT_SIZE = 25
_running: list[tuple[LocalStack, str | None]] = []  # (stack, AWS_ENDPOINT_URL before it started)
_last_integration_test: list[str] = []


def is_integration(item: pytest.Item) -> bool:
    """Whether a collected test lives under tests/integration."""
    return Path(str(item.fspath)).resolve().is_relative_to(INTEGRATION_DIR)


def pytest_configure(config: pytest.Config) -> None:
    # moto warns each time it re-reads a resource type its CloudFormation lacks; the local stack creates those
    # through the service APIs and logs what it did (infra.sam_deploy), so the warning is noise here.
    config.addinivalue_line("filterwarnings", "ignore:Tried to parse .* not supported by moto:UserWarning")


@pytest.hookimpl(trylast=True)  # after any reordering, so "last" means last to run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    integration = [item for item in items if is_integration(item)]
    for item in integration:
        item.add_marker(pytest.mark.integration)
    _last_integration_test[:] = [integration[-1].nodeid] if integration else []


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if [item.nodeid] == _last_integration_test:
        _stop_all()


def _stop_all() -> None:
    while _running:
        stack, endpoint_before = _running.pop()
        stack.close()
        if endpoint_before is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = endpoint_before


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The real template deployed on a free port with Stage=local; shared by every integration test."""
    # Campaign runs over more than SEGMENT_SIZE scored customers are split across invocations: the session's few
    # hundred customers exercise the split as a million would.
    stack = LocalStack(
        port=0, work_dir=DEFAULT_WORK_DIR / "pytest", parameters={"AudienceSegmentSize": str(SEGMENT_SIZE)}
    ).start()
    _running.append((stack, os.environ.get("AWS_ENDPOINT_URL")))
    os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
    try:
        yield stack
    finally:
        _stop_all()
