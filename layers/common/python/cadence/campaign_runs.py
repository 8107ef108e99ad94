"""Running campaigns: claim the run, plan it from the profiles, fan the sends out to the dispatch queue."""

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence import campaign_control, run_report
from cadence.campaigns import CampaignDefinition, run_id_for
from cadence.campaigns.plan import Batch, Candidate, Contact, ContactHistory, Plan, StackRules, plan_run
from cadence.campaigns.rules import decile_ceiling, profile_attributes
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, contact_history, profiles_table, queues, schedules, scores_table, uploads
from cadence.errors import InvalidInputError
from cadence.events import CampaignTrigger, ReleaseTrigger
from cadence.observability import logger, metrics
from cadence.run_files import batches_key

_SCORE_ATTRIBUTES = ("customer_id", "score", "decile")


@dataclass
class RunOutcome:
    campaign_id: str
    run_id: str
    status: str
    audience_size: int = 0
    holdout_size: int = 0
    sends_queued: int = 0
    sends_by_channel: dict[str, int] = field(default_factory=dict)
    # Every audience member in exactly one state (queued, holdout, no_consent, ...): these add up to audience_size.
    members_by_state: dict[str, int] = field(default_factory=dict)
    members_by_variant: dict[str, int] = field(default_factory=dict)
    considered: int = 0
    members_key: str | None = None
    # Sends planned for later (local time, quiet hours), and the one-time schedules that release them.
    sends_deferred: int = 0
    releases: int = 0


def run_triggered(trigger: CampaignTrigger, settings: CampaignSettings) -> RunOutcome:
    """Run the campaign a schedule firing names.

    Raises:
        InvalidInputError: the campaign does not exist, or its stored definition is invalid (it is then failed).
        TransientError: a dependency failed; the retried firing starts the same run.
    """
    stored = campaigns_table.get_campaign(settings.campaigns_table, trigger.campaign_id)
    if stored is None:
        raise InvalidInputError(f"campaign {trigger.campaign_id} is not defined")
    try:
        definition = _validated(stored.definition)
    except InvalidInputError as exc:
        campaign_control.fail(trigger.campaign_id, str(exc), settings)
        raise
    return run_campaign(definition, trigger, settings)


def _validated(stored: dict[str, Any]) -> CampaignDefinition:
    try:
        return CampaignDefinition.model_validate(stored)
    except ValueError as exc:
        raise InvalidInputError(f"stored campaign {stored.get('campaign_id')} is invalid") from exc


def candidates(definition: CampaignDefinition, settings: CampaignSettings) -> Iterator[Candidate]:
    """Every scored customer the audience rule could pick, with profile, activity and score, in customer id order.

    Reading the scores first (only deciles the rule can reach) keeps the profile reads to those customers. The
    scores come from a parallel Scan in AUDIENCE_SCAN_SEGMENTS segments, arriving in any order, and are sorted
    by customer id, so the plan (members and their order) is the same whatever the segments; the profiles are
    then read AUDIENCE_READ_WORKERS calls at once, in that order, only the attributes the run plans with.
    """
    ceiling = decile_ceiling(definition.audience)
    # Compact while the whole audience is held: (customer_id, score, decile), not the item's dict.
    scores = sorted(
        (str(item["customer_id"]), item.get("score"), item.get("decile"))
        for item in scores_table.scan(
            settings.scores_table,
            ceiling,
            segments=settings.audience_scan_segments,
            workers=settings.audience_read_workers,
            attributes=_SCORE_ATTRIBUTES,
        )
    )
    profiles = profiles_table.iter_many(
        settings.profiles_table,
        [customer_id for customer_id, _, _ in scores],
        activity_table=settings.activity_table,
        workers=settings.audience_read_workers,
        attributes=profile_attributes(definition.audience),
        consistent=False,  # half the read units; dispatch re-reads consent strongly consistent before each send
    )
    position = 0
    for profile in profiles:
        # Profiles arrive in the scores' order, those without a profile left out.
        while scores[position][0] != profile["customer_id"]:
            position += 1
        customer_id, score, decile = scores[position]
        yield Candidate(
            profile=profile, activity=profile, score={"customer_id": customer_id, "score": score, "decile": decile}
        )


def load_history(
    definition: CampaignDefinition, run_id: str, today: date, settings: CampaignSettings
) -> ContactHistory:
    """Every campaign's contacts inside the cap window and this campaign's inside its re-entry window.

    A few S3 reads per day of the window (one object per run), whatever the audience size.
    """
    caps = definition.caps or settings.campaign_caps
    days = [today - timedelta(days=age) for age in range(caps.window_days)]
    rows = list(contact_history.contacts_on(settings.data_bucket, days, except_run=run_id))
    reentry = definition.reentry.days
    since = None if reentry is None else today - timedelta(days=reentry - 1)
    rows += contact_history.contacts_of_campaign(
        settings.data_bucket, definition.campaign_id, since=since, except_run=run_id
    )
    return ContactHistory(
        Contact(customer_id, day, channel, campaign_id, run)  # type: ignore[arg-type]
        for day, campaign_id, run, customer_id, channel in rows
    )


def _plan(definition: CampaignDefinition, run_id: str, now: datetime, settings: CampaignSettings, secret: str) -> Plan:
    """Plan a run from the audience and the contact history, as of `now`."""
    return plan_run(
        definition,
        run_id,
        candidates(definition, settings),
        now=now,
        history=load_history(definition, run_id, now.astimezone(UTC).date(), settings),
        stack=StackRules(caps=settings.campaign_caps),
        secret=secret,
    )


def preview(definition: CampaignDefinition, settings: CampaignSettings, now: datetime) -> Plan:
    """The plan a run at `now` would make, reading what a run reads and writing nothing (no claim, no sends)."""
    # Codes a preview shows are never sent: a real run derives its own from the secret stored with the run.
    return _plan(definition, run_id_for(definition.campaign_id, now), now, settings, secret="preview")  # noqa: S106


def release_key(campaign_id: str, run_id: str, moment: datetime) -> str:
    return f"campaign-runs/{campaign_id}/{run_id}/release-{moment.astimezone(UTC).strftime('%Y%m%dT%H%MZ')}.jsonl"


def _defer(run_id: str, campaign_id: str, later: Mapping[datetime, list[Batch]], settings: CampaignSettings) -> int:
    """Write each later release's batches to S3 and schedule their release; returns how many sends wait.

    A re-planned run writes the same objects (the plan is deterministic) and finds its schedules made.

    Raises:
        InvalidInputError: the stack gives no schedule group, role or function to release sends with.
    """
    if not later:
        return 0
    group, target, role = settings.schedule_target()
    for moment, batches in later.items():
        key = release_key(campaign_id, run_id, moment)
        body = "".join(json.dumps(batch.to_message(), separators=(",", ":")) + "\n" for batch in batches)
        uploads.put_bytes(settings.data_bucket, key, body.encode("utf-8"), "application/x-ndjson")
        name = "release-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        schedules.create_one_time(
            group=group,
            name=name,
            at=moment,
            target_arn=target,
            role_arn=role,
            payload={"release": {"campaign_id": campaign_id, "run_id": run_id, "key": key}},
            dead_letter_arn=settings.async_failure_queue_arn,
        )
    logger.info("sends deferred", extra={"run_id": run_id, "releases": len(later)})
    return sum(len(batch.sends) for batches in later.values() for batch in batches)


def release_sends(trigger: ReleaseTrigger, settings: CampaignSettings) -> int:
    """Queue the sends a run deferred to now; returns how many. A repeated release queues repeats the
    send ledger ignores; a campaign stopped meanwhile has its sends recorded SUPPRESSED by dispatch."""
    body = uploads.read_bytes(settings.data_bucket, trigger.release.key).decode("utf-8")
    messages = [json.loads(line) for line in body.splitlines() if line.strip()]
    queues.send_json_batches(settings.dispatch_queue_url, messages)
    # One batch message per line (a file written before batches holds one send a line).
    queued = sum(len(message["sends"]) if "sends" in message else 1 for message in messages)
    logger.info("deferred sends released", extra={"run_id": trigger.release.run_id, "sends": queued})
    metrics.add_metric(name="DeferredSendsReleased", unit=MetricUnit.Count, value=queued)
    return queued


def _kept_batches(plan: Plan, campaign_id: str, settings: CampaignSettings) -> list[Batch]:
    """The run's batches as its first attempt cut them (written once, then read back).

    A run re-planned after a crash may see changed data and cut differently; a customer moved to another batch
    could then be sent twice or skipped, so every attempt queues the first attempt's batches.
    """
    body = "".join(json.dumps(batch.to_record(), separators=(",", ":")) + "\n" for batch in plan.batches())
    data = gzip.compress(body.encode("utf-8"), mtime=0)
    kept = uploads.put_bytes_once(settings.data_bucket, batches_key(campaign_id, plan.run_id), data, "application/gzip")
    return [Batch.from_record(json.loads(line)) for line in gzip.decompress(kept).decode("utf-8").splitlines() if line]


def _batches_by_release(batches: Iterable[Batch], due: datetime) -> tuple[list[Batch], dict[datetime, list[Batch]]]:
    """(the batches that may leave by `due`, the later ones by release time): one SQS message per batch."""
    now: list[Batch] = []
    later: dict[datetime, list[Batch]] = {}
    for batch in batches:
        if batch.release_at <= due:
            now.append(batch)
        else:
            later.setdefault(batch.release_at, []).append(batch)
    return now, later


def members_key(campaign_id: str, run_id: str) -> str:
    return f"campaign-runs/{campaign_id}/{run_id}/members.csv"


def _write_members(plan: Plan, campaign_id: str, settings: CampaignSettings) -> str:
    """Every member with state, variant, offer and code: what uplift per variant is measured from later."""
    text = io.StringIO(newline="")
    rows = [member.row() for member in plan.members]
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["customer_id", "state"])
    writer.writeheader()
    writer.writerows(rows)
    key = members_key(campaign_id, plan.run_id)
    uploads.put_bytes(settings.data_bucket, key, text.getvalue().encode("utf-8"), "text/csv; charset=utf-8")
    return key


def run_campaign(definition: CampaignDefinition, trigger: CampaignTrigger, settings: CampaignSettings) -> RunOutcome:
    """One run of one campaign, moving it through its lifecycle (running, then back to rest or completed).

    A repeated trigger for the same firing, or a campaign paused, cancelled, completed or failed, queues nothing.
    Sends due later (send_at_local, quiet hours) wait in S3 for a one-time schedule that releases them.

    Raises:
        InvalidInputError: sends are due later but the stack gives no schedule group to release them with (the
            campaign is then failed).
    """
    run_id = run_id_for(definition.campaign_id, trigger.scheduled_time)
    may_run, state = campaign_control.start_run(definition.campaign_id, settings)
    if not may_run:
        # Its schedule may still fire (a firing already queued, a failed campaign's): no run, nothing queued.
        logger.info("campaign not running, run skipped", extra={"run_id": run_id, "state": state.value})
        metrics.add_metric(name="RunsSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status=state.value)
    try:
        outcome = _fan_out(definition, run_id, trigger, settings)
    except InvalidInputError as exc:
        campaign_control.fail(definition.campaign_id, str(exc), settings)
        raise
    campaign_control.finish_run(definition, trigger.scheduled_time, settings)
    return outcome


def _fan_out(
    definition: CampaignDefinition, run_id: str, trigger: CampaignTrigger, settings: CampaignSettings
) -> RunOutcome:
    earlier = campaigns_table.claim_run(settings.campaigns_table, definition.campaign_id, run_id)
    if earlier in {campaigns_table.RunStatus.FANNED_OUT, campaigns_table.RunStatus.COMPLETED}:
        logger.info("campaign run already fanned out", extra={"run_id": run_id})
        metrics.add_metric(name="DuplicateRunsSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status="duplicate")
    # A run left in PLANNING by a crashed attempt is planned again: the plan is deterministic (coupon codes too:
    # they derive from the secret stored with the run) and the send ledger makes re-queued sends harmless.
    secret = campaigns_table.run_secret(settings.campaigns_table, definition.campaign_id, run_id)
    plan = _plan(definition, run_id, trigger.scheduled_time, settings, secret)
    today = trigger.scheduled_time.astimezone(UTC).date()
    # Before the sends leave: the next run's caps and re-entry must see them even if this one dies after queueing.
    contact_history.put_run(
        settings.data_bucket, definition.campaign_id, run_id, today, [(s.customer_id, s.channel) for s in plan.sends()]
    )
    due = trigger.scheduled_time + timedelta(minutes=1)
    now_batches, later = _batches_by_release(_kept_batches(plan, definition.campaign_id, settings), due)
    deferred = _defer(run_id, definition.campaign_id, later, settings)
    queues.send_json_batches(settings.dispatch_queue_url, (batch.to_message() for batch in now_batches))
    queued = sum(len(batch.sends) for batch in now_batches)
    counters = plan.counters()
    states = {name.removeprefix("state_"): count for name, count in counters.items() if name.startswith("state_")}
    outcome = RunOutcome(
        campaign_id=definition.campaign_id,
        run_id=run_id,
        status=campaigns_table.RunStatus.FANNED_OUT.value,
        audience_size=counters["audience"],
        holdout_size=states["holdout"],
        sends_queued=queued,
        sends_by_channel={
            name.removeprefix("sends_"): n for name, n in counters.items() if name.startswith("sends_") and n
        },
        members_by_state={name: count for name, count in states.items() if count},
        members_by_variant={n.removeprefix("variant_"): c for n, c in counters.items() if n.startswith("variant_")},
        considered=counters["considered"],
        members_key=_write_members(plan, definition.campaign_id, settings),
        sends_deferred=deferred,
        releases=len(later),
    )
    summary = {key: value for key, value in asdict(outcome).items() if key not in {"campaign_id", "run_id", "status"}}
    campaigns_table.finish_run(settings.campaigns_table, definition.campaign_id, run_id, summary)
    # Dispatch may have settled every send before the run was marked fanned out (or nothing was queued).
    run_report.complete_if_settled(settings.campaigns_table, settings.sends_table, definition.campaign_id, run_id)
    logger.info("campaign run fanned out", extra={"run_id": run_id, **summary})
    metrics.add_metric(name="SendsQueued", unit=MetricUnit.Count, value=queued)
    metrics.add_metric(name="HoldoutCustomers", unit=MetricUnit.Count, value=outcome.holdout_size)
    return outcome
