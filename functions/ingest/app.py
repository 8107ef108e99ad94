"""Ingest function: S3 ObjectCreated under incoming/ -> cleaned profiles, order/event aggregates, score requests.

It also takes its own continuation events, which carry on with a file too large for one invocation.
"""

from functools import partial
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config
from cadence.dal import lambdas
from cadence.ingest import service
from cadence.ingest.models import FileRef
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = config.ingest_settings()
    invocation = service.Invocation(
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        hand_off=partial(lambdas.invoke_async, context.invoked_function_arn),
    )
    if service.CONTINUATION in event:
        return {"files": [service.continue_file(event[service.CONTINUATION], settings=settings, invocation=invocation)]}
    # S3 URL-encodes keys ("a b.csv" arrives as "a+b.csv"); S3Event.object_key decodes only the first record.
    files = [
        FileRef(bucket=r.s3.bucket.name, key=unquote_plus(r.s3.get_object.key), version_id=r.s3.get_object.version_id)
        for r in S3Event(event).records
    ]
    return {"files": service.ingest_files(files, settings=settings, invocation=invocation)}
