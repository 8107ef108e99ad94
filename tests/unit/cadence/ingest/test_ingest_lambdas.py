"""The hand-off of a large file's remainder: an asynchronous invocation of the ingest function itself."""

import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from cadence.dal import clients, lambdas
from cadence.errors import PermanentError


@pytest.fixture
def function_arn():
    clients.client.cache_clear()
    # moto runs no code without Docker here; it accepts the invocation as Lambda would.
    with mock_aws(config={"lambda": {"use_docker": False}}):
        role = boto3.client("iam").create_role(RoleName="ingest", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
        yield boto3.client("lambda").create_function(
            FunctionName="cadence-test-ingest",
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    clients.client.cache_clear()


def test_invoke_async_is_accepted_when_the_function_exists(function_arn):
    lambdas.invoke_async(function_arn, {"ingest_continuation": {"start_chunk": 3}})


def test_invoke_async_refuses_a_payload_over_the_async_limit(function_arn):
    with pytest.raises(PermanentError):
        lambdas.invoke_async(function_arn, {"report": "x" * (lambdas.ASYNC_PAYLOAD_LIMIT + 1)})
    assert len(json.dumps({"report": "x"})) < lambdas.ASYNC_PAYLOAD_LIMIT
