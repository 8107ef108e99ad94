"""Small synthetic feeds shared by the model_build tests (generated once per session: tests only read them)."""

from datetime import UTC, datetime

import pytest

from model_build import synthetic
from model_build.dataset import Feeds, feeds_from_synthetic

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def small_data() -> synthetic.SyntheticData:
    return synthetic.generate(600, seed=11, as_of=AS_OF)


@pytest.fixture(scope="session")
def small_feeds(small_data: synthetic.SyntheticData) -> Feeds:
    return feeds_from_synthetic(small_data)
