"""What the local stack changes in moto, which runs in this process (ThreadedMotoServer), and reads from it.

Each change is installed while at least one local stack runs and undone when the last one stops:

- ``moto.s3.notifications._invoke_awslambda``: moto would invoke the function synchronously inside the PUT request,
  through Docker, and swallow the error. The router queues an asynchronous invocation instead, as S3 does on AWS.
- ``moto.s3.notifications._get_s3_event``: moto's record lacks fields AWS sends (userIdentity, requestParameters,
  responseElements, bucket ownerIdentity, object versionId and sequencer); they are added so handlers see AWS's shape.
- ``moto.sns.models.Subscription.publish`` for ``lambda`` subscriptions: moto would invoke the function synchronously
  inside the Publish request with a fixed record (MessageId, TopicArn and Timestamp of 1970). The router queues an
  asynchronous invocation with the record AWS sends (the message's id, topic, subscription, time and attributes).
- ``LambdaFunction.invoke``: the Lambda Invoke API (``aws lambda invoke``) reaches the routed functions' workers
  instead of Docker.
- ``LambdaFunction.docker_client``: moto's ``GET /moto-api/data.json`` reads every public attribute of every model and
  fails with 500 once a function exists, because this one tries to connect to Docker. It raises AttributeError
  instead, which data.json skips.

Functions the stacks do not route keep moto's own behaviour.

- SESv2 SendBulkEmail, email templates and GetAccount, which moto lacks: ``infra.sesv2_shim`` (installed with the
  first route and left in place, as it only adds operations moto does not have; unit tests install it with
  ``mock_aws``, see tests/conftest.py). The local stack's ``ses_shim`` configures it (send rate, failures).
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from moto.awslambda.models import LambdaFunction
from moto.s3 import notifications
from moto.sns.models import Subscription

if TYPE_CHECKING:
    from infra.runtime import InvocationResult


class LambdaRoute(Protocol):
    """A router that runs some functions itself."""

    def owns(self, function_arn: str) -> bool:
        """Whether this router runs the function (ARN without qualifier)."""
        ...

    def invoke_async(self, function_arn: str, event: Any, trigger: str) -> str:
        """Queue an asynchronous invocation; returns its request id."""
        ...

    def invoke_sync(self, function_arn: str, event: Any, trigger: str) -> InvocationResult:
        """Invoke and wait for the result."""
        ...


_lock = threading.Lock()
_routes: list[LambdaRoute] = []
_originals: dict[str, Any] = {}
_sequencer = itertools.count(1)


def register(route: LambdaRoute) -> None:
    """Route invocations of ``route``'s functions to it; installs the patches for the first route."""
    with _lock:
        if not _routes:
            _install()
        _routes.append(route)


def unregister(route: LambdaRoute) -> None:
    """Stop routing to ``route``; restores moto when no route is left."""
    with _lock:
        if route in _routes:
            _routes.remove(route)
        if not _routes:
            _uninstall()


def unqualified(function_arn: str) -> str:
    """``arn:aws:lambda:r:a:function:name`` without a ``:qualifier``."""
    return ":".join(function_arn.split(":")[:7])


def routed_elsewhere(function_arn: str, route: LambdaRoute) -> bool:
    """Whether another running local stack in this process runs the function."""
    owner = _route_for(function_arn)
    return owner is not None and owner is not route


def _route_for(function_arn: str) -> LambdaRoute | None:
    arn = unqualified(function_arn)
    with _lock:
        return next((route for route in _routes if route.owns(arn)), None)


def _install() -> None:
    from infra import sesv2_shim  # noqa: PLC0415 - moto's SESv2 responder loads with it

    sesv2_shim.install()
    _originals["_invoke_awslambda"] = notifications._invoke_awslambda
    _originals["_get_s3_event"] = notifications._get_s3_event
    _originals["invoke"] = LambdaFunction.invoke
    _originals["sns_publish"] = Subscription.publish
    Subscription.publish = _sns_publish  # type: ignore[method-assign]
    _originals["docker_client"] = vars(LambdaFunction).get("docker_client")  # normally inherited from DockerModel
    notifications._invoke_awslambda = _invoke_awslambda
    notifications._get_s3_event = _get_s3_event
    LambdaFunction.invoke = _lambda_invoke  # type: ignore[method-assign]
    LambdaFunction.docker_client = property(_no_docker)  # type: ignore[assignment,method-assign]


def _uninstall() -> None:
    if not _originals:
        return
    notifications._invoke_awslambda = _originals.pop("_invoke_awslambda")
    notifications._get_s3_event = _originals.pop("_get_s3_event")
    LambdaFunction.invoke = _originals.pop("invoke")  # type: ignore[method-assign]
    Subscription.publish = _originals.pop("sns_publish")  # type: ignore[method-assign]
    original_docker = _originals.pop("docker_client")
    if original_docker is None:
        del LambdaFunction.docker_client  # falls back to DockerModel's
    else:
        LambdaFunction.docker_client = original_docker  # type: ignore[method-assign]


def _no_docker(_function: LambdaFunction) -> Any:
    raise AttributeError("the local stack runs functions in worker processes, not Docker")


def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    route = _route_for(fn_arn)
    if route is None:
        original: Callable[[str, Any, str, str], None] = _originals["_invoke_awslambda"]
        original(account_id, event_body, fn_arn, region_name)
        return
    route.invoke_async(unqualified(fn_arn), event_body, "s3")


def _sns_publish(
    subscription: Subscription,
    message: str,
    message_id: str,
    subject: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    route = _route_for(subscription.endpoint) if subscription.protocol == "lambda" else None
    if route is None:
        original: Callable[..., None] = _originals["sns_publish"]
        original(subscription, message, message_id, subject, message_attributes, *args, **kwargs)
        return
    now = datetime.now(UTC)
    record = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription.arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": subscription.topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.amazonaws.com/SimpleNotificationService-local.pem",
            "UnsubscribeUrl": f"https://sns.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
            "MessageAttributes": {
                name: {"Type": value.get("DataType"), "Value": value.get("StringValue", value.get("BinaryValue"))}
                for name, value in (message_attributes or {}).items()
            },
        },
    }
    route.invoke_async(unqualified(subscription.endpoint), {"Records": [record]}, "sns")


def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, list[dict[str, Any]]]:
    event: dict[str, list[dict[str, Any]]] = _originals["_get_s3_event"](event_name, bucket, key, notification_id)
    records = []
    for record in event["Records"]:
        s3 = record["s3"]
        obj = dict(s3["object"])  # key (URL-encoded by moto, as AWS does), size, eTag
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null" and bucket.is_versioned:
            obj["versionId"] = version_id
        obj["sequencer"] = f"{next(_sequencer):018X}"
        request_id = uuid.uuid4().hex[:16].upper()
        records.append(
            {
                "eventVersion": record["eventVersion"],
                "eventSource": record["eventSource"],
                "awsRegion": record["awsRegion"],
                "eventTime": record["eventTime"],
                "eventName": record["eventName"],
                "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": uuid.uuid4().hex},
                "s3": {
                    "s3SchemaVersion": s3["s3SchemaVersion"],
                    "configurationId": s3["configurationId"],
                    "bucket": {
                        "name": s3["bucket"]["name"],
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": s3["bucket"]["arn"],
                    },
                    "object": obj,
                },
            }
        )
    return {"Records": records}


def _lambda_invoke(function: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
    route = _route_for(function.function_arn)
    if route is None:
        original: Callable[..., str | bytes] = _originals["invoke"]
        return original(function, body, request_headers, response_headers)
    event = json.loads(body) if body else {}
    invocation_type = request_headers.get("x-amz-invocation-type") or request_headers.get("X-Amz-Invocation-Type")
    arn = unqualified(function.function_arn)
    if invocation_type == "Event":
        route.invoke_async(arn, event, "api")
        return b""
    if invocation_type == "DryRun":
        return b""
    result = route.invoke_sync(arn, event, "api")
    if result.error is not None:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = "$LATEST"
    return result.payload_json.encode()


class InProcessMoto:
    """Reads and writes of moto's in-process models that its APIs do not offer."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def set_table_sse(self, table_name: str, *, enabled: bool, kms_key: str | None) -> None:
        """Server-side encryption as a table's describe output shows it."""
        from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 - moto loads backends lazily

        table = dynamodb_backends[self.account_id][self.region].get_table(table_name)
        specification: dict[str, Any] = {"Enabled": enabled, "SSEType": "KMS"}
        if kms_key:
            specification["KMSMasterKeyId"] = kms_key
        else:
            specification["KMSMasterKeyId"] = table._get_default_encryption_key(self.account_id, self.region)
        table.sse_specification = specification if enabled else None

    def set_function_details(
        self, function_name: str, *, architectures: list[str] | None, tracing_mode: str | None
    ) -> None:
        """A function's Architectures and TracingConfig."""
        from moto.awslambda.models import lambda_backends  # noqa: PLC0415 - moto loads backends lazily

        function = lambda_backends[self.account_id][self.region].get_function(function_name)
        if architectures:
            function.architectures = list(architectures)
        if tracing_mode:
            function.tracing_config = {"Mode": tracing_mode}

    def set_function_url(self, function_arn: str, url: str) -> None:
        """The URL GetFunctionUrlConfig reports (moto makes up an ``on.aws`` one that nothing answers)."""
        from moto.awslambda.models import lambda_backends  # noqa: PLC0415 - moto loads backends lazily

        url_config = lambda_backends[self.account_id][self.region].get_function(function_arn).url_config
        if url_config is not None:
            url_config.url = url

    def detach_event_source_mappings(self, function_arns: set[str]) -> list[str]:
        """Stop moto from consuming SQS messages for these functions' event source mappings.

        moto's ``Queue.add_message`` (moto/sqs/models.py) receives messages for every enabled mapping attached to the
        queue and invokes the function through Docker, making the messages vanish or reappear behind the router's
        back. The mappings stay listed by the Lambda API (as on AWS); only the queue's link to them goes. Deleting a
        mapping through the API would not help: moto's DeleteEventSourceMapping leaves the queue's link in place.
        """
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto loads backends lazily

        detached = []
        for queue in sqs_backends[self.account_id][self.region].queues.values():
            for arn in list(queue.lambda_event_source_mappings):
                if unqualified(arn) in function_arns:
                    del queue.lambda_event_source_mappings[arn]
                    detached.append(queue.name)
        return detached

    def sent_emails(self) -> list[dict[str, Any]]:
        """Every message moto's SES (v1 or v2) accepted, oldest first: type, id, source, destinations, ..."""
        from moto.ses.models import ses_backends  # noqa: PLC0415 - moto loads backends lazily

        return [
            {"type": type(message).__name__, **{k: v for k, v in vars(message).items() if not k.startswith("_")}}
            for message in ses_backends[self.account_id][self.region].sent_messages
        ]

    def sent_sms(self) -> list[dict[str, Any]]:
        """Every SMS moto's SNS accepted (Publish with PhoneNumber), oldest first."""
        from moto.sns.models import sns_backends  # noqa: PLC0415 - moto loads backends lazily

        return [
            {"message_id": message_id, "phone_number": phone_number, "message": message}
            for message_id, (phone_number, message) in sns_backends[self.account_id][self.region].sms_messages.items()
        ]
