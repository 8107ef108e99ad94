"""Campaign function: an EventBridge Scheduler firing -> planned runs fanned out to the dispatch queue.

The stack-wide firing names no campaign: it invokes this function again, asynchronously, once per active campaign.
"""

from dataclasses import asdict
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import campaign_runs, config, events
from cadence.dal import lambdas
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "release" in event:  # a one-time schedule releasing sends a run planned for later
        release = events.ReleaseTrigger.model_validate(event)
        return {"released": campaign_runs.release_sends(release, config.campaign_settings())}
    trigger = events.CampaignTrigger.model_validate(event)
    invoke_self = partial(lambdas.invoke_async, context.invoked_function_arn)
    outcomes = campaign_runs.run_campaigns(trigger, config.campaign_settings(), invoke_self=invoke_self)
    return {"runs": [asdict(outcome) for outcome in outcomes]}
