"""Two brands' stacks side by side in one account (one local endpoint): no shared names, no shared customers."""

import time
import uuid
from collections.abc import Callable
from typing import Any

from cadence.campaigns import CampaignDefinition
from infra import campaigns
from infra.local_stack import DEFAULT_WORK_DIR, LocalStack

# Resources the template names itself (the rest get CloudFormation's generated, stack-unique names).
NAMED = ("DataBucket", "IngestFunction", "CampaignFunction", "CampaignScheduleGroup", "CampaignSchedulerRole")


def wait_for(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.1)
    return result


def put_scored_customers(stack: LocalStack, prefix: str, count: int) -> set[str]:
    """Reachable, scored customers written straight into one brand's tables; returns their email addresses."""
    dynamodb = stack.client("dynamodb")
    addresses = set()
    for i in range(count):
        customer_id = f"{prefix}-{i:02d}"
        email = f"{customer_id.lower()}@example.com"
        addresses.add(email)
        profile = {
            "customer_id": {"S": customer_id},
            "email": {"S": email},
            "first_name": {"S": prefix},
            "consent_email": {"BOOL": True},
            "consent_sms": {"BOOL": False},
        }
        dynamodb.put_item(TableName=stack.outputs["ProfilesTableName"], Item=profile)
        score = {"customer_id": {"S": customer_id}, "score": {"N": "0.9"}, "decile": {"N": "1"}}
        dynamodb.put_item(TableName=stack.outputs["ScoresTableName"], Item=score)
    return addresses


def fanned_out_run(stack: LocalStack, campaign_id: str) -> dict[str, Any] | None:
    items = stack.client("dynamodb").query(
        TableName=stack.outputs["CampaignsTableName"],
        KeyConditionExpression="campaign_id = :c AND begins_with(record_key, :run)",
        ExpressionAttributeValues={":c": {"S": campaign_id}, ":run": {"S": "RUN#"}},
    )["Items"]
    return next((item for item in items if item["status"]["S"] == "FANNED_OUT"), None)


def ledger_customers(stack: LocalStack, run_id: str) -> set[str]:
    items = stack.client("dynamodb").query(
        TableName=stack.outputs["SendsTableName"],
        KeyConditionExpression="customer_id = :run",
        ExpressionAttributeValues={":run": {"S": f"BATCH#{run_id}"}},
    )["Items"]
    return {customer_id for item in items for customer_id in item["recipients"]["M"]}


def test_two_brands_stacks_share_no_name_and_a_campaign_reads_only_its_own_brands_customers(
    local_stack: LocalStack,
) -> None:
    tag = uuid.uuid4().hex[:6]
    acme_parameters = {"Brand": "acme", "SenderEmail": "hello@acme.example", "SmsSenderId": "ACME"}
    with LocalStack(
        port=0,
        beside=local_stack,
        stack_name="acme-local",
        parameters=acme_parameters,
        work_dir=DEFAULT_WORK_DIR / "pytest-acme",
    ) as acme:
        # both deployed into one account: every name the template gives is the brand's own
        for logical_id in NAMED:
            assert local_stack.physical_id(logical_id) != acme.physical_id(logical_id)
        assert acme.outputs["DataBucketName"].startswith("acme-local-data-")
        assert local_stack.outputs["DashboardName"] != acme.outputs["DashboardName"]

        ours = put_scored_customers(local_stack, f"OURS{tag}", 4)
        theirs = put_scored_customers(acme, f"ACME{tag}", 3)
        # the same campaign id in both brands: each is its own campaign
        definition = CampaignDefinition.model_validate(
            {
                "campaign_id": f"brands-{tag}",
                "name": "two brands",
                "channels": ["email"],
                "audience": {"max_decile": 1},
                "holdout_percent": 0,  # every member is sent to, so the ledger names the whole audience
                "email": {"subject": "Hi {first_name}", "body": "Hello"},
            }
        )
        emails_before = len(local_stack.sent_emails())

        for stack in (acme, local_stack):
            campaigns.deploy(definition, stack.outputs)
            campaigns.run_now(definition.campaign_id, stack.outputs)
        acme_run = wait_for(lambda: fanned_out_run(acme, definition.campaign_id))
        our_run = wait_for(lambda: fanned_out_run(local_stack, definition.campaign_id))
        for stack in (acme, local_stack):
            stack.wait_idle(timeout=120)

        acme_customers = ledger_customers(acme, acme_run["run_id"]["S"])
        our_customers = ledger_customers(local_stack, our_run["run_id"]["S"])
        sent = local_stack.sent_emails()[emails_before:]  # one SES: the account's

    our_ids = {address.split("@")[0].upper() for address in ours}
    acme_ids = {address.split("@")[0].upper() for address in theirs}
    # each run planned and sent to its own brand's customers only
    assert {customer_id.upper() for customer_id in acme_customers} == acme_ids
    assert {customer_id.upper() for customer_id in our_customers} == our_ids
    by_sender: dict[str, set[str]] = {}
    for email in sent:
        by_sender.setdefault(email["source"], set()).update(email["destinations"]["ToAddresses"])
    assert by_sender == {"hello@acme.example": theirs, "marketing@example.com": ours}
