"""The dispatch chaos run (issue 10's "done when"): one email campaign to N recipients on a local stack while SES
throttles beyond its rate, a share of SES calls fails transiently and the dispatch workers are killed at random
moments mid-batch; then the ledger, the SES shim's messages and the run's counters are checked against each other.

    python -m infra.bench --only chaos     # CHAOS_BENCH_RECIPIENTS (20,000), CHAOS_BENCH_RATE (200/s)

tests/integration/test_dispatch_chaos.py runs a scaled-down run (same faults) in ``make test``.

The faults:
- the shim enforces ``rate`` messages/s and reports twice that as the account's MaxSendRate (other senders share the
  quota), so the workers' pacers overshoot and SES throttles destinations (``ACCOUNT_THROTTLED``);
- ``failure_share`` of SendBulkEmail calls fail whole with a 500 (``CADENCE_SES_SHIM_FAILURE_SHARE``);
- ``infra.runtime.WorkerFaults``: each AWS call of a dispatch worker is followed, with probability ``kill_share``, by
  the worker's death (``os._exit``); the router sees ``Runtime.ExitError`` and deletes none of the invocation's
  messages, so SQS redelivers them after the visibility timeout.

To keep the run short, the chaos stack's dispatch lease is the shortest its settings allow (``LEASE_SECONDS``, the
send timeouts cut to 1 s + 2 s), its queue's visibility timeout is a few seconds (one local poller per queue, so no
message is received twice while its invocation runs) and its maxReceiveCount is high: the faults are far denser than
production's, and a batch whose deliveries all fail is the dead-letter path, tested on its own.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from infra.local_stack import LocalStack

SEND_CONNECT_SECONDS: Final = 1.0
SEND_READ_SECONDS: Final = 2.0
# One send (1 s + 2 s) plus settling it within the ledger's budget (3 attempts of 1 s + 2 s, 1 s + 2 s backoff).
LEASE_SECONDS: Final = 15.0
VISIBILITY_SECONDS: Final = 5
MAX_RECEIVES: Final = 100
# In-doubt sends are the only ones allowed to be unmatched; the ledger must name every recipient once.
FINAL: Final = frozenset({"SENT", "REJECTED", "SUPPRESSED", "FAILED", "IN_DOUBT", "CANCELLED"})


def dispatch_overrides() -> dict[str, dict[str, str]]:
    """The chaos stack's dispatch variables: the shortest lease DispatchSettings accepts, as many receives as the
    queue allows."""
    return {
        "DispatchFunction": {
            "SEND_CONNECT_TIMEOUT_SECONDS": str(SEND_CONNECT_SECONDS),
            "SEND_READ_TIMEOUT_SECONDS": str(SEND_READ_SECONDS),
            "DISPATCH_RESERVE_SECONDS": str(LEASE_SECONDS),
            "DISPATCH_LEASE_SECONDS": str(LEASE_SECONDS),
            "DISPATCH_MAX_RECEIVE_COUNT": str(MAX_RECEIVES),
        }
    }


@dataclass
class ChaosReport:
    """What a chaos run did and what the checks found; ``problems`` is empty when every check held."""

    recipients: int
    run_id: str = ""
    run_status: str = ""
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    final_counters: dict[str, int] = field(default_factory=dict)
    shim_messages: int = 0
    shim_calls: int = 0
    shim_failed_calls: int = 0
    shim_throttled: int = 0
    worker_kills: int = 0
    dispatch_invocations: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "run_status": self.run_status,
            "seconds": round(self.seconds, 1),
            "outcomes": dict(self.outcomes),
            "final_counters": self.final_counters,
            "shim_messages": self.shim_messages,
            "shim_calls": self.shim_calls,
            "shim_failed_calls": self.shim_failed_calls,
            "shim_throttled_destinations": self.shim_throttled,
            "worker_kills": self.worker_kills,
            "dispatch_invocations": self.dispatch_invocations,
            "problems": self.problems,
        }


def _seed_customers(stack: LocalStack, prefix: str, count: int) -> dict[str, str]:
    """Consenting, scored customers written straight into the stack's tables; returns address -> customer id."""
    dynamodb = stack.client("dynamodb")
    addresses = {}
    writes: dict[str, list[dict[str, Any]]] = {"ProfilesTableName": [], "ScoresTableName": []}
    for index in range(count):
        customer_id = f"{prefix}-{index:06d}"
        email = f"{customer_id.lower()}@example.com"
        addresses[email] = customer_id
        profile = {
            "customer_id": {"S": customer_id},
            "email": {"S": email},
            "first_name": {"S": "Ada"},
            "consent_email": {"BOOL": True},
            "consent_sms": {"BOOL": False},
        }
        writes["ProfilesTableName"].append(profile)
        writes["ScoresTableName"].append(
            {"customer_id": {"S": customer_id}, "score": {"N": "0.9"}, "decile": {"N": "1"}}
        )
    for output, items in writes.items():
        table = stack.outputs[output]
        for start in range(0, len(items), 25):
            pending = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return addresses


def _runs(stack: LocalStack, campaign_id: str) -> list[dict[str, Any]]:
    return stack.client("dynamodb").query(
        TableName=stack.outputs["CampaignsTableName"],
        KeyConditionExpression="campaign_id = :c AND begins_with(record_key, :run)",
        ExpressionAttributeValues={":c": {"S": campaign_id}, ":run": {"S": "RUN#"}},
    )["Items"]


def _ledger(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - heavy imports stay out of spawned workers

    dynamodb, items, arguments = stack.client("dynamodb"), [], {}
    while True:
        page = dynamodb.query(
            TableName=stack.outputs["SendsTableName"],
            KeyConditionExpression="customer_id = :run",
            ExpressionAttributeValues={":run": {"S": f"BATCH#{run_id}"}},
            ConsistentRead=True,
            **arguments,
        )
        deserializer = TypeDeserializer()
        items += [{key: deserializer.deserialize(value) for key, value in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        arguments = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def run_chaos(
    stack: LocalStack,
    *,
    recipients: int,
    rate: float,
    failure_share: float = 0.10,
    seed: int = 10,
    timeout: float = 600.0,
) -> ChaosReport:
    """Send one campaign to `recipients` new customers under the faults (worker kills come from the stack's
    ``worker_faults``) and check the outcome; the shim is reset to no faults afterwards."""
    from cadence.campaigns import CampaignDefinition  # noqa: PLC0415
    from infra import campaigns  # noqa: PLC0415

    report = ChaosReport(recipients)
    tag = uuid.uuid4().hex[:6]
    sqs = stack.client("sqs")
    sqs.set_queue_attributes(
        QueueUrl=stack.outputs["DispatchQueueUrl"],
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": sqs.get_queue_attributes(
                        QueueUrl=stack.outputs["DispatchDeadLetterQueueUrl"], AttributeNames=["QueueArn"]
                    )["Attributes"]["QueueArn"],
                    "maxReceiveCount": MAX_RECEIVES,
                }
            ),
        },
    )
    addresses = _seed_customers(stack, f"CH{tag}", recipients)
    definition = CampaignDefinition.model_validate(
        {
            "campaign_id": f"chaos-{tag}",
            "name": "chaos",
            "channels": ["email"],
            "audience": {"max_decile": 1},
            "holdout_percent": 0,
            "email": {"subject": "Hi {first_name}", "body": "Hello"},
        }
    )
    shim = stack.ses_shim
    shim.configure(max_send_rate=rate, failure_share=failure_share, seed=seed, account_rate=2 * rate)
    kills_before = sum(r.error_type == "Runtime.ExitError" for r in stack.invocations("DispatchFunction"))
    invocations_before = len(stack.invocations("DispatchFunction"))
    started = time.monotonic()
    try:
        campaigns.deploy(definition, stack.outputs)
        campaigns.run_now(definition.campaign_id, stack.outputs)
        deadline = started + timeout
        while True:
            runs = _runs(stack, definition.campaign_id)
            if runs and all(run["status"]["S"] == "COMPLETED" for run in runs):
                break
            if time.monotonic() > deadline:
                report.problems.append(f"the run did not complete in {timeout:g} s: {[r['status']['S'] for r in runs]}")
                break
            time.sleep(0.5)
        report.seconds = time.monotonic() - started
        try:
            stack.wait_idle(timeout=max(30.0, deadline - time.monotonic()))
        except TimeoutError as exc:  # reported with the rest of the checks, not instead of them
            report.problems.append(str(exc))
        messages = [m for m in shim.messages if definition.campaign_id in m.template]
        report.shim_calls, report.shim_failed_calls, report.shim_throttled = (
            shim.calls,
            shim.failed_calls,
            shim.throttled,
        )
    finally:
        shim.configure()
    records = stack.invocations("DispatchFunction")
    report.worker_kills = sum(r.error_type == "Runtime.ExitError" for r in records) - kills_before
    report.dispatch_invocations = len(records) - invocations_before
    report.shim_messages = len(messages)
    _check(report, runs, addresses, messages, stack)
    return report


def _check(
    report: ChaosReport, runs: list[dict[str, Any]], addresses: dict[str, str], messages: list[Any], stack: LocalStack
) -> None:
    from cadence.dal.sends_table import Outcome  # noqa: PLC0415

    if len(runs) != 1:
        report.problems.append(f"expected one run, found {len(runs)}")
        return
    run = runs[0]
    report.run_id, report.run_status = run["run_id"]["S"], run["status"]["S"]
    report.final_counters = {k: int(v["N"]) for k, v in run.get("final_counters", {}).get("M", {}).items()}
    statuses: dict[str, list[str]] = {}
    message_ids: dict[str, str | None] = {}
    for item in _ledger(stack, report.run_id):
        for customer_id, outcome in item.get("recipients", {}).items():
            statuses.setdefault(customer_id, []).append(str(outcome["s"]))
            message_ids[customer_id] = Outcome.from_attribute(outcome).message_id
    report.outcomes = Counter(status for found in statuses.values() for status in found)
    expected = set(addresses.values())
    if set(statuses) != expected:
        missing, extra = expected - set(statuses), set(statuses) - expected
        report.problems.append(f"ledger: {len(missing)} recipients missing, {len(extra)} not queued")
    if twice := [c for c, found in statuses.items() if len(found) != 1]:
        report.problems.append(f"ledger: {len(twice)} recipients in more than one batch")
    if not_final := {s for found in statuses.values() for s in found} - FINAL:
        report.problems.append(f"ledger: statuses that are not final: {sorted(not_final)}")
    # The shim's messages against the ledger: each SENT once with its message id, none to anyone else but IN_DOUBT.
    sent_to = Counter(addresses.get(m.destinations["ToAddresses"][0]) for m in messages)
    if doubled := [c for c, n in sent_to.items() if n > 1]:
        report.problems.append(f"ses: {len(doubled)} recipients got the email more than once")
    by_id = {m.id: addresses.get(m.destinations["ToAddresses"][0]) for m in messages}
    for customer_id, found in statuses.items():
        status = found[0]
        if status == "SENT" and by_id.get(message_ids.get(customer_id) or "") != customer_id:
            report.problems.append(f"ses: {customer_id} is SENT in the ledger without its message in SES")
        elif status not in {"SENT", "IN_DOUBT"} and sent_to.get(customer_id):
            report.problems.append(f"ses: {customer_id} is {status} in the ledger but SES sent it")
    counted = {k: v for k, v in report.final_counters.items() if k in {s.lower() for s in FINAL}}
    if report.run_status != "COMPLETED":
        report.problems.append(f"run is {report.run_status}, not COMPLETED")
    elif sum(counted.values()) != len(expected) or any(
        counted.get(s.lower(), 0) != report.outcomes.get(s, 0) for s in FINAL
    ):
        report.problems.append(f"final counters {report.final_counters} do not match the ledger {report.outcomes}")


def bench_chaos() -> dict[str, Any]:
    """`make bench` section "chaos": the full run (CHAOS_BENCH_RECIPIENTS, 20,000) on a fresh local stack."""
    from infra.local_stack import DEFAULT_WORK_DIR, LocalStack  # noqa: PLC0415
    from infra.runtime import WorkerFaults  # noqa: PLC0415

    recipients = int(os.environ.get("CHAOS_BENCH_RECIPIENTS", "20000"))
    rate = float(os.environ.get("CHAOS_BENCH_RATE", "200"))
    with LocalStack(
        port=0,
        work_dir=DEFAULT_WORK_DIR / "bench-chaos",
        environment_overrides=dispatch_overrides(),
        worker_faults={"DispatchFunction": WorkerFaults(kill_share=0.01, seed=10)},
    ) as stack:
        # The campaign is stored and fired through the CLI's code, which uses boto3's default session.
        os.environ.update(stack.client_environment())
        report = run_chaos(stack, recipients=recipients, rate=rate, failure_share=0.10, seed=10, timeout=1800)
    summary = {**report.summary(), "configured_rate_per_s": rate, "kill_share_per_call": 0.01, "failure_share": 0.1}
    print(f"\nchaos: {recipients} recipients at {rate:g}/s, 10% SES calls failing, workers killed")
    print(f"  {summary}")
    return summary
