"""Provider faults for unit tests: SES and SNS answering with errors, or the network failing, before moto sees a call.

While `injected()` is active, every boto3 client built sends its HTTP attempts (botocore's `before-send`, inside its
retry loop) here instead of straight to moto: a planned fault answers, or moto does. A test sees how many attempts
the SDK made and what our code did with the outcome, without patching any of our modules. (botocore calls every
`before-send` handler and keeps the first answer, so the faults stand in for moto's handler rather than beside it:
moto would otherwise also act on a request the fault answered, e.g. record an SMS.)
"""

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.models import botocore_stubber

Fault = Callable[[AWSPreparedRequest], AWSResponse]

_NAMESPACES = {"sns": "http://sns.amazonaws.com/doc/2010-03-31/", "ses": "http://ses.amazonaws.com/doc/2010-12-01/"}


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def error(service: str, code: str, status: int) -> Fault:
    """An AWS query-protocol error response, as SES and SNS send them (SESv2: REST-JSON)."""
    if service == "sesv2":
        return rest_json_error(code, status)
    body = (
        f'<ErrorResponse xmlns="{_NAMESPACES[service]}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>injected</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    return lambda request: AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(body.encode()))


def rest_json_error(code: str, status: int) -> Fault:
    """An AWS REST-JSON error response, as SESv2 sends them."""
    body = '{"message":"injected"}'
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"}
    return lambda request: AWSResponse(request.url, status, headers, _Raw(body.encode()))


def json_answer(request: AWSPreparedRequest, payload: dict[str, Any], status: int = 200) -> AWSResponse:
    """An AWS JSON-protocol answer to `request`, as DynamoDB sends them."""
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, status, headers, _Raw(json.dumps(payload).encode()))


def json_error(code: str, status: int) -> Fault:
    """An AWS JSON-protocol error response, as DynamoDB sends them."""
    body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected"}}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return lambda request: AWSResponse(request.url, status, headers, _Raw(body.encode()))


class WorkerKilled(BaseException):
    """The worker process dies here: nothing after this point of the invocation runs (no except, no finally)."""


def killed(request: AWSPreparedRequest) -> AWSResponse:
    """The worker dies as the call leaves: the service never sees it."""
    raise WorkerKilled


# A planned step answered by moto as usual (`once` faults queue up per attempt; this lets one attempt through).
ANSWERED = "answered"
# moto acts on the call, then the worker dies before it reads the answer (e.g. SES accepted the email).
KILLED_AFTER = "killed_after"


def read_timeout(request: AWSPreparedRequest) -> AWSResponse:
    """The request went out and no answer came: the provider may have acted on it."""
    raise ReadTimeoutError(endpoint_url=request.url)


def connect_timeout(request: AWSPreparedRequest) -> AWSResponse:
    """No connection was made: the provider never saw the request."""
    raise ConnectTimeoutError(endpoint_url=request.url)


def no_endpoint(request: AWSPreparedRequest) -> AWSResponse:
    """DNS or the connection failed before anything was sent."""
    raise EndpointConnectionError(endpoint_url=request.url)


class ProviderFaults:
    """Faults by operation ("sns.Publish", "ses.SendEmail"); counts every HTTP attempt of every operation."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self._faults: dict[str, list[Fault | str]] = {}
        self._always: dict[str, Fault] = {}

    def once(self, operation: str, fault: Fault | str) -> None:
        """Answer the next attempt of the operation with the fault (or ANSWERED, KILLED_AFTER)."""
        self._faults.setdefault(operation, []).append(fault)

    def always(self, operation: str, fault: Fault) -> None:
        """Answer every attempt of the operation with the fault until cleared."""
        self._always[operation] = fault

    def clear(self) -> None:
        self._faults.clear()
        self._always.clear()

    def __call__(self, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.removeprefix("before-send.")
        self.attempts[operation] += 1
        if self._faults.get(operation):
            fault = self._faults[operation].pop(0)
            if not isinstance(fault, str):
                return fault(request)
            answered: AWSResponse | None = botocore_stubber(event_name=event_name, request=request, **kwargs)
            if fault == KILLED_AFTER:
                raise WorkerKilled
            return answered
        if operation in self._always:
            return self._always[operation](request)
        response: AWSResponse | None = botocore_stubber(event_name=event_name, request=request, **kwargs)
        return response


@contextmanager
def injected() -> Iterator[ProviderFaults]:
    """Put the faults in front of moto for the clients built from now on."""
    faults = ProviderFaults()
    moto_entry = ("before-send", botocore_stubber)
    index = BUILTIN_HANDLERS.index(moto_entry)
    BUILTIN_HANDLERS[index] = ("before-send", faults)
    try:
        yield faults
    finally:
        BUILTIN_HANDLERS[index] = moto_entry
