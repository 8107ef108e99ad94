"""Running campaigns: claim the run, plan it from the profiles, fan the sends out to the dispatch queue."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence.campaigns import CampaignDefinition, plan_run, run_id_for
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, profiles_table, queues, scores_table
from cadence.errors import InvalidInputError
from cadence.events import CampaignTrigger
from cadence.observability import logger, metrics

_PROFILES_PER_READ = 1000


@dataclass
class RunOutcome:
    campaign_id: str
    run_id: str
    status: str
    audience_size: int = 0
    holdout_size: int = 0
    sends_queued: int = 0
    sends_by_channel: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)


def run_campaigns(
    trigger: CampaignTrigger, settings: CampaignSettings, invoke_self: Callable[[Mapping[str, Any]], None]
) -> list[RunOutcome]:
    """Run the triggered campaign; a trigger naming none (the stack-wide schedule) fans out one run per active one.

    `invoke_self` queues an asynchronous invocation of the campaign function with the given event.

    Raises:
        InvalidInputError: the named campaign does not exist or its stored definition is invalid.
        TransientError: Lambda did not accept an invocation (the retried firing invokes them all again; each
            run id comes from the same scheduled time, so the repeats queue nothing).
    """
    if trigger.campaign_id is None:
        return fan_out(trigger, settings, invoke_self)
    stored = campaigns_table.get_definition(settings.campaigns_table, trigger.campaign_id)
    if stored is None:
        raise InvalidInputError(f"campaign {trigger.campaign_id} is not defined")
    return [run_campaign(_validated(stored), trigger, settings)]


def fan_out(
    trigger: CampaignTrigger, settings: CampaignSettings, invoke_self: Callable[[Mapping[str, Any]], None]
) -> list[RunOutcome]:
    """One asynchronous invocation per active campaign, each for this firing's scheduled time.

    Each campaign then has the function's whole timeout, its own retries and its own on-failure record: an invalid
    definition or a large audience no longer stops the campaigns after it.
    """
    outcomes = []
    for campaign_id in sorted(campaigns_table.active_campaign_ids(settings.campaigns_table)):
        invoke_self(trigger.model_copy(update={"campaign_id": campaign_id}).model_dump(mode="json", exclude_none=True))
        outcomes.append(RunOutcome(campaign_id, run_id_for(campaign_id, trigger.scheduled_time), status="invoked"))
    logger.info("campaign runs invoked", extra={"campaigns": len(outcomes)})
    metrics.add_metric(name="CampaignRunsInvoked", unit=MetricUnit.Count, value=len(outcomes))
    return outcomes


def _validated(stored: dict[str, Any]) -> CampaignDefinition:
    try:
        return CampaignDefinition.model_validate(stored)
    except ValueError as exc:
        raise InvalidInputError(f"stored campaign {stored.get('campaign_id')} is invalid") from exc


def scored_profiles(max_decile: int, settings: CampaignSettings) -> Iterator[dict[str, Any]]:
    """Profiles with their scores, for the customers scored into deciles 1..max_decile.

    Reading the scores first keeps the profile reads to the customers a campaign can pick.
    """
    for page in queues.chunked(scores_table.scan(settings.scores_table, max_decile), _PROFILES_PER_READ):
        scores = {score["customer_id"]: score for score in page}
        for customer_id, profile in profiles_table.get_many(settings.profiles_table, list(scores)).items():
            yield {**profile, **scores[customer_id]}


def run_campaign(definition: CampaignDefinition, trigger: CampaignTrigger, settings: CampaignSettings) -> RunOutcome:
    """One run of one campaign; a repeated trigger for the same firing, or an inactive campaign, queues nothing."""
    run_id = run_id_for(definition.campaign_id, trigger.scheduled_time)
    if not definition.active:
        # Its own schedule may still fire; the dispatch function would suppress every send anyway.
        logger.info("campaign inactive, run skipped", extra={"run_id": run_id})
        metrics.add_metric(name="InactiveRunsSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status="inactive")
    earlier = campaigns_table.claim_run(settings.campaigns_table, definition.campaign_id, run_id)
    if earlier is campaigns_table.RunStatus.FANNED_OUT:
        logger.info("campaign run already fanned out", extra={"run_id": run_id})
        metrics.add_metric(name="DuplicateRunsSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status="duplicate")
    # A run left in PLANNING by a crashed attempt is planned again: the plan is deterministic
    # and the send ledger makes re-queued sends harmless.
    plan = plan_run(definition, run_id, scored_profiles(definition.audience.max_decile, settings))
    queued = queues.send_json_batches(settings.dispatch_queue_url, (send.to_message() for send in plan.sends))
    outcome = RunOutcome(
        campaign_id=definition.campaign_id,
        run_id=run_id,
        status=campaigns_table.RunStatus.FANNED_OUT.value,
        audience_size=plan.audience_size,
        holdout_size=plan.holdout_size,
        sends_queued=queued,
        sends_by_channel=plan.sends_by_channel(),
        skipped_by_reason=plan.skipped_by_reason,
    )
    summary = {key: value for key, value in asdict(outcome).items() if key not in {"campaign_id", "run_id", "status"}}
    campaigns_table.finish_run(settings.campaigns_table, definition.campaign_id, run_id, summary)
    logger.info("campaign run fanned out", extra={"run_id": run_id, **summary})
    metrics.add_metric(name="SendsQueued", unit=MetricUnit.Count, value=queued)
    metrics.add_metric(name="HoldoutCustomers", unit=MetricUnit.Count, value=plan.holdout_size)
    return outcome
