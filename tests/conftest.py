"""Shared test setup: fake credentials and a complete environment before any project import.

Settings loaders are cached per process, so every test sees the same table and queue names;
fixtures create those resources in moto exactly as template.yaml declares them.
"""

import copy
import functools
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "cadence-tests",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "POWERTOOLS_DEV": "false",
        "STAGE": "test",
        "PROFILES_TABLE": "test-profiles",
        "ACTIVITY_TABLE": "test-activity",
        "CAMPAIGNS_TABLE": "test-campaigns",
        "SENDS_TABLE": "test-sends",
        "SCORES_TABLE": "test-scores",
        "INGEST_LEDGER_TABLE": "test-ingest-ledger",
        "SUPPRESSION_TABLE": "test-suppression",
        "CONVERSATIONS_TABLE": "test-conversations",
        "HUMAN_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/test-human",
        "SMS_HELP_TEXT": "Cadence test: reply STOP to opt out. Help: help@example.com",
        "SMS_STOP_TEXT": "Cadence test: you are unsubscribed and will get no more messages. Reply START to rejoin.",
        "SMS_START_TEXT": "Cadence test: you are subscribed again. Reply STOP to opt out.",
        "DATA_BUCKET": "test-data-bucket",
        "MODEL_BUCKET": "test-data-bucket",
        "MODEL_VERSION": "test-model",
        "SCORE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/test-score",
        "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/test-dispatch",
        "SENDER_EMAIL": "marketing@example.com",
        "SMS_SENDER_ID": "CADENCE",
        "EMAIL_TEMPLATE_PREFIX": "cadence-test",
        "SES_CONFIGURATION_SET": "cadence-test",
        "UNSUBSCRIBE_BASE_URL": "https://example.com/unsubscribe",
        "UNSUBSCRIBE_SECRET_ARN": "cadence-test-unsubscribe",
        "SMS_ALLOWED_COUNTRY_CODES": "86",
        "DEFAULT_PHONE_REGION": "CN",
    }
)
# The tests create thousands of boto3 sessions (each test drops the DAL's cached clients); each session would load
# the same service models from botocore's JSON files again (about 0.1 s a client). They share one loader instead.
botocore.session.create_loader = functools.cache(botocore.session.create_loader)

# Unit tests never talk to a real endpoint, even when a developer has one exported.
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@functools.cache
def _parsed_template() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text())  # about 0.1 s: once per session, not per fixture


def load_template() -> dict[str, Any]:
    """template.yaml parsed with the CloudFormation tags (!Ref, !GetAtt, ...) kept as data (a copy to change)."""
    return copy.deepcopy(_parsed_template())


@pytest.fixture
def load_event():
    """Read a real event payload from tests/events/ by name (without .json)."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((EVENTS / f"{name}.json").read_text())

    return load


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(aws_request_id=str(uuid.uuid4()))


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process AWS; boto3 clients cached by the DAL are dropped so they bind to it."""
    from cadence import dispatch  # noqa: PLC0415 - project code loads after the env above is set
    from cadence.dal import clients, secrets  # noqa: PLC0415
    from infra import sesv2_shim  # noqa: PLC0415

    # Per-container caches: clients, the signing key, the dispatch worker's pacer (it read the account's rate)
    # and its copy of the suppression log.
    caches = (clients.client, clients.send_client, clients.table, secrets.signing_key, dispatch._quota, dispatch._feed)
    for cached in caches:
        cached.cache_clear()
    with mock_aws():
        sesv2_shim.install()  # SendBulkEmail, email templates, GetAccount: see infra/sesv2_shim.py
        yield
    for cached in caches:
        cached.cache_clear()


def create_table_from_template(dynamodb: Any, logical_id: str, name: str) -> None:
    """A table of template.yaml, with its keys and indexes, under another name."""
    from infra.sam_deploy import create_table_like  # noqa: PLC0415 - project code loads after the env above is set

    create_table_like(dynamodb, _parsed_template()["Resources"][logical_id]["Properties"], name)


@pytest.fixture
def tables(aws: None) -> dict[str, str]:
    """The DynamoDB tables of template.yaml, built from its key schemas, under the test env's names."""
    dynamodb = boto3.client("dynamodb")
    names = {
        "ProfilesTable": os.environ["PROFILES_TABLE"],
        "ActivityTable": os.environ["ACTIVITY_TABLE"],
        "CampaignsTable": os.environ["CAMPAIGNS_TABLE"],
        "SendsTable": os.environ["SENDS_TABLE"],
        "ScoresTable": os.environ["SCORES_TABLE"],
        "IngestLedgerTable": os.environ["INGEST_LEDGER_TABLE"],
        "SuppressionTable": os.environ["SUPPRESSION_TABLE"],
        "ConversationsTable": os.environ["CONVERSATIONS_TABLE"],
    }
    for logical_id, name in names.items():
        create_table_from_template(dynamodb, logical_id, name)
    return names


@pytest.fixture
def queues(aws: None) -> dict[str, str]:
    """The score and dispatch queues under the URLs the test env names."""
    sqs = boto3.client("sqs")
    urls = {}
    for env_name in ("SCORE_QUEUE_URL", "DISPATCH_QUEUE_URL", "HUMAN_QUEUE_URL"):
        urls[env_name] = sqs.create_queue(QueueName=os.environ[env_name].rsplit("/", 1)[-1])["QueueUrl"]
    return urls


@pytest.fixture
def data_bucket(aws: None) -> str:
    name = os.environ["DATA_BUCKET"]
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def ses_sender(aws: None) -> str:
    """Like SES, moto rejects mail from unverified senders: verify the configured one."""
    sender = os.environ["SENDER_EMAIL"]
    boto3.client("ses").verify_email_identity(EmailAddress=sender)
    return sender


@pytest.fixture(autouse=True)
def email_setup(request: pytest.FixtureRequest) -> None:
    """What the template gives every stack for email: the configuration set and the unsubscribe signing secret
    (only for tests running moto)."""
    if "aws" not in request.fixturenames:
        return
    request.getfixturevalue("aws")  # autouse fixtures run first: start moto before creating anything in it
    boto3.client("sesv2").create_configuration_set(ConfigurationSetName=os.environ["SES_CONFIGURATION_SET"])
    boto3.client("secretsmanager").create_secret(
        Name=os.environ["UNSUBSCRIBE_SECRET_ARN"], SecretString="test-unsubscribe-signing-key"
    )


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the shared Powertools logger writes, formatted as in Lambda (it binds stdout at import)."""
    from cadence.observability import logger  # noqa: PLC0415 - project code loads after the env above is set

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
