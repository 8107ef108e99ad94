"""What the CLI does to a stack: read its Outputs, store a campaign, fire it now. One implementation, also behind
`python -m infra.campaigns`, `infra/demo.py` and the integration tests.
"""

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

from cadence import campaign_control
from cadence.campaigns import CampaignDefinition
from cadence.campaigns.lifecycle import State
from cadence.config import CampaignSettings
from cadence.customer_timeline import TimelineSources
from cadence.dal import campaigns_table, identity, schedules

# CampaignSettings field -> the template.yaml Output that names it; CampaignCaps is optional (no stack caps).
_SETTINGS_OUTPUTS = {
    "profiles_table": "ProfilesTableName",
    "scores_table": "ScoresTableName",
    "campaigns_table": "CampaignsTableName",
    "sends_table": "SendsTableName",
    "activity_table": "ActivityTableName",
    "dispatch_queue_url": "DispatchQueueUrl",
    "data_bucket": "DataBucketName",
    "campaign_caps": "CampaignCaps",
    "campaign_function_arn": "CampaignFunctionArn",
    "campaign_schedule_group": "CampaignScheduleGroupName",
    "campaign_scheduler_role_arn": "CampaignSchedulerRoleArn",
    "async_failure_queue_arn": "AsyncFailureQueueArn",
    "email_template_prefix": "EmailTemplatePrefix",
    "suppression_table": "SuppressionTableName",
}
# Optional: a stack deployed from an older template lacks them (campaigns with a schedule then cannot be stored).
_OPTIONAL_OUTPUTS = {"campaign_caps", "async_failure_queue_arn", "email_template_prefix", "suppression_table"}


class StackError(Exception):
    """The stack is missing, or lacks an Output the command needs."""


def use_endpoint(endpoint_url: str | None) -> None:
    """Point boto3 (and so the cadence DAL) at another endpoint, e.g. the local stack on :4566."""
    if endpoint_url:
        # boto3 and the cadence DAL both honour AWS_ENDPOINT_URL; set before any client is built.
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url


def stack_outputs(stack_name: str) -> dict[str, str]:
    """The stack's Outputs by key.

    Raises:
        StackError: there is no such stack.
    """
    try:
        stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        raise StackError(f"stack {stack_name}: {exc.response.get('Error', {}).get('Message', 'not found')}") from exc
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def outputs_from_file(path: Path) -> dict[str, str]:
    """Outputs from a JSON object of OutputKey -> OutputValue (what the local stack logs as `outputs=`).

    Raises:
        StackError: the file does not hold such an object.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StackError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise StackError(f"{path}: expected a JSON object of OutputKey to OutputValue")
    return {str(key): str(value) for key, value in data.items()}


def output(outputs: Mapping[str, str], key: str) -> str:
    """One Output's value.

    Raises:
        StackError: the stack has no such Output.
    """
    if key not in outputs:
        raise StackError(f"the stack has no output {key} (is it deployed from this template.yaml?)")
    return outputs[key]


def campaign_settings(outputs: Mapping[str, str]) -> CampaignSettings:
    """The campaign function's settings, as the stack sets them, built from its Outputs.

    Raises:
        StackError: an Output the settings need is missing.
    """
    values = {field: output(outputs, key) for field, key in _SETTINGS_OUTPUTS.items() if field not in _OPTIONAL_OUTPUTS}
    values |= {
        field: outputs[_SETTINGS_OUTPUTS[field]] for field in _OPTIONAL_OUTPUTS if outputs.get(_SETTINGS_OUTPUTS[field])
    }
    return CampaignSettings.model_validate(values)


def load_definition(path: Path) -> CampaignDefinition:
    """Parse and validate a campaign YAML file.

    Raises:
        pydantic.ValidationError: the file is not a valid campaign.
    """
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return CampaignDefinition.model_validate(data)


def deploy(definition: CampaignDefinition, outputs: Mapping[str, str]) -> State:
    """Store the validated definition and its own schedule; returns the campaign's state.

    Raises:
        IllegalTransitionError: the campaign is running, completed or cancelled.
        InvalidInputError: its schedule has passed.
    """
    return campaign_control.store(definition, campaign_settings(outputs), stored_by=identity.caller_arn())


def history(campaign_id: str, outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every stored version of the campaign's definition, oldest first, with who stored it and when."""
    return campaigns_table.history(output(outputs, "CampaignsTableName"), campaign_id)


def run_now(campaign_id: str, outputs: Mapping[str, str]) -> str:
    """Create a one-time EventBridge Scheduler schedule that fires the campaign once, now; returns its name."""
    now = datetime.now(UTC).replace(microsecond=0)
    name = f"{campaign_id}-now-{now.strftime('%Y%m%dT%H%M%S')}"
    group, target, role = campaign_settings(outputs).schedule_target()
    schedules.create_one_time(
        group=group,
        name=name,
        at=now,
        target_arn=target,
        role_arn=role,
        payload={"campaign_id": campaign_id, "scheduled_time": "<aws.scheduler.scheduled-time>"},
        dead_letter_arn=outputs.get("AsyncFailureQueueArn"),
    )
    return name


def timeline_sources(outputs: Mapping[str, str]) -> TimelineSources:
    """Where a customer's timeline is read from, by the stack's Outputs.

    Raises:
        StackError: an Output is missing (a stack from before conversations has no ConversationsTableName).
    """
    return TimelineSources(
        profiles_table=output(outputs, "ProfilesTableName"),
        conversations_table=output(outputs, "ConversationsTableName"),
        sends_table=output(outputs, "SendsTableName"),
        data_bucket=output(outputs, "DataBucketName"),
    )
