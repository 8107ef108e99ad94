"""Feedback function: SES events (bounce, complaint, delivery, reject, open, click) from the configuration set's
SNS topic -> noted on the send ledger, suppressions, and each run's risk guard."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, events, feedback
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[str]]:
    # SNS invokes asynchronously with one record: a failure is retried by Lambda, then lands in the on-failure queue.
    settings = config.feedback_settings()
    kinds = [
        feedback.record(events.SnsSesRecord.model_validate(record).event(), settings) for record in event["Records"]
    ]
    return {"kinds": kinds}
