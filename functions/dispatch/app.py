"""Dispatch function: SQS messages of up to 50 planned sends -> at most one SES/SNS send each, settled per batch."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, dispatch, events
from cadence.dal import queues
from cadence.errors import RetryLaterError
from cadence.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, model=events.DispatchSqsRecord)


def handle_record(
    record: events.DispatchSqsRecord, lambda_context: LambdaContext, tally: dispatch.SettledTally | None = None
) -> None:
    # The batch processor passes the context to a record handler that asks for it by this name.
    settings = config.dispatch_settings()
    try:
        dispatch.send_batch(
            record.body,
            settings,
            time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
            last_delivery=int(record.attributes.ApproximateReceiveCount) >= settings.dispatch_max_receive_count,
            tally=tally,
        )
    except RetryLaterError as exc:
        # Waiting for a lease or a quiet run: come back then, not at the queue's timeout (each early return spends
        # one of the message's receives before the dead-letter queue).
        if queues.redeliver_after(record.eventSourceARN, record.receiptHandle, exc.after_seconds):
            metrics.add_metric(name="RedeliveriesPostponed", unit=MetricUnit.Count, value=1)
        raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, object], context: LambdaContext) -> PartialItemFailureResponse:
    # The runs' counters move once per invocation, after every record (failed ones too: a batch left PARTIAL has
    # counted its final sends); a failure to write them fails the invocation, and every message comes back.
    tally = dispatch.SettledTally()

    def handle(record: events.DispatchSqsRecord, lambda_context: LambdaContext) -> None:
        handle_record(record, lambda_context, tally)

    try:
        response = process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
    except Exception:  # every record failed; what settled still counts
        tally.flush(config.dispatch_settings())
        raise
    tally.flush(config.dispatch_settings())
    return response
