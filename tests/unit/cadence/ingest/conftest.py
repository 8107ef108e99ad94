"""Fixtures of the ingest tests: moto resources as template.yaml declares them, and a runner."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cadence.ingest import service
from cadence.ingest.models import FileRef
from tests.unit.cadence.ingest.stack import IngestStack, moto_stack


@pytest.fixture(scope="module")
def _module_stack() -> Iterator[IngestStack]:
    with moto_stack() as stack:
        yield stack


@pytest.fixture
def stack(_module_stack: IngestStack) -> IngestStack:
    _module_stack.wipe()
    return _module_stack


@pytest.fixture
def ingest(stack: IngestStack) -> Callable[..., dict[str, Any]]:
    """Upload `body` under `key`, ingest it as an S3 event would, and return the report written to S3."""

    def run(key: str, body: bytes | str, metadata: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
        version = stack.put(key, body, metadata)
        settings = stack.settings.model_copy(update=overrides) if overrides else stack.settings
        service.ingest_files([FileRef(stack.bucket, key, version)], settings=settings)
        return stack.report(key, version)

    return run
