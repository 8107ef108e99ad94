"""Campaign function: an EventBridge Scheduler firing -> planned runs fanned out to the dispatch queue."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import campaign_runs, config, events
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = events.CampaignTrigger.model_validate(event)
    outcomes = campaign_runs.run_campaigns(trigger, config.campaign_settings())
    return {"runs": [asdict(outcome) for outcome in outcomes]}
