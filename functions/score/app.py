"""Score function: SQS batches of customer ids -> scores on their profiles."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, events, score_requests
from cadence.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, model=events.ScoreSqsRecord)


def handle_record(record: events.ScoreSqsRecord) -> None:
    score_requests.score_customers(record.body.customer_ids, config.score_settings())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
