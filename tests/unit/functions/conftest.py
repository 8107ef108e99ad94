"""Fixtures the function tests share."""

from collections.abc import Iterator

import boto3
import pytest

from cadence import config


@pytest.fixture
def release_settings(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[str]:
    """The schedule group, role and function a stack gives the campaign function for deferred sends."""
    group = "cadence-test-campaigns"
    boto3.client("scheduler").create_schedule_group(Name=group)
    monkeypatch.setenv("CAMPAIGN_SCHEDULE_GROUP", group)
    monkeypatch.setenv("CAMPAIGN_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/cadence-test-campaign-scheduler")
    monkeypatch.setenv("CAMPAIGN_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:cadence-test-campaign")
    config.campaign_settings.cache_clear()
    yield group
    config.campaign_settings.cache_clear()
