"""`make bench` section "dispatch": N email recipients (default 5,000) sent through the dispatch function, paced by
the SESv2 shim's send rate, with the AWS API calls the code made counted and priced.

    python -m infra.bench --only dispatch        # DISPATCH_BENCH_RECIPIENTS sets N, DISPATCH_BENCH_RATE the rate

A moto server runs in a subprocess with the SESv2 shim installed and ``CADENCE_SES_SHIM_MAX_SEND_RATE`` set (the
account's maximum send rate, which GetAccount reports). This process stores a campaign (its SESv2 template), writes
N consenting profiles, queues N/50 batch messages on an SQS queue as a run does (SendMessageBatch, 10 a call), and
plays Lambda's SQS poller: ReceiveMessage (10), the dispatch function's handler, DeleteMessageBatch for what it
settled, until the queue is empty. One worker (DISPATCH_MAX_CONCURRENCY=1), so its pacer's share is the whole rate.

Reported:
- ``recipients_per_s`` (SENT recipients over the time from the first batch to the last) and
  ``sustained_rate_vs_configured`` (that over the shim's rate; goal >= 0.9);
- ``api_calls_per_1k_recipients_<service>``: every botocore call this process made, by service, per 1,000
  recipients (Lambda invocations: handler calls), beside ``api_calls_per_1k_recipients_minimum_<service>``, the
  fewest the batch limits allow (50 destinations a SendBulkEmail, 10 messages a SendMessageBatch, ReceiveMessage
  and DeleteMessageBatch, the campaign read, the claim as SENDING and the settle per batch, the run's counter per
  invocation: the batch carries each recipient's contact, so no profile is read);
- ``cost_usd_per_1m_recipients`` of Lambda + SQS + DynamoDB + S3 at us-east-1 on-demand prices (``PRICES``), from
  each call the workers made, priced by the measured item sizes (``_dynamodb_units``: DynamoDB bills an UpdateItem
  by the larger of the item before and after, 1 KB a write unit; a read by 4 KB, half for eventually consistent
  reads), beside the per-recipient design's (a claim and an outcome write per recipient, one SendEmail each, one
  SQS message each) and beside the consent checks before (``consent_designs``: a profile read per recipient).
  Lambda's duration is the calls' modelled latency (``LATENCY_S``) plus the handler's CPU time measured here,
  stretched by the vCPU share the function's MemorySize (template.yaml) buys.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections import Counter
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import botocore.client
from boto3.dynamodb.types import Binary

from infra.bench_audience import ROOT, aws_endpoint, moto_server
from infra.sam_deploy import create_table_like

SENDER: Final = "marketing@example.com"
BATCH: Final = 50
# us-east-1 on-demand prices, December 2026.
PRICES: Final = {
    # https://aws.amazon.com/lambda/pricing/ (arm64)
    "lambda_per_request": 0.20 / 1e6,
    "lambda_per_gb_s": 0.0000133334,
    # https://aws.amazon.com/sqs/pricing/ (standard queue, per request of up to 64 KB)
    "sqs_per_request": 0.40 / 1e6,
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the November 2024 reduction)
    "dynamodb_per_wru": 0.625 / 1e6,
    "dynamodb_per_rru": 0.125 / 1e6,
    # https://aws.amazon.com/s3/pricing/ (S3 Standard)
    "s3_per_put": 0.005 / 1000,
    "s3_per_get": 0.0004 / 1000,
}
# Modelled latency of one call from a function in the region (seconds), and the function's memory (template.yaml).
LATENCY_S: Final = {"dynamodb": 0.008, "sesv2": 0.15, "ses": 0.05, "secretsmanager": 0.03, "invocation": 0.02}
# Lambda gives a function a whole vCPU at this much memory, and a proportional share below it.
FULL_VCPU_MB: Final = 1769


def default_recipients() -> int:
    return int(os.environ.get("DISPATCH_BENCH_RECIPIENTS", "5000"))


def default_rate() -> float:
    return float(os.environ.get("DISPATCH_BENCH_RATE", "100"))


class CallCounter:
    """Every botocore API call made in this process, by (service, operation)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        # DynamoDB calls by (operation, table, what they touch): a write of a batch's outcomes, or not; the keys
        # a BatchGetItem asked for. What the units are priced from.
        self.dynamodb: Counter[tuple[str, str, str]] = Counter()
        from cadence.dal import dynamodb_wire  # noqa: PLC0415 - the handlers' package, imported with them

        self._wire = dynamodb_wire
        self._original = botocore.client.BaseClient._make_api_call
        self._original_bulk = dynamodb_wire.call

    def __enter__(self) -> CallCounter:
        counter, original = self, self._original

        def counted(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            counter.calls[service, operation] += 1
            if service == "dynamodb":
                counter._count_dynamodb(operation, params)
            return original(client, operation, params)

        def counted_bulk(operation: str, request: dict[str, Any] | str, **kwargs: Any) -> Any:
            counter.calls["dynamodb", operation] += 1
            # The low-level request (or its JSON text): RequestItems of the same shape.
            counter._count_dynamodb(operation, json.loads(request) if isinstance(request, str) else request)
            return original_bulk(operation, request, **kwargs)

        original_bulk = self._original_bulk
        botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
        self._wire.call = counted_bulk  # DynamoDB's batch calls leave through it, not through a client
        return self

    def __exit__(self, *_: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]
        self._wire.call = self._original_bulk

    def _count_dynamodb(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                self.dynamodb[operation, table, "keys"] += len(request["Keys"])
            return
        touches = "outcomes" if "recipients" in str(params.get("UpdateExpression", "")) else "small"
        self.dynamodb[operation, str(params.get("TableName", "")), touches] += 1

    def by_service(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.calls.items():
            totals[service] += count
        return totals


def shimmed_moto_server(rate: float) -> AbstractContextManager[str]:
    """moto's server in a subprocess with the SESv2 shim and its send rate; yields the endpoint URL."""
    environment = {"CADENCE_SES_SHIM_MAX_SEND_RATE": str(rate), "PYTHONPATH": str(ROOT)}
    return moto_server("from infra import sesv2_shim; sesv2_shim.install(); ", environment)


def _environment(names: dict[str, str], secret_arn: str, queue_url: str) -> dict[str, str]:
    return {
        "PROFILES_TABLE": names["ProfilesTable"],
        "CAMPAIGNS_TABLE": names["CampaignsTable"],
        "SENDS_TABLE": names["SendsTable"],
        "SUPPRESSION_TABLE": names["SuppressionTable"],
        "SCORES_TABLE": "unused",
        "ACTIVITY_TABLE": "unused",
        "DATA_BUCKET": "unused",
        "DISPATCH_QUEUE_URL": queue_url,
        "SENDER_EMAIL": SENDER,
        "SMS_SENDER_ID": "CADENCE",
        "EMAIL_TEMPLATE_PREFIX": "cadence-bench",
        "SES_CONFIGURATION_SET": "cadence-bench",
        "UNSUBSCRIBE_BASE_URL": "https://unsubscribe.example.com/unsubscribe",
        "UNSUBSCRIBE_SECRET_ARN": secret_arn,
        "DISPATCH_MAX_CONCURRENCY": "1",
        "DISPATCH_LEASE_SECONDS": "60",
        "POWERTOOLS_METRICS_NAMESPACE": "cadence-bench",
        "POWERTOOLS_SERVICE_NAME": "dispatch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
    }


def _setup(recipients: int) -> tuple[dict[str, str], str, str, list[dict[str, Any]]]:
    """Tables, queue, identity, configuration set, secret and profiles; returns (names, secret ARN, queue URL,
    profiles)."""
    from samtranslator.yaml_helper import yaml_parse  # noqa: PLC0415

    from cadence.dal import batches  # noqa: PLC0415

    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    names = {
        "ProfilesTable": "bench-profiles",
        "CampaignsTable": "bench-campaigns",
        "SendsTable": "bench-sends",
        "SuppressionTable": "bench-suppression",
    }
    dynamodb = boto3.client("dynamodb")
    for logical_id, name in names.items():
        properties = resources[logical_id]["Properties"]
        create_table_like(dynamodb, properties, name)
    boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
    boto3.client("sesv2").create_configuration_set(ConfigurationSetName="cadence-bench")
    secret = boto3.client("secretsmanager").create_secret(Name="bench-unsubscribe", SecretString=uuid.uuid4().hex)
    queue_url = boto3.client("sqs").create_queue(QueueName="bench-dispatch", Attributes={"VisibilityTimeout": "360"})[
        "QueueUrl"
    ]
    profiles = [
        {
            "customer_id": f"C{index:08d}",
            "email": f"user{index}@example.com",
            "first_name": ("Li", "Wang", "Zhang", "Liu", "Chen")[index % 5],
            "last_name": "Wei",
            "city": "Shanghai",
            "country": "CN",
            "timezone": "Asia/Shanghai",
            "consent_email": True,
            "consent_sms": False,
            "updated_at": "2026-11-01T08:00:00+00:00",
        }
        for index in range(recipients)
    ]
    batches.put_items(names["ProfilesTable"], profiles, action="bench.seed", workers=8)
    return names, str(secret["ARN"]), str(queue_url), profiles


def _queue_batches(queue_url: str, profiles: list[dict[str, Any]], run_id: str, definition: Any) -> int:
    """The run's batch messages as the planner queues them (cadence.campaigns.plan.Batch), contacts carried."""
    from cadence.campaigns.plan import Batch, Send  # noqa: PLC0415

    sqs = boto3.client("sqs")
    bodies = []
    released = datetime.now(UTC)
    for start in range(0, len(profiles), BATCH):
        sends = tuple(
            Send(definition.campaign_id, run_id, p["customer_id"], "email", contact=definition.contact(p, ("email",)))
            for p in profiles[start : start + BATCH]
        )
        batch_id = f"email-{released:%Y%m%dT%H%MZ}-{start // BATCH:05d}"
        batch = Batch(definition.campaign_id, run_id, "email", batch_id, released, sends)
        bodies.append(json.dumps(batch.to_message(), separators=(",", ":")))
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    return len(bodies)


class _Context:
    function_name = "bench-dispatch"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-dispatch"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def _poll(queue_url: str) -> tuple[int, float, float, float]:
    """Lambda's SQS poller with one worker: (invocations, first start, last end, the handler's CPU seconds per
    record once warm). The first invocation, which builds the clients (a cold start, once per container), is left
    out of the CPU figure."""
    from functions.dispatch import app  # noqa: PLC0415 - loads after the environment is set
    from infra.router import sqs_record  # noqa: PLC0415

    sqs = boto3.client("sqs")
    invocations, first, last, idle, cpu, warm_records = 0, 0.0, 0.0, 0, 0.0, 0
    while idle < 2:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            idle += 1
            continue
        idle = 0
        records = [
            sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:bench-dispatch", "us-east-1")
            for message in messages
        ]
        started, cpu_started = time.monotonic(), time.process_time()
        first = first or started
        try:
            response = app.lambda_handler({"Records": records}, _Context())
            failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except Exception:  # every record failed: all come back after their visibility timeout
            failed = {record["messageId"] for record in records}
        last = time.monotonic()
        if invocations:
            cpu += time.process_time() - cpu_started
            warm_records += len(records)
        invocations += 1
        done = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records)
            if r["messageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)
    return invocations, first, last, cpu / max(1, warm_records)


def _ledger_sizes(table: str, run_id: str) -> tuple[list[int], Counter[str]]:
    """Each batch item's size in bytes (DynamoDB's rule: names + values) and the sends by status."""
    from boto3.dynamodb.conditions import Key  # noqa: PLC0415

    sizes, statuses = [], Counter()
    arguments: dict[str, Any] = {"KeyConditionExpression": Key("customer_id").eq(f"BATCH#{run_id}")}
    resource = boto3.resource("dynamodb").Table(table)
    while True:
        page = resource.query(**arguments)
        for item in page["Items"]:
            sizes.append(_item_bytes(item))
            statuses.update(outcome["s"] for outcome in item.get("recipients", {}).values())
        if "LastEvaluatedKey" not in page:
            return sizes, statuses
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _item_bytes(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(str(key)) + _item_bytes(item) for key, item in value.items()) + 3
    if isinstance(value, list | set | tuple):
        return sum(_item_bytes(item) for item in value) + 3
    if isinstance(value, Binary):
        return len(value.value)
    return len(str(value).encode())


def _dynamodb_units(
    calls: Counter[tuple[str, str, str]], names: dict[str, str], item_bytes: dict[str, float]
) -> dict[str, float]:
    """Write and read units of the DynamoDB calls counted: a write by the larger item it leaves (1 KB a unit; a
    batch's claim and SENDING touch a small item), a read by 4 KB (strongly consistent, but half for the profiles'
    eventually consistent BatchGetItem), a Query by the bytes it returns (the suppression log's few entries: one)."""
    wru = rru = 0.0
    for (operation, table, touches), count in calls.items():
        if operation == "UpdateItem":
            size = {"outcomes": item_bytes["ledger"], "small": 1024.0}[touches]
            if table == names["CampaignsTable"]:
                size = item_bytes["run"]  # the run's counter
            wru += count * math.ceil(size / 1024)
        elif operation == "GetItem":
            size = item_bytes["campaign"] if table == names["CampaignsTable"] else item_bytes["ledger"]
            rru += count * math.ceil(size / 4096)
        elif operation == "Query":
            size = item_bytes["ledger_total"] if table == names["SendsTable"] else 0.0
            rru += count * max(1, math.ceil(size / 4096))
        elif operation == "BatchGetItem":
            rru += count * 0.5 * math.ceil(item_bytes["profile"] / 4096)
    return {"wru": wru, "rru": rru}


def function_memory_mb(logical_id: str = "DispatchFunction") -> int:
    """The function's MemorySize in template.yaml (its own, else the Globals')."""
    from samtranslator.yaml_helper import yaml_parse  # noqa: PLC0415

    template = yaml_parse((ROOT / "template.yaml").read_text())
    own = template["Resources"][logical_id]["Properties"].get("MemorySize")
    return int(own or template["Globals"]["Function"]["MemorySize"])


def _cost(
    recipients: int, calls: Counter[str], invocations: int, units: dict[str, float], cpu_seconds: float = 0.0
) -> dict[str, float]:
    """USD for `recipients` of Lambda, SQS, DynamoDB and S3 (SES's own fees left out) from calls and units.

    Lambda's billed time is the calls' modelled latency plus the CPU time measured here, stretched by the share of
    a vCPU the function's memory buys (a full one at 1,769 MB)."""
    memory_mb = function_memory_mb()
    seconds = invocations * LATENCY_S["invocation"] + sum(
        calls[service] * LATENCY_S.get(service, 0.0) for service in ("dynamodb", "sesv2", "ses", "secretsmanager")
    )
    seconds += cpu_seconds * max(1.0, FULL_VCPU_MB / memory_mb)
    parts = {
        "lambda": invocations * PRICES["lambda_per_request"] + seconds * memory_mb / 1024 * PRICES["lambda_per_gb_s"],
        "sqs": calls["sqs"] * PRICES["sqs_per_request"],
        "dynamodb": units["wru"] * PRICES["dynamodb_per_wru"] + units["rru"] * PRICES["dynamodb_per_rru"],
        "s3": calls["s3"] * PRICES["s3_per_put"],
    }
    return {name: round(value, 5) for name, value in parts.items()} | {"total": round(sum(parts.values()), 4)}


def bench_dispatch(recipients: int | None = None, rate: float | None = None) -> dict[str, Any]:
    recipients = recipients or default_recipients()
    rate = rate or default_rate()
    # Fired now: dispatch trusts a batch's contacts only while the suppression log still covers its planning.
    run_id = f"bench-dispatch@{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    with shimmed_moto_server(rate) as endpoint, aws_endpoint(endpoint):
        names, secret_arn, queue_url, profiles = _setup(recipients)
        os.environ.update(_environment(names, secret_arn, queue_url))
        from cadence import campaign_control, config, dispatch  # noqa: PLC0415
        from cadence.campaigns import CampaignDefinition  # noqa: PLC0415
        from cadence.dal import clients, secrets  # noqa: PLC0415

        for cached in (config.dispatch_settings, config.campaign_settings, clients.send_client, secrets.signing_key):
            cached.cache_clear()
        dispatch._quota.cache_clear()
        definition = CampaignDefinition.model_validate(
            {
                "campaign_id": "bench-dispatch",
                "name": "Bench",
                "channels": ["email"],
                "email": {"subject": "For you, {first_name}", "body": "Dear {first_name} from {city}: 10% off."},
            }
        )
        campaign_control.store(definition, config.campaign_settings())
        with CallCounter() as planner_calls:
            queued_batches = _queue_batches(queue_url, profiles, run_id, definition)
        with CallCounter() as counter:
            invocations, first, last, cpu_per_batch = _poll(queue_url)
        sizes, statuses = _ledger_sizes(names["SendsTable"], run_id)
        profile = boto3.resource("dynamodb").Table(names["ProfilesTable"]).get_item(Key={"customer_id": "C00000000"})
        profile_bytes = _item_bytes(profile["Item"])
        stored = boto3.resource("dynamodb").Table(names["CampaignsTable"]).scan()["Items"]
        campaign_bytes = max(_item_bytes(item) for item in stored if not str(item["record_key"]).startswith("RUN#"))
        run_bytes = max([_item_bytes(item) for item in stored if str(item["record_key"]).startswith("RUN#")] or [0])

    sent = statuses["SENT"]
    all_calls = counter.calls + planner_calls.calls
    elapsed = max(last - first, 1e-9)
    per_service = counter.by_service() + planner_calls.by_service()
    per_1k = {service: round(count * 1000 / recipients, 1) for service, count in sorted(per_service.items())}
    per_1k["lambda_invocations"] = round(invocations * 1000 / recipients, 1)
    minimum_batches = math.ceil(recipients / BATCH)
    minimum = {
        "sesv2": round(minimum_batches * 1000 / recipients, 1),
        "sqs": round(3 * math.ceil(minimum_batches / 10) * 1000 / recipients, 1),
        # per batch the campaign read, the claim (as SENDING) and the settle, per invocation the run's counter: the
        # suppression log is read per container, and no profile (the batch carries the contacts)
        "dynamodb": round((3 * minimum_batches + math.ceil(minimum_batches / 10)) * 1000 / recipients, 1),
        "lambda_invocations": round(math.ceil(minimum_batches / 10) * 1000 / recipients, 1),
    }
    # DynamoDB units as this design spends them: each call the workers made, priced by the measured item sizes.
    item_bytes = {
        "ledger": sum(sizes) / max(1, len(sizes)),
        "run": run_bytes,
        "campaign": campaign_bytes,
        "profile": profile_bytes,
        "ledger_total": sum(sizes),
    }
    scale = 1_000_000 / recipients
    batches_per_1m = 1_000_000 / BATCH
    calls_1m = Counter({service: count * scale for service, count in per_service.items()})
    units = _dynamodb_units(counter.dynamodb, names, item_bytes)
    design = {name: value * scale for name, value in units.items()}
    log_queries = counter.dynamodb["Query", names["SuppressionTable"], "small"] / max(1, queued_batches)
    # The designs before: a strongly consistent profile read per recipient, then an eventually consistent one.
    profile_rru = math.ceil(profile_bytes / 4096)
    strong_profiles = {"wru": design["wru"], "rru": design["rru"] + 1_000_000 * profile_rru}
    eventual_profiles = {"wru": design["wru"], "rru": design["rru"] + 1_000_000 * 0.5 * profile_rru}
    campaign_rru = math.ceil(campaign_bytes / 4096)
    per_recipient = {"wru": 1_000_000 * 2 * 1, "rru": 1_000_000 * (profile_rru + campaign_rru)}
    per_recipient_calls = Counter({"sqs": 1_000_000 * 3 / 10 * 1, "dynamodb": 1_000_000 * 4, "ses": 1_000_000})
    cpu_1m = cpu_per_batch * batches_per_1m
    cost = _cost(1_000_000, calls_1m, int(invocations * scale), design, cpu_1m)
    result = {
        "recipients": recipients,
        "configured_rate_per_s": rate,
        "sent": sent,
        "outcomes": dict(statuses),
        "batches": queued_batches,
        "lambda_invocations": invocations,
        "recipients_per_s": round(sent / elapsed, 1),
        "sustained_rate_vs_configured": round(sent / elapsed / rate, 3),
        **{f"api_calls_per_1k_recipients_{service}": value for service, value in per_1k.items()},
        **{f"api_calls_per_1k_recipients_minimum_{service}": value for service, value in minimum.items()},
        "api_calls_by_operation": {f"{s}.{o}": n for (s, o), n in sorted(all_calls.items())},
        "ledger_item_bytes_avg": round(sum(sizes) / max(1, len(sizes))),
        "profile_item_bytes": profile_bytes,
        "dynamodb_units_per_1m_recipients": {key: round(value) for key, value in design.items()},
        "cost_usd_per_1m_recipients": cost,
        "cost_usd_per_1m_recipients_per_recipient_design": _cost(
            1_000_000, per_recipient_calls, int(1_000_000 / 10), per_recipient
        ),
        "suppression_log_queries_per_batch": round(log_queries, 3),
        "consent_designs_cost_usd_per_1m_recipients": {
            "contact_in_batch_plus_suppression_log (built)": cost["total"],
            "eventual_profile_read_plus_suppression_log (before)": _cost(
                1_000_000, calls_1m, int(invocations * scale), eventual_profiles, cpu_1m
            )["total"],
            "strong_profile_batch_get (before that)": _cost(
                1_000_000, calls_1m, int(invocations * scale), strong_profiles, cpu_1m
            )["total"],
        },
        "goal_cost_usd_per_1m_recipients": 0.10,
        "handler_cpu_ms_per_batch": round(cpu_per_batch * 1000, 2),
        "assumptions": {"prices": PRICES, "latency_s": LATENCY_S, "function_memory_mb": function_memory_mb()},
    }
    _print(result, per_1k, minimum)
    return result


def _print(result: dict[str, Any], per_1k: dict[str, float], minimum: dict[str, float]) -> None:
    cost = result["cost_usd_per_1m_recipients"]
    rate = result["configured_rate_per_s"]
    print(f"\ndispatch: {result['recipients']} email recipients at a shim rate of {rate:g}/s, one worker")
    print(
        f"  {result['recipients_per_s']} recipients/s sustained ({result['sustained_rate_vs_configured']:.0%} of the"
        f" rate), {result['lambda_invocations']} invocations, outcomes {result['outcomes']}"
    )
    for service, value in per_1k.items():
        print(f"  api calls per 1k recipients {service:<20} {value:>8} (minimum {minimum.get(service, '-')})")
    print(f"  cost per 1M recipients (Lambda+SQS+DynamoDB+S3): ${cost['total']} {cost}")
    print(f"  per-recipient design: ${result['cost_usd_per_1m_recipients_per_recipient_design']['total']}")
    print(f"  consent check designs: {result['consent_designs_cost_usd_per_1m_recipients']}")
