"""The local stack itself: generic routing on a toy template, then the real template's deployment and the CLI.

The toy stack (tests/integration/fixtures/toy) runs in its own region so its resources never show up beside the
real stack's, which the session's ``local_stack`` fixture deploys.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local_stack import PROJECT_ROOT, LocalStack
from infra.sam_deploy import is_tls_only_statement

TOY_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "toy" / "template.yaml"


def wait_for[T](predicate: Callable[[], T], timeout: float = 15.0) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.05)
    return result


def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The toy template, its own at() schedule set half a minute in the past so it fires at startup."""
    tick_at = (datetime.now(UTC) - timedelta(seconds=30)).strftime("at(%Y-%m-%dT%H:%M:%S)")
    with LocalStack(
        port=0,
        template=TOY_TEMPLATE,
        parameters={"TickExpression": tick_at},
        stack_name="toy-local",
        region="eu-west-1",
        work_dir=tmp_path_factory.mktemp("toy-stack"),
        async_retry_delays=(0.1,),
    ) as stack:
        yield stack


def records(stack: LocalStack, prefix: str) -> dict[str, Any]:
    """What the toy functions recorded under keys starting with ``prefix``."""
    dynamodb = stack.client("dynamodb")
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.outputs["RecordsTableName"]):
        for item in page["Items"]:
            if item["pk"]["S"].startswith(prefix):
                found[item["pk"]["S"]] = json.loads(item["data"]["S"])
    return found


def drain(stack: LocalStack, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible in a queue (deleted as read)."""
    sqs = stack.client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


# ---------- SQS ----------


def test_only_failed_records_stay_and_end_in_the_dlq_when_a_batch_partly_fails(toy: LocalStack) -> None:
    # given a batch where two of five records fail
    run = unique()
    bodies = [f"ok-{run}-{i}" for i in range(3)] + [f"fail-{run}-{i}" for i in range(2)]
    sqs = toy.client("sqs")
    sqs.send_message_batch(
        QueueUrl=toy.outputs["WorkQueueUrl"], Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    )

    # when the router has delivered, retried and redriven everything
    toy.wait_idle(timeout=60)

    # then successes were delivered once and deleted, failures twice (maxReceiveCount) and moved to the DLQ
    seen = {**records(toy, f"sqs#ok-{run}"), **records(toy, f"sqs#fail-{run}")}
    assert sorted(seen) == sorted(
        [f"sqs#ok-{run}-{i}#1" for i in range(3)] + [f"sqs#fail-{run}-{i}#{n}" for i in range(2) for n in (1, 2)]
    )
    dead = sorted(message["Body"] for message in drain(toy, toy.outputs["WorkDeadLetterQueueUrl"]))
    assert dead == [f"fail-{run}-0", f"fail-{run}-1"]
    assert drain(toy, toy.outputs["WorkQueueUrl"]) == []


def test_each_invocation_reports_the_aws_api_calls_it_made(toy: LocalStack) -> None:
    # given a two-record batch; the consumer writes one record per delivery
    run = unique()
    event = {
        "Records": [
            {"messageId": str(i), "body": f"ok-{run}-{i}", "attributes": {"ApproximateReceiveCount": "1"}}
            for i in range(2)
        ]
    }

    result = toy.invoke("BatchFunction", event)

    assert result.ok
    assert result.api_calls == {"dynamodb.PutItem": 2}
    assert [
        record.api_calls for record in toy.invocations("BatchFunction") if record.request_id == result.request_id
    ] == [{"dynamodb.PutItem": 2}]


def test_sqs_records_have_lambdas_event_shape_when_delivered(toy: LocalStack) -> None:
    body = f"ok-shape-{unique()}"
    sqs = toy.client("sqs")
    queue_url = toy.outputs["WorkQueueUrl"]
    sent = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "toy"}},
    )
    toy.wait_idle(timeout=30)

    record = records(toy, f"sqs#{body}#1")[f"sqs#{body}#1"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert record["messageId"] == sent["MessageId"]
    assert record["body"] == body
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == "eu-west-1"
    assert record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "toy", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }


# ---------- S3 and asynchronous invocations ----------


def test_s3_put_invokes_the_function_with_the_url_encoded_key_when_under_the_prefix(toy: LocalStack) -> None:
    run = unique()
    key = f"in/{run}/Quarterly export — naïve 北京 +1.csv"
    elsewhere = f"out/{run}.csv"
    s3 = toy.client("s3")
    s3.put_object(Bucket=toy.outputs["DropBucketName"], Key=key, Body=b"id\n1\n")
    s3.put_object(Bucket=toy.outputs["DropBucketName"], Key=elsewhere, Body=b"id\n1\n")
    toy.wait_idle(timeout=30)

    seen = records(toy, f"s3#in/{run}/") | records(toy, f"s3#{elsewhere}")
    assert list(seen) == [f"s3#{key}"]  # the prefix filter left the other key alone
    record = seen[f"s3#{key}"]["record"]
    assert record["s3"]["object"]["key"] == quote_plus(key)
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "eu-west-1"
    assert record["s3"]["bucket"]["name"] == toy.outputs["DropBucketName"]
    assert record["s3"]["object"]["size"] == 5
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(record)
    assert record["s3"]["object"]["sequencer"]


def test_async_failure_is_retried_then_sent_to_the_on_failure_queue_when_the_handler_raises(toy: LocalStack) -> None:
    key = f"in/boom-{unique()}.csv"
    toy.client("s3").put_object(Bucket=toy.outputs["DropBucketName"], Key=key, Body=b"x")
    toy.wait_idle(timeout=30)

    attempts = [r for r in toy.invocations("UploadFunction") if r.error_type and key in (r.error_message or "")]
    assert [r.attempt for r in attempts] == [1, 2]  # MaximumRetryAttempts: 1
    destination = [
        json.loads(message["Body"]) for message in drain(toy, toy.outputs["FailureQueueUrl"]) if key in message["Body"]
    ]
    assert len(destination) == 1
    record = destination[0]
    assert record["version"] == "1.0"
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["requestId"] == attempts[0].request_id
    assert record["requestContext"]["functionArn"].endswith(":$LATEST")
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == quote_plus(key)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "RuntimeError"


# ---------- schedules ----------


def test_the_templates_at_schedule_fires_once_with_context_attributes_when_its_time_has_passed(toy: LocalStack) -> None:
    schedule = toy.client("scheduler").get_schedule(Name="TickFunctionTick")
    fired = wait_for(lambda: [r for r in records(toy, "tick#").values() if r["arn"] == schedule["Arn"]], 60)

    assert len(fired) == 1
    expected = schedule["ScheduleExpression"].removeprefix("at(").removesuffix(")") + "Z"
    assert fired[0]["scheduled"] == expected
    assert fired[0]["attempt"] == "1"
    assert uuid.UUID(fired[0]["execution"])


def test_a_schedule_created_through_the_api_fires_and_is_deleted_when_its_action_after_completion_is_delete(
    toy: LocalStack,
) -> None:
    # given a one-time schedule for "now" in Shanghai time, in the template's group, like the campaign CLI makes
    scheduler = toy.client("scheduler")
    name = f"run-now-{unique()}"
    now_shanghai = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    created = scheduler.create_schedule(
        Name=name,
        GroupName=toy.outputs["TickGroupName"],
        ScheduleExpression=now_shanghai.strftime("at(%Y-%m-%dT%H:%M:%S)"),
        ScheduleExpressionTimezone="Asia/Shanghai",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": toy.outputs["TickFunctionArn"],
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps(
                {
                    "scheduled": "<aws.scheduler.scheduled-time>",
                    "arn": "<aws.scheduler.schedule-arn>",
                    "execution": "<aws.scheduler.execution-id>",
                    "attempt": "<aws.scheduler.attempt-number>",
                }
            ),
        },
    )

    # then it fires within a couple of seconds, at the UTC instant of that local time, and is deleted
    scheduled = now_shanghai.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert wait_for(lambda: [when for arn, when in toy.fired_schedules() if arn == created["ScheduleArn"]], 5) == [
        now_shanghai.astimezone(UTC).isoformat()
    ]
    # (the handler itself may still be in a cold start on a busy machine)
    fired = wait_for(lambda: [r for r in records(toy, "tick#").values() if r["arn"] == created["ScheduleArn"]], 60)
    assert fired[0]["scheduled"] == scheduled

    def deleted() -> bool:
        try:
            scheduler.get_schedule(Name=name, GroupName=toy.outputs["TickGroupName"])
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return False

    assert wait_for(deleted, 5)


# ---------- the worker sandbox ----------


def test_a_worker_sees_the_deployed_variables_and_the_lambda_runtime_when_invoked(toy: LocalStack) -> None:
    result = toy.invoke("EchoFunction", {})

    assert result.ok, result.error
    env, context = result.payload["env"], result.payload["context"]
    deployed = toy.client("lambda").get_function_configuration(FunctionName=toy.physical_id("EchoFunction"))
    variables = deployed["Environment"]["Variables"]
    assert variables == {
        "RECORDS_TABLE": toy.physical_id("RecordsTable"),
        "STAGE": "local",  # the local stack's default for a template's Stage parameter
        "ECHO_GROUP": toy.outputs["TickGroupName"],
    }
    assert {key: env[key] for key in variables} == variables
    assert env["AWS_ENDPOINT_URL"] == toy.endpoint_url
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == deployed["FunctionName"]
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "PYTEST_CURRENT_TEST" not in env  # nothing leaks from the router's own environment
    code_dir = str(TOY_TEMPLATE.parent / "functions" / "echo")
    assert result.payload["cwd"] == code_dir
    assert result.payload["sys_path"][:2] == [code_dir, str(TOY_TEMPLATE.parent / "layers" / "shared" / "python")]
    assert context["function_name"] == deployed["FunctionName"]
    assert context["memory_limit_in_mb"] == "128"
    assert context["invoked_function_arn"] == deployed["FunctionArn"]
    assert context["aws_request_id"] == result.request_id
    assert 0 <= context["remaining_ms"] <= 1000  # the function's Timeout is 1 s


def test_a_handler_exception_is_a_function_error_and_the_worker_lives_on(toy: LocalStack) -> None:
    before = toy.invoke("EchoFunction", {})
    failed = toy.invoke("EchoFunction", {"raise": True})
    after = toy.invoke("EchoFunction", {})

    assert failed.error is not None
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "asked to fail"
    assert after.ok
    assert after.payload["pid"] == before.payload["pid"]


def test_a_timeout_kills_the_worker_and_the_next_invocation_starts_a_new_one(toy: LocalStack) -> None:
    before = toy.invoke("EchoFunction", {})
    timed_out = toy.invoke("EchoFunction", {"sleep": 30})
    after = toy.invoke("EchoFunction", {})

    assert timed_out.error is not None
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.duration_ms < 10_000
    assert after.ok
    assert after.payload["pid"] != before.payload["pid"]


def test_the_lambda_invoke_api_reaches_the_worker(toy: LocalStack) -> None:
    client = toy.client("lambda")
    name = toy.physical_id("EchoFunction")

    ok = client.invoke(FunctionName=name, Payload=json.dumps({}))
    failed = client.invoke(FunctionName=name, Payload=json.dumps({"raise": True}))

    assert ok["StatusCode"] == 200
    assert "FunctionError" not in ok
    assert json.loads(ok["Payload"].read())["context"]["function_name"] == name
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"


def test_wait_idle_raises_when_work_is_still_outstanding(toy: LocalStack) -> None:
    # a failing message keeps the queue busy for about two visibility timeouts
    toy.client("sqs").send_message(QueueUrl=toy.outputs["WorkQueueUrl"], MessageBody=f"fail-idle-{unique()}")

    with pytest.raises(TimeoutError):
        toy.wait_idle(timeout=0.2)
    toy.wait_idle(timeout=30)


def test_moto_api_data_json_works_when_functions_exist(toy: LocalStack) -> None:
    with urllib.request.urlopen(f"{toy.endpoint_url}/moto-api/data.json", timeout=30) as response:  # noqa: S310
        assert response.status == 200
        functions = json.loads(response.read())["awslambda"]["LambdaFunction"]
    assert toy.physical_id("EchoFunction") in [function["function_name"] for function in functions]


# ---------- the real template ----------


def test_the_stack_has_the_templates_resources_with_its_names(local_stack: LocalStack) -> None:
    deployment = local_stack.deployment
    template = deployment.template["Resources"]
    bucket_name = deployment.resolver.resolve(template["DataBucket"]["Properties"]["BucketName"])
    group_name = deployment.resolver.resolve(template["CampaignScheduleGroup"]["Properties"]["Name"])

    assert local_stack.outputs["DataBucketName"] == bucket_name == local_stack.physical_id("DataBucket")
    assert bucket_name.startswith("cadence-local-data-")
    local_stack.client("s3").head_bucket(Bucket=bucket_name)
    assert local_stack.client("scheduler").get_schedule_group(Name=group_name)["Name"] == group_name
    for logical_id in deployment.resources_of_type("AWS::DynamoDB::Table"):
        name = local_stack.physical_id(logical_id)
        assert name.startswith(f"{local_stack.stack_name}-{logical_id}-")
        assert local_stack.client("dynamodb").describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
    for logical_id in deployment.resources_of_type("AWS::Lambda::Function"):
        configuration = local_stack.client("lambda").get_function_configuration(
            FunctionName=local_stack.physical_id(logical_id)
        )
        template_variables = template[logical_id]["Properties"]["Environment"]["Variables"]
        assert set(configuration["Environment"]["Variables"]) == set(template_variables)
        assert configuration["Architectures"] == [deployment.parameters["Architecture"]]
        assert len(configuration["Layers"]) == len(template[logical_id]["Properties"]["Layers"])


def test_the_bucket_has_the_public_access_block_and_the_policy_without_the_tls_statement(
    local_stack: LocalStack,
) -> None:
    s3 = local_stack.client("s3")
    bucket = local_stack.outputs["DataBucketName"]
    policy = local_stack.deployment.template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    expected = [s for s in local_stack.deployment.resolver.resolve(policy["Statement"]) if not is_tls_only_statement(s)]

    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    try:
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchBucketPolicy"
        statements = []
    assert [s.get("Sid") for s in statements] == [s.get("Sid") for s in expected]
    assert not any(is_tls_only_statement(s) for s in statements)
    # plain-http puts work, which the TLS-only statement would have denied
    s3.put_object(Bucket=bucket, Key=f"scratch/{unique()}.txt", Body=b"x")


def test_the_tables_have_point_in_time_recovery_when_the_template_enables_it(local_stack: LocalStack) -> None:
    template = local_stack.deployment.template["Resources"]
    tables = [
        logical_id
        for logical_id in local_stack.deployment.resources_of_type("AWS::DynamoDB::Table")
        if template[logical_id]["Properties"]
        .get("PointInTimeRecoverySpecification", {})
        .get("PointInTimeRecoveryEnabled")
    ]
    assert tables
    for logical_id in tables:
        backups = local_stack.client("dynamodb").describe_continuous_backups(
            TableName=local_stack.physical_id(logical_id)
        )
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED", logical_id


def test_the_sender_identity_is_verified_so_email_and_sms_can_be_sent(local_stack: LocalStack) -> None:
    sender = local_stack.deployment.parameters["SenderEmail"]
    ses = local_stack.client("ses")
    attributes = ses.get_identity_verification_attributes(Identities=[sender])["VerificationAttributes"]
    assert attributes[sender]["VerificationStatus"] == "Success"

    subject = f"hello {unique()}"
    ses.send_email(
        Source=sender,
        Destination={"ToAddresses": ["someone@example.org"]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": "hi"}}},
    )
    local_stack.client("sns").publish(PhoneNumber="+8613800138000", Message=subject)

    assert [m["destinations"]["ToAddresses"] for m in local_stack.sent_emails() if m.get("subject") == subject] == [
        ["someone@example.org"]
    ]
    assert [m["phone_number"] for m in local_stack.sent_sms() if m["message"] == subject] == ["+8613800138000"]


def test_the_templates_daily_schedule_exists_and_does_not_fire_at_startup(local_stack: LocalStack) -> None:
    resources = local_stack.deployment.template["Resources"]
    properties = resources["RescoreFunctionDailyRescore"]["Properties"]
    schedule = local_stack.client("scheduler").get_schedule(Name=local_stack.physical_id("RescoreFunctionDailyRescore"))
    # named per brand and stage, so a second brand's stack in the account does not clash with it
    assert (
        schedule["Name"] == local_stack.deployment.resolver.resolve(properties["Name"]) == "cadence-local-daily-rescore"
    )

    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == local_stack.deployment.parameters["CampaignScheduleTimezone"]
    assert schedule["Target"]["Arn"].endswith(":function:" + local_stack.outputs["RescoreFunctionName"])
    assert schedule["Arn"] not in [arn for arn, _ in local_stack.fired_schedules()]
    # Campaigns run on their own schedules only: the template has no stack-wide "run every campaign" firing.
    schedule_targets = [
        json.dumps(resource["Properties"]["Target"]["Arn"])
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    ]
    assert schedule_targets
    assert not [target for target in schedule_targets if "CampaignFunction" in target]


def test_the_routed_queues_are_polled_by_the_router_not_by_moto(local_stack: LocalStack) -> None:
    from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto's in-process state, read on purpose

    mappings = local_stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    queue_arns = {mapping["EventSourceArn"] for mapping in mappings}
    assert queue_arns  # the mappings stay visible through the API, as on AWS
    account = local_stack.deployment.account_id
    for queue in sqs_backends[account]["us-east-1"].queues.values():
        if queue.queue_arn in queue_arns:
            assert queue.lambda_event_source_mappings == {}, queue.name


# ---------- the command line ----------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_pids(pid: int) -> set[int]:
    """The worker processes ``pid`` spawned (children running multiprocessing's spawn_main), from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"spawn_main" in command:
            children.add(int(stat.parent.name))
    return children


def test_make_local_prints_one_ready_line_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local_stack", "--port", str(port), "--work-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()  # blocks until the line, or EOF if the stack died
        assert ready.startswith(f"local stack ready endpoint=http://127.0.0.1:{port} ")
        bucket = json.loads(ready.split(" outputs=", 1)[1])["DataBucketName"]
        assert f"DataBucket={bucket}" in ready
        assert "ProfilesTable=" in ready
        assert "ScoreQueue=" in ready

        # plain boto3 with made-up credentials, as an upstream system would use it
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",  # noqa: S106 - fake
        )
        s3.put_object(Bucket=bucket, Key="incoming/customers/cli.csv", Body=b"customer_id\n1\n")
        assert s3.head_object(Bucket=bucket, Key="incoming/customers/cli.csv")["ContentLength"] == 14
        workers = wait_for(lambda: worker_pids(process.pid), 10)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == ""  # one line, nothing more
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # stopped and reaped before the exit
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
