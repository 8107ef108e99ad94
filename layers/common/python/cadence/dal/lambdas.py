"""Lambda invocations: a function handing work to a fresh asynchronous invocation of itself.

Ingest hands on the rest of a large file; the stack-wide campaign firing starts one run per campaign.
"""

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import PermanentError

# The limit on an asynchronous invocation's payload.
ASYNC_PAYLOAD_LIMIT = 256 * 1024


def invoke_async(function_arn: str, payload: Mapping[str, Any]) -> None:
    """Queue an asynchronous invocation (Lambda retries it and sends failures to the on-failure destination).

    Raises:
        PermanentError: the payload is too large or the function refuses it.
        TransientError: Lambda throttled or failed to accept the invocation.
    """
    body = json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")
    if len(body) > ASYNC_PAYLOAD_LIMIT:
        raise PermanentError(f"lambdas.invoke_async: payload of {len(body)} bytes is over the limit")
    try:
        clients.client("lambda").invoke(FunctionName=function_arn, InvocationType="Event", Payload=body)
    except ClientError as exc:
        raise clients.translate(exc, "lambdas.invoke_async") from exc


def invoke_sync(function_name: str, payload: Mapping[str, Any]) -> Any:
    """Invoke a function and wait for its answer (the CLI's erasure); returns the decoded result.

    Raises:
        PermanentError: the function failed (its error type is in the message) or refused the call.
        TransientError: Lambda throttled.
    """
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    try:
        response = clients.client("lambda").invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=body
        )
    except ClientError as exc:
        raise clients.translate(exc, "lambdas.invoke_sync") from exc
    result = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        error = result.get("errorType", "error") if isinstance(result, dict) else "error"
        raise PermanentError(f"lambdas.invoke_sync: {function_name} failed: {error}")
    return result
