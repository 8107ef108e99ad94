"""EventBridge Scheduler: one-time schedules that invoke the campaign function later (deferred sends)."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients


def create_one_time(
    *,
    group: str,
    name: str,
    at: datetime,
    target_arn: str,
    role_arn: str,
    payload: Mapping[str, Any],
    dead_letter_arn: str | None = None,
) -> bool:
    """Invoke `target_arn` with `payload` once at `at` (UTC); the schedule deletes itself after it fires.

    Returns False when a schedule of that name exists already (a re-planned run made it): nothing changes.

    Raises:
        TransientError / PermanentError: Scheduler refused the schedule.
    """
    target: dict[str, Any] = {
        "Arn": target_arn,
        "RoleArn": role_arn,
        "Input": json.dumps(payload, separators=(",", ":")),
        "RetryPolicy": {"MaximumRetryAttempts": 3},
    }
    if dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": dead_letter_arn}
    try:
        clients.client("scheduler").create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=f"at({at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConflictException":
            return False
        raise clients.translate(exc, "schedules.create_one_time") from exc
    return True
