"""The campaign CLI: validate a campaign YAML, store it in a deployed stack, fire it now or on its schedule.

    python -m infra.campaigns validate FILE
    python -m infra.campaigns deploy FILE --stack-name cadence-dev [--endpoint-url URL]
    python -m infra.campaigns run-now CAMPAIGN_ID --stack-name cadence-dev [--endpoint-url URL]

Everything it needs (table, schedule group, role, function) comes from the stack's Outputs.
"""

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import yaml
from pydantic import ValidationError

from cadence.campaigns import CampaignDefinition
from cadence.dal import campaigns_table


def load_definition(path: Path) -> CampaignDefinition:
    """Parse and validate a campaign YAML file."""
    return CampaignDefinition.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def stack_outputs(stack_name: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def deploy(definition: CampaignDefinition, outputs: dict[str, str]) -> None:
    """Store the validated definition; the stack's daily schedule runs it while it is active."""
    campaigns_table.put_definition(
        outputs["CampaignsTableName"], definition.campaign_id, definition.model_dump(mode="json"), definition.active
    )


def run_now(campaign_id: str, outputs: dict[str, str]) -> str:
    """Create a one-time EventBridge Scheduler schedule that fires the campaign once, now; returns its name."""
    scheduler = boto3.client("scheduler")
    now = datetime.now(UTC).replace(microsecond=0)
    name = f"{campaign_id}-now-{now.strftime('%Y%m%dT%H%M%S')}"
    scheduler.create_schedule(
        Name=name,
        GroupName=outputs["CampaignScheduleGroupName"],
        ScheduleExpression=f"at({now.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": outputs["CampaignFunctionArn"],
            "RoleArn": outputs["CampaignSchedulerRoleArn"],
            "Input": json.dumps({"campaign_id": campaign_id, "scheduled_time": "<aws.scheduler.scheduled-time>"}),
            "RetryPolicy": {"MaximumRetryAttempts": 3},
        },
    )
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.campaigns", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate_cmd = commands.add_parser("validate", help="check a campaign YAML file")
    validate_cmd.add_argument("file", type=Path)
    for name in ("deploy", "run-now"):
        command = commands.add_parser(name)
        command.add_argument("file" if name == "deploy" else "campaign_id", type=Path if name == "deploy" else str)
        command.add_argument("--stack-name", required=True)
        command.add_argument("--endpoint-url", default=None, help="e.g. http://127.0.0.1:4566 for the local stack")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            print(f"{args.file}: valid campaign {load_definition(args.file).campaign_id}")
            return 0
        if args.endpoint_url:
            # boto3 and the cadence DAL both honour AWS_ENDPOINT_URL.
            os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
        outputs = stack_outputs(args.stack_name)
        if args.command == "deploy":
            definition = load_definition(args.file)
            deploy(definition, outputs)
            print(f"stored campaign {definition.campaign_id} (active={definition.active})")
        else:
            print(f"scheduled one-time run {run_now(args.campaign_id, outputs)}")
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            print(f"invalid: {'.'.join(str(part) for part in error['loc'])}: {error['msg']}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
