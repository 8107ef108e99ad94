"""Unsubscribe function (Lambda function URL): the RFC 8058 one-click POST and the link's confirmation page."""

import base64
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, unsubscribe_endpoint
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A function URL's event is API Gateway's payload 2.0; a form body may arrive base64-encoded.
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "GET")).upper()
    token = (event.get("queryStringParameters") or {}).get("token")
    page = unsubscribe_endpoint.handle(method, token, body, config.unsubscribe_settings())
    return {
        "statusCode": page.status,
        "headers": {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        "body": page.body,
    }
