"""boto3 clients and resources built once per container and reused across invocations.

The endpoint comes from AWS_ENDPOINT_URL when set (the local stack), which boto3 reads itself.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from cadence.errors import PermanentError, ThrottledError, TransientError, UncertainOutcomeError

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=30)

# Failures raised before any byte of the request left: the provider cannot have acted on it.
_NEVER_SENT = (ConnectTimeoutError, EndpointConnectionError, ProxyConnectionError)
# What a network failure of a call that must not be repeated can be caught as.
NETWORK_ERRORS = (BotoConnectionError, HTTPClientError)

# Each service spells throttling and outages its own way (SNS: Throttled, InternalError; SES v2 and Lambda:
# TooManyRequestsException); some say so with a 4xx status (SNS KMSThrottling is a 400), hence the codes.
# Codes that say the caller went too fast (beside a 429 status): a sender slows down for these, not for an outage.
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "Throttled",
        "ThrottledException",
        "KMSThrottling",
        "KMSThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
_TRANSIENT_CODES = _THROTTLING_CODES | frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "InternalServiceErrorException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionConflictException",
    }
)
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500


@cache
def client(service: str) -> Any:
    """The container's one client for an AWS service (DynamoDB's bulk calls go through cadence.dal.dynamodb_wire)."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@dataclass(frozen=True)
class SendTimeouts:
    """Seconds to connect and to wait for the answer of one provider send."""

    connect_seconds: float
    read_seconds: float


@dataclass(frozen=True)
class CallBudget:
    """Timeouts and attempts (the first included) of a client whose calls must end within a known time."""

    connect_seconds: float
    read_seconds: float
    attempts: int

    @property
    def worst_case_seconds(self) -> float:
        """Every attempt timing out, plus botocore's standard backoff between them (at most 20 s each, jittered)."""
        backoff = sum(min(2.0**attempt, 20.0) for attempt in range(self.attempts - 1))
        return self.attempts * (self.connect_seconds + self.read_seconds) + backoff

    def config(self) -> Config:
        # total_max_attempts counts the first attempt; botocore's max_attempts counts retries (1 would mean two).
        return Config(
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            connect_timeout=self.connect_seconds,
            read_timeout=self.read_seconds,
        )


# The send ledger's calls (conditional writes, answered in milliseconds): a few short attempts, so settling a send
# that the provider accepted cannot be cut off by the function's timeout while botocore is still retrying.
LEDGER_BUDGET = CallBudget(connect_seconds=1.0, read_seconds=2.0, attempts=3)


@cache
def send_client(service: str, timeouts: SendTimeouts) -> Any:
    """The container's client for calls that are not idempotent (SES and SNS sends): one attempt, short timeouts.

    botocore would repeat a send after a read timeout (the provider may have sent it already), and its retry
    budget (attempts x timeouts) would outlast the function; a failed send is retried through SQS instead.
    """
    config = CallBudget(timeouts.connect_seconds, timeouts.read_seconds, attempts=1).config()
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


@cache
def table(name: str, budget: CallBudget | None = None) -> Any:
    """The container's DynamoDB Table resource for a table name (with `budget`, calls bounded in time)."""
    config = budget.config() if budget else _CONFIG
    return boto3.session.Session().resource("dynamodb", config=config).Table(name)


def scan_pages(table_name: str, action: str, **scan_arguments: Any) -> Iterator[list[dict[str, Any]]]:
    """The items of a Scan, one page (at most 1 MB, or `Limit` items) at a time, following LastEvaluatedKey.

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB rejected the scan.
    """
    return _pages(table(table_name).scan, action, scan_arguments)


def query_items(table_name: str, action: str, **query_arguments: Any) -> Iterator[dict[str, Any]]:
    """The items of a Query, every page, following LastEvaluatedKey.

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB rejected the query.
    """
    for page in _pages(table(table_name).query, action, query_arguments):
        yield from page


def _pages(call: Callable[..., Any], action: str, arguments: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    while True:
        try:
            page = call(**arguments)
        except ClientError as exc:
            raise translate(exc, action) from exc
        yield page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_transient(exc: ClientError) -> bool:
    """Throttling or an outage: a 429 or 5xx status, or a code that means either."""
    status = http_status(exc)
    return status == _TOO_MANY_REQUESTS or status >= _SERVER_ERROR or error_code(exc) in _TRANSIENT_CODES


def translate_network_error(
    exc: BotoConnectionError | HTTPClientError, action: str
) -> TransientError | UncertainOutcomeError:
    """A send that provably never reached the provider may be retried; any other network failure may have sent."""
    if isinstance(exc, _NEVER_SENT):
        reason = "connect_timeout" if isinstance(exc, ConnectTimeoutError) else "unreachable"
        return TransientError(f"{action}: {reason}")
    reason = "read_timeout" if isinstance(exc, ReadTimeoutError) else "connection_lost"
    return UncertainOutcomeError(f"{action}: {reason}")


def translate(exc: ClientError, action: str) -> TransientError | PermanentError:
    """Map a ClientError onto the domain's error tree by its HTTP status and code (never by its message)."""
    code = error_code(exc)
    if http_status(exc) == _TOO_MANY_REQUESTS or code in _THROTTLING_CODES:
        return ThrottledError(f"{action}: {code}")
    if is_transient(exc):
        return TransientError(f"{action}: {code}")
    return PermanentError(f"{action}: {code}")
