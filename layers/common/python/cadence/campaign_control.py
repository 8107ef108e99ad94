"""Moving campaigns through their lifecycle (cadence.campaigns.lifecycle).

The operator's moves (store, pause, resume, cancel: the `cadence` CLI) and a run's (start, finish, fail: the campaign
function) go through here. Each is a conditional write on the state just read, tried again if another move came
between, and the operator's moves keep the campaign's own EventBridge Scheduler schedule in step: created or replaced
when stored, disabled when paused, enabled when resumed, deleted when cancelled.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime

from cadence import email_templates, run_report
from cadence.campaigns import schedule as expressions
from cadence.campaigns.definition import CampaignDefinition, in_zone
from cadence.campaigns.lifecycle import Action, IllegalTransitionError, State, next_state, schedule_state
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, schedules
from cadence.dal import email_templates as stored_templates
from cadence.dal.campaigns_table import ConcurrentChangeError, StoredCampaign
from cadence.errors import InvalidInputError
from cadence.observability import logger

_ATTEMPTS = 3
# What each campaign's schedule sends the campaign function; Scheduler fills in the firing's time.
_FIRING = '{{"campaign_id": {campaign_id}, "scheduled_time": "<aws.scheduler.scheduled-time>"}}'


def store(definition: CampaignDefinition, settings: CampaignSettings, now: datetime | None = None) -> State:
    """Store a validated definition and make (or replace, or remove) its schedule; returns the campaign's state.

    A new campaign is scheduled when it has a schedule, else a draft (paused if the file says `active: false`);
    storing a paused campaign keeps it paused.

    Raises:
        IllegalTransitionError: the campaign is running, completed or cancelled.
        InvalidInputError: its schedule has passed, or the stack gives no schedule group to put it in.
    """
    _check_schedule(definition, settings, now or datetime.now(UTC))
    # The templates first: a run may fire as soon as the definition is stored, and its sends need them. A template's
    # name changes with its message, so a batch being sent with the one stored before keeps it.
    if settings.email_template_prefix:
        for template in email_templates.templates_of(definition, settings.email_template_prefix).values():
            stored_templates.put(template)

    def write(current: StoredCampaign | None) -> State:
        state = next_state(
            current.state if current else None,
            Action.STORE,
            has_schedule=definition.schedule is not None,
            active=definition.active,
        )
        expected = current.stored_state if current else None
        campaigns_table.put_definition(
            settings.campaigns_table, definition.campaign_id, definition.stored_form(), state, expected
        )
        return state

    before, state = _with_retries(definition.campaign_id, settings, write, must_exist=False)
    had_schedule = before is not None and before.definition.get("schedule") is not None
    _sync_schedule(definition, state, settings, had_schedule=had_schedule)
    return state


def pause(campaign_id: str, settings: CampaignSettings) -> State:
    """Stop the campaign's firings (its schedule is disabled) and hold its sends.

    Raises:
        IllegalTransitionError: the campaign is not scheduled or running.
        InvalidInputError: no such campaign.
    """
    return _operator_move(campaign_id, Action.PAUSE, settings)


def resume(campaign_id: str, settings: CampaignSettings) -> State:
    """A paused (or failed) campaign fires on its schedule again, and the sends held while it was paused are
    queued again, each to be sent once.

    Raises:
        IllegalTransitionError: the campaign is not paused or failed.
        InvalidInputError: no such campaign.
    """
    state = _operator_move(campaign_id, Action.RESUME, settings)
    run_report.release_held(settings, campaign_id)
    return state


def cancel(campaign_id: str, settings: CampaignSettings) -> State:
    """End the campaign for good: its schedule and its email templates are deleted, and its queued sends (also
    those held while it was paused, queued again for this) end CANCELLED.

    Deleting the templates is safe: a batch that read the campaign just before the cancel and sends after it finds
    no template, which SES answers before sending anything, so the send is FAILED and its redelivery ends CANCELLED.
    Templates of the campaign's earlier edits are not known here and stay (see the README).

    Raises:
        IllegalTransitionError: the campaign is already completed or cancelled.
        InvalidInputError: no such campaign.
    """
    state = _operator_move(campaign_id, Action.CANCEL, settings)
    run_report.release_held(settings, campaign_id)
    stored = campaigns_table.get_campaign(settings.campaigns_table, campaign_id)
    if settings.email_template_prefix and stored is not None:
        definition = CampaignDefinition.model_validate(stored.definition)
        stored_templates.delete(email_templates.templates_of(definition, settings.email_template_prefix))
    return state


def start_run(campaign_id: str, settings: CampaignSettings) -> tuple[bool, State]:
    """Move the campaign to running for a firing; returns (whether the run may go ahead, the campaign's state).

    A paused, cancelled, completed or failed campaign refuses the run.

    Raises:
        InvalidInputError: no such campaign.
    """
    try:
        _, state = _with_retries(campaign_id, settings, _mover(campaign_id, Action.START_RUN, settings))
    except IllegalTransitionError:
        stored = campaigns_table.get_campaign(settings.campaigns_table, campaign_id)
        return False, stored.state if stored else State.CANCELLED
    return True, state


def finish_run(definition: CampaignDefinition, scheduled_time: datetime, settings: CampaignSettings) -> State | None:
    """After a run fanned out: back to scheduled (or draft), or completed after its schedule's last firing.

    A campaign paused or cancelled while the run planned keeps that state (returns None).
    """
    mover = _mover(
        definition.campaign_id,
        Action.FINISH_RUN,
        settings,
        has_schedule=definition.schedule is not None,
        more_firings=_fires_after(definition, scheduled_time),
    )
    try:
        _, state = _with_retries(definition.campaign_id, settings, mover)
    except InvalidInputError:  # not allowed from its state now, or gone
        return None
    return state


def fail(campaign_id: str, reason: str, settings: CampaignSettings) -> None:
    """Mark the campaign failed with the reason (its firings then start no run until it is stored again or resumed);
    a campaign paused, cancelled or gone meanwhile stays as it is."""
    try:
        _with_retries(campaign_id, settings, _mover(campaign_id, Action.FAIL, settings, reason=reason))
    except InvalidInputError:  # not allowed from its state now, or gone
        return
    logger.warning("campaign failed", extra={"campaign_id": campaign_id, "reason": reason})


def _operator_move(campaign_id: str, action: Action, settings: CampaignSettings) -> State:
    before, state = _with_retries(campaign_id, settings, _mover(campaign_id, action, settings))
    assert before is not None  # noqa: S101 - _with_retries refuses a missing campaign
    definition = CampaignDefinition.model_validate(before.definition)
    _sync_schedule(definition, state, settings, had_schedule=definition.schedule is not None)
    return state


def _mover(
    campaign_id: str,
    action: Action,
    settings: CampaignSettings,
    *,
    has_schedule: bool | None = None,
    more_firings: bool = True,
    reason: str | None = None,
) -> Callable[[StoredCampaign | None], State]:
    def move(current: StoredCampaign | None) -> State:
        assert current is not None  # noqa: S101 - _with_retries refuses a missing campaign
        scheduled = current.definition.get("schedule") is not None if has_schedule is None else has_schedule
        state = next_state(current.state, action, has_schedule=scheduled, more_firings=more_firings)
        campaigns_table.move(settings.campaigns_table, campaign_id, current.stored_state, state, reason)
        return state

    return move


def _with_retries(
    campaign_id: str,
    settings: CampaignSettings,
    write: Callable[[StoredCampaign | None], State],
    *,
    must_exist: bool = True,
) -> tuple[StoredCampaign | None, State]:
    """Read the campaign, make the move from what was read; read again and retry if another move came between.

    Raises:
        IllegalTransitionError: the move is not allowed from the campaign's state.
        InvalidInputError: no such campaign (when it must exist), or it kept changing.
    """
    for _ in range(_ATTEMPTS):
        current = campaigns_table.get_campaign(settings.campaigns_table, campaign_id)
        if current is None and must_exist:
            raise InvalidInputError(f"campaign {campaign_id} is not deployed")
        try:
            return current, write(current)
        except ConcurrentChangeError:
            continue
    raise InvalidInputError(f"campaign {campaign_id} kept changing; try again")


def _check_schedule(definition: CampaignDefinition, settings: CampaignSettings, now: datetime) -> None:
    plan = definition.schedule
    if plan is None:
        return
    settings.schedule_target()
    zone = definition.schedule_zone
    if plan.at is not None and in_zone(plan.at, zone) <= now:
        raise InvalidInputError(f"campaign {definition.campaign_id}: schedule.at {plan.at.isoformat()} has passed")
    if plan.end is not None and in_zone(plan.end, zone) <= now:
        raise InvalidInputError(f"campaign {definition.campaign_id}: schedule.end {plan.end.isoformat()} has passed")


def _fires_after(definition: CampaignDefinition, moment: datetime) -> bool:
    """Whether the campaign's schedule fires again after `moment` (before its end)."""
    plan = definition.schedule
    if plan is None:
        return False
    zone = definition.schedule_zone
    anchor = in_zone(plan.start, zone) if plan.start else moment
    following = expressions.next_fire_time(plan.expression(zone), moment, zone, anchor=anchor)
    return following is not None and (plan.end is None or following <= in_zone(plan.end, zone))


def _sync_schedule(
    definition: CampaignDefinition, state: State, settings: CampaignSettings, *, had_schedule: bool
) -> None:
    """Make the campaign's schedule what `state` wants: enabled, disabled, or gone."""
    plan = definition.schedule
    wanted = schedule_state(state) if plan is not None else None
    if plan is None or wanted is None:
        if had_schedule:
            schedules.delete(group=settings.schedule_target()[0], name=definition.campaign_id)
        return
    group, target, role = settings.schedule_target()
    zone = definition.schedule_zone
    schedules.put_recurring(
        group=group,
        name=definition.campaign_id,
        expression=plan.expression(zone),
        timezone=zone,
        state=wanted,
        target_arn=target,
        role_arn=role,
        payload=_FIRING.format(campaign_id=json.dumps(definition.campaign_id)),
        start=in_zone(plan.start, zone) if plan.start else None,
        end=in_zone(plan.end, zone) if plan.end else None,
        dead_letter_arn=settings.async_failure_queue_arn,
    )
    logger.info("campaign schedule synced", extra={"campaign_id": definition.campaign_id, "schedule_state": wanted})
