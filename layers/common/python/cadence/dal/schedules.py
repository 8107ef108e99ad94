"""EventBridge Scheduler: each campaign's own schedule, and one-time schedules invoking the campaign function."""

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


def put_recurring(
    *,
    group: str,
    name: str,
    expression: str,
    timezone: str,
    state: str,
    target_arn: str,
    role_arn: str,
    payload: str,
    start: datetime | None = None,
    end: datetime | None = None,
    dead_letter_arn: str | None = None,
) -> None:
    """Create the schedule, or replace the one of that name, with `state` ENABLED or DISABLED.

    `payload` is the target's Input, which may carry Scheduler's context attributes (<aws.scheduler.scheduled-time>).
    The schedule deletes itself after its last firing (an at() expression, or the firing before `end`).

    Raises:
        TransientError / PermanentError: Scheduler refused the schedule.
    """
    target: dict[str, Any] = {
        "Arn": target_arn,
        "RoleArn": role_arn,
        "Input": payload,
        "RetryPolicy": {"MaximumRetryAttempts": 3},
    }
    if dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": dead_letter_arn}
    request: dict[str, Any] = {
        "Name": name,
        "GroupName": group,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": state,
        "ActionAfterCompletion": "DELETE",
        "Target": target,
        **({"StartDate": start} if start else {}),
        **({"EndDate": end} if end else {}),
    }
    scheduler = clients.client("scheduler")
    try:
        scheduler.create_schedule(**request)
    except ClientError as exc:
        if clients.error_code(exc) != "ConflictException":
            raise clients.translate(exc, "schedules.put_recurring") from exc
        try:
            scheduler.update_schedule(**request)  # an update replaces every setting, as the request gives them
        except ClientError as update_exc:
            raise clients.translate(update_exc, "schedules.put_recurring") from update_exc


def delete(*, group: str, name: str) -> bool:
    """Delete the schedule; returns False when there was none.

    Raises:
        TransientError / PermanentError: Scheduler refused.
    """
    try:
        clients.client("scheduler").delete_schedule(Name=name, GroupName=group)
    except ClientError as exc:
        if clients.error_code(exc) == "ResourceNotFoundException":
            return False
        raise clients.translate(exc, "schedules.delete") from exc
    return True
