"""Campaign function: a campaign's own schedule firing -> a planned run fanned out to the dispatch queue.

One-time schedules a run made also invoke it, to release the sends it planned for later, and a run split across
invocations invokes it for each step (a segment of the audience, the finish, the run's deadline).
"""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import campaign_runs, config, events
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "release" in event:  # a one-time schedule releasing sends a run planned for later
        release = events.ReleaseTrigger.model_validate(event)
        return {"released": campaign_runs.release_sends(release, config.campaign_settings())}
    if "run_step" in event:  # a step of a run split across invocations
        step = events.RunStepTrigger.model_validate(event).run_step
        outcome = campaign_runs.run_step(step, config.campaign_settings(), request_id=context.aws_request_id)
        return {"runs": [asdict(outcome)]}
    trigger = events.CampaignTrigger.model_validate(event)
    outcome = campaign_runs.run_triggered(trigger, config.campaign_settings())
    return {"runs": [asdict(outcome)]}
