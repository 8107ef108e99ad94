"""Rescore function: the daily schedule (or a hand invocation after a deploy) -> stale customers on the ScoreQueue."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, events, rescoring
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    trigger = events.RescoreTrigger.model_validate(event or {})
    logger.append_keys(trigger="schedule" if trigger.scheduled_time else "invoke")
    outcome = rescoring.queue_stale_customers(config.rescore_settings())
    return asdict(outcome)
