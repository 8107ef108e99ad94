"""Running campaigns: claim the run, plan it from the profiles, fan the sends out to the dispatch queue.

A run over more scored customers than one invocation can read and plan (AUDIENCE_SEGMENT_SIZE) is split:

1. the firing's invocation (the coordinator) claims the run, picks S segments from the scores table's size, records
   S and the definition on the run item (the first attempt's S stands), schedules the run's deadline and invokes
   this function asynchronously once per segment not yet done;
2. segment k of S reads its share of the audience (its AUDIENCE_SCAN_SEGMENTS of the S x AUDIENCE_SCAN_SEGMENTS
   DynamoDB segments), makes the per-member decisions (cadence.campaigns.plan.assess) and writes the members'
   compact facts to S3, then adds k to the run's set of done segments: a retried segment adds nothing, and the
   writes that see the set complete invoke the finisher;
3. the finisher claims the finish (PLANNING -> FINISHING, under its request id: its own retries go on, another
   finisher stops), merges the facts in customer id order and makes the cross-member decisions
   (cadence.campaigns.plan.decide) over the contact history, then writes and queues as a one-invocation run does
   and moves the campaign out of running;
4. at the deadline, a run not fanned out is failed, and so is its campaign (a segment or finisher that failed all
   its retries, or never ran); a segment that cannot succeed (invalid input, a refused request) fails it at once.

The plan is the same whatever S (tests/unit/cadence/campaigns/test_split_runs.py).
"""

import csv
import gzip
import hashlib
import heapq
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cadence import campaign_control, run_report
from cadence.campaigns import CampaignDefinition, run_id_for
from cadence.campaigns.definition import MESSAGE_FIELDS
from cadence.campaigns.plan import (
    Batch,
    Candidate,
    Contact,
    ContactHistory,
    MemberFacts,
    Plan,
    StackRules,
    assess,
    decide,
    plan_run,
)
from cadence.campaigns.rules import decile_ceiling, profile_attributes
from cadence.config import CampaignSettings
from cadence.dal import (
    campaigns_table,
    contact_history,
    lambdas,
    profiles_table,
    queues,
    schedules,
    scores_table,
    suppression_table,
    uploads,
)
from cadence.errors import InvalidInputError, PermanentError
from cadence.events import CampaignTrigger, ReleaseTrigger, RunStep
from cadence.observability import logger, metrics
from cadence.run_files import batches_key

_SCORE_ATTRIBUTES = ("customer_id", "score", "decile")
# Outcome statuses besides the run item's own: a firing whose run goes on in its segments, a segment's part done.
SPLIT = "SPLIT"
SEGMENT_DONE = "SEGMENT_DONE"
# Each of S segments reads AUDIENCE_SCAN_SEGMENTS DynamoDB segments; DynamoDB allows a million in all.
_MAX_SEGMENTS = 1000


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


def candidates(
    definition: CampaignDefinition, settings: CampaignSettings, part: tuple[int, int] | None = None
) -> Iterator[Candidate]:
    """Every scored customer the audience rule could pick, with profile, activity and score, in customer id order;
    with `part` (k, S) only segment k of S of them.

    Reading the scores first (only deciles the rule can reach) keeps the profile reads to those customers. The
    scores come from a parallel Scan in AUDIENCE_SCAN_SEGMENTS segments (segment k of S reads its own of
    S x AUDIENCE_SCAN_SEGMENTS), arriving in any order, and are sorted by customer id, so the plan (members and
    their order) is the same whatever the segments; the profiles are then read AUDIENCE_READ_WORKERS calls at
    once, in that order, only the attributes the run plans with.
    """
    ceiling = decile_ceiling(definition.audience)
    per_part = settings.audience_scan_segments
    segment, total = part or (0, 1)
    # Compact while the whole audience is held: (customer_id, score, decile), not the item's dict.
    scores = sorted(
        (str(item["customer_id"]), item.get("score"), item.get("decile"))
        for item in scores_table.scan(
            settings.scores_table,
            ceiling,
            segments=per_part * total,
            workers=settings.audience_read_workers,
            attributes=_SCORE_ATTRIBUTES,
            only=range(segment * per_part, (segment + 1) * per_part),
        )
    )
    profiles = profiles_table.iter_many(
        settings.profiles_table,
        [customer_id for customer_id, _, _ in scores],
        activity_table=settings.activity_table,
        workers=settings.audience_read_workers,
        # What the rule reads, and what the batches carry for sending (the profile is not read again).
        attributes=(*profile_attributes(definition.audience), *MESSAGE_FIELDS, *definition.contact_attributes()),
        consistent=False,  # half the read units; dispatch checks what the suppression log says since planning
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


def _stack(settings: CampaignSettings, definition: CampaignDefinition | None = None) -> StackRules:
    suppressed: frozenset[tuple[str, str]] = frozenset()
    if settings.suppression_table and definition is not None:
        suppressed = suppression_table.suppressed_addresses(settings.suppression_table, definition.channels)
    return StackRules(caps=settings.campaign_caps, suppressed=suppressed)


def _plan(definition: CampaignDefinition, run_id: str, now: datetime, settings: CampaignSettings, secret: str) -> Plan:
    """Plan a run from the audience and the contact history, as of `now`."""
    return plan_run(
        definition,
        run_id,
        candidates(definition, settings),
        now=now,
        history=load_history(definition, run_id, now.astimezone(UTC).date(), settings),
        stack=_stack(settings, definition),
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
    cut = plan.batches()
    data = batches_body(cut)
    kept = uploads.put_bytes_once(settings.data_bucket, batches_key(campaign_id, plan.run_id), data, "application/gzip")
    if kept is data:  # this attempt wrote them: no need to read back what it holds
        return cut
    return [Batch.from_record(json.loads(line)) for line in gzip.decompress(kept).decode("utf-8").splitlines() if line]


def batches_body(batches: Iterable[Batch]) -> bytes:
    """The batches as gzipped JSON lines, compressed as they are written (a million sends never sit in one str)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        for batch in batches:
            packed.write(json.dumps(batch.to_record(), separators=(",", ":")).encode("utf-8") + b"\n")
    return out.getvalue()


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
    key = members_key(campaign_id, plan.run_id)
    uploads.put_bytes(settings.data_bucket, key, members_csv(plan), "text/csv; charset=utf-8")
    return key


def members_csv(plan: Plan) -> bytes:
    """The members as CSV, written row by row into the bytes (no list of a million row dicts)."""
    out = io.BytesIO()
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    fieldnames = list(plan.members[0].row()) if plan.members else ["customer_id", "state"]
    writer = csv.DictWriter(text, fieldnames=fieldnames)
    writer.writeheader()
    for member in plan.members:
        writer.writerow(member.row())
    text.flush()
    return out.getvalue()


def run_campaign(definition: CampaignDefinition, trigger: CampaignTrigger, settings: CampaignSettings) -> RunOutcome:
    """One run of one campaign, moving it through its lifecycle (running, then back to rest or completed).

    A repeated trigger for the same firing, or a campaign paused, cancelled, completed or failed, queues nothing.
    Sends due later (send_at_local, quiet hours) wait in S3 for a one-time schedule that releases them. A large
    audience is split across invocations (status SPLIT): the campaign stays running until the run's finisher.

    Raises:
        InvalidInputError: sends are due later but the stack gives no schedule group to release them with, or the
            run must be split and the stack gives no function to split it across (the campaign is then failed).
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
    if outcome.status != SPLIT:  # a split run's finisher moves the campaign on
        campaign_control.finish_run(definition, trigger.scheduled_time, settings)
    return outcome


def segment_count(settings: CampaignSettings) -> int:
    """How many invocations a run's audience is split across: one per AUDIENCE_SEGMENT_SIZE scored customers."""
    count = scores_table.item_count(settings.scores_table)
    return max(1, min(_MAX_SEGMENTS, math.ceil(count / settings.audience_segment_size)))


def _fan_out(
    definition: CampaignDefinition, run_id: str, trigger: CampaignTrigger, settings: CampaignSettings
) -> RunOutcome:
    earlier = campaigns_table.claim_run(settings.campaigns_table, definition.campaign_id, run_id)
    over = (campaigns_table.RunStatus.FANNED_OUT, campaigns_table.RunStatus.COMPLETED, campaigns_table.RunStatus.FAILED)
    if earlier in over:
        logger.info("campaign run already over", extra={"run_id": run_id, "run_status": earlier.value})
        metrics.add_metric(name="DuplicateRunsSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status="duplicate")
    # A split run keeps its split (a retried firing invokes the segments not done); a new run is split when large.
    split = campaigns_table.get_segments(settings.campaigns_table, definition.campaign_id, run_id) if earlier else None
    if split is not None or segment_count(settings) > 1:
        return _split(definition, run_id, trigger.scheduled_time, settings)
    # A run left in PLANNING by a crashed attempt is planned again: the plan is deterministic (coupon codes too:
    # they derive from the secret stored with the run) and the send ledger makes re-queued sends harmless.
    secret = campaigns_table.run_secret(settings.campaigns_table, definition.campaign_id, run_id)
    plan = _plan(definition, run_id, trigger.scheduled_time, settings, secret)
    return _queue(definition, plan, trigger.scheduled_time, settings)


def _queue(
    definition: CampaignDefinition, plan: Plan, scheduled_time: datetime, settings: CampaignSettings
) -> RunOutcome:
    """Record, write and queue what a plan decided, then mark the run fanned out with its counters."""
    run_id = plan.run_id
    today = scheduled_time.astimezone(UTC).date()
    # Before the sends leave: the next run's caps and re-entry must see them even if this one dies after queueing.
    contact_history.put_run(
        settings.data_bucket, definition.campaign_id, run_id, today, ((s.customer_id, s.channel) for s in plan.sends())
    )
    due = scheduled_time + timedelta(minutes=1)
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


# ---------- a run split across invocations (see the module docstring) ----------


def segment_key(campaign_id: str, run_id: str, segment: int, total: int) -> str:
    return f"campaign-runs/{campaign_id}/{run_id}/segments/{segment:04d}-of-{total:04d}.csv.gz"


def _step(step: str, campaign_id: str, scheduled_time: datetime, **part: int) -> dict[str, Any]:
    moment = scheduled_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {"run_step": {"step": step, "campaign_id": campaign_id, "scheduled_time": moment, **part}}


def _function_arn(settings: CampaignSettings) -> str:
    if not settings.campaign_function_arn:
        raise InvalidInputError("a run split into segments needs CAMPAIGN_FUNCTION_ARN to invoke them")
    return settings.campaign_function_arn


def _split(
    definition: CampaignDefinition, run_id: str, scheduled_time: datetime, settings: CampaignSettings
) -> RunOutcome:
    """Record the split (the first attempt's stands), schedule the deadline, invoke each segment not yet done."""
    function_arn = _function_arn(settings)
    group, target, role = settings.schedule_target()
    split = campaigns_table.split_run(
        settings.campaigns_table, definition.campaign_id, run_id, segment_count(settings), definition.stored_form()
    )
    deadline = datetime.now(UTC) + timedelta(minutes=settings.audience_run_deadline_minutes)
    schedules.create_one_time(
        group=group,
        name="deadline-" + hashlib.sha256(f"{definition.campaign_id}/{run_id}".encode()).hexdigest()[:40],
        at=deadline,
        target_arn=target,
        role_arn=role,
        payload=_step("deadline", definition.campaign_id, scheduled_time),
        dead_letter_arn=settings.async_failure_queue_arn,
    )
    if split.complete:  # every segment done, the finisher not (yet) seen: invoke it (its claim keeps it to one)
        lambdas.invoke_async(function_arn, _step("finish", definition.campaign_id, scheduled_time))
    for segment in sorted(set(range(split.total)) - split.done):
        part = {"segment": segment, "total": split.total}
        lambdas.invoke_async(function_arn, _step("segment", definition.campaign_id, scheduled_time, **part))
    logger.info("campaign run split", extra={"run_id": run_id, "segments": split.total, "done": len(split.done)})
    metrics.add_metric(name="RunSegmentsInvoked", unit=MetricUnit.Count, value=split.total - len(split.done))
    return RunOutcome(definition.campaign_id, run_id, status=SPLIT)


def run_step(step: RunStep, settings: CampaignSettings, request_id: str) -> RunOutcome:
    """Do one step of a split run: a segment, the finish, or the deadline check (`request_id`: the invocation's,
    the same on Lambda's retries of it).

    Raises:
        InvalidInputError: the run is not split, or a segment's input cannot be planned (the run is then failed).
        PermanentError: a request of the segment or the finish was refused (the run is then failed).
        TransientError: a dependency failed; Lambda retries the step, and the deadline fails the run if it never
            succeeds.
    """
    run_id = run_id_for(step.campaign_id, step.scheduled_time)
    split = campaigns_table.get_segments(settings.campaigns_table, step.campaign_id, run_id)
    if split is None:
        raise InvalidInputError(f"run {run_id} is not split into segments")
    if step.step == "deadline":
        return _check_deadline(step, run_id, split, settings)
    active = (campaigns_table.RunStatus.PLANNING, campaigns_table.RunStatus.FINISHING)
    if split.status not in active or (step.step == "segment" and split.total != step.total):
        # A late retry after the run fanned out or failed, or a segment of another split: nothing to do.
        logger.info("run step skipped", extra={"run_id": run_id, "step": step.step, "run_status": split.status.value})
        return RunOutcome(step.campaign_id, run_id, status=split.status.value)
    try:
        definition = _validated(split.definition)
        if step.step == "segment":
            return _plan_segment(definition, run_id, step, settings)
        return _finish(definition, run_id, step.scheduled_time, split, settings, request_id=request_id)
    except (InvalidInputError, PermanentError) as exc:
        _fail_split(step.campaign_id, run_id, f"run {run_id} failed in its {step.step} step: {exc}", settings)
        raise


def _plan_segment(definition: CampaignDefinition, run_id: str, step: RunStep, settings: CampaignSettings) -> RunOutcome:
    segment, total = step.segment, step.total
    assert segment is not None and total is not None  # noqa: S101 - RunStep checks a segment step names both
    assessed = assess(
        definition,
        candidates(definition, settings, (segment, total)),
        now=step.scheduled_time,
        stack=_stack(settings, definition),
    )
    key = segment_key(definition.campaign_id, run_id, segment, total)
    uploads.put_bytes(settings.data_bucket, key, facts_body(assessed.facts), "application/gzip")
    progress = campaigns_table.segment_done(
        settings.campaigns_table, definition.campaign_id, run_id, segment, assessed.considered
    )
    extra = {"run_id": run_id, "segment": segment, "segments": total, "done": len(progress.done)}
    extra |= {"considered": assessed.considered, "members": len(assessed.facts)}
    logger.info("run segment planned", extra=extra)
    if progress.complete:
        lambdas.invoke_async(_function_arn(settings), _step("finish", definition.campaign_id, step.scheduled_time))
    return RunOutcome(definition.campaign_id, run_id, status=SEGMENT_DONE, considered=assessed.considered)


def facts_body(facts: Iterable[MemberFacts]) -> bytes:
    """A segment's member facts as gzipped CSV (header first), in the order given."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as packed:
        text = io.TextIOWrapper(packed, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(MemberFacts.FIELDS)
        writer.writerows(fact.to_row() for fact in facts)
        text.flush()
        text.detach()
    return out.getvalue()


def read_facts(body: bytes) -> Iterator[MemberFacts]:
    """The facts `facts_body` wrote, one at a time (the file is decompressed as it is read)."""
    with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as packed:
        reader = csv.reader(io.TextIOWrapper(packed, encoding="utf-8", newline=""))
        # A segment written before contacts were carried lacks the last column (its sends read the profile).
        if next(reader, None) not in (list(MemberFacts.FIELDS), list(MemberFacts.FIELDS[:-1])):
            raise InvalidInputError("a run segment's facts have unexpected columns")
        yield from (MemberFacts.from_row(row) for row in reader)


def merged_facts(parts: Iterable[Iterator[MemberFacts]]) -> Iterator[MemberFacts]:
    """Every segment's facts in customer id order, as one run's reading of the whole audience gives them."""
    return heapq.merge(*parts, key=lambda fact: fact.customer_id)


def _finish(
    definition: CampaignDefinition,
    run_id: str,
    scheduled_time: datetime,
    split: campaigns_table.Segments,
    settings: CampaignSettings,
    *,
    request_id: str,
) -> RunOutcome:
    if not split.complete:
        raise InvalidInputError(f"run {run_id} has {len(split.done)} of {split.total} segments done; nothing to finish")
    if not campaigns_table.claim_finish(settings.campaigns_table, definition.campaign_id, run_id, request_id):
        logger.info("run finish held by another invocation", extra={"run_id": run_id})
        metrics.add_metric(name="DuplicateFinishesSkipped", unit=MetricUnit.Count, value=1)
        return RunOutcome(definition.campaign_id, run_id, status="duplicate")
    keys = [segment_key(definition.campaign_id, run_id, k, split.total) for k in range(split.total)]
    parts = [read_facts(uploads.read_bytes(settings.data_bucket, key)) for key in keys]
    plan = decide(
        definition,
        run_id,
        merged_facts(parts),
        considered=sum(split.considered.values()),
        now=scheduled_time,
        history=load_history(definition, run_id, scheduled_time.astimezone(UTC).date(), settings),
        stack=_stack(settings),
        secret=campaigns_table.run_secret(settings.campaigns_table, definition.campaign_id, run_id),
    )
    outcome = _queue(definition, plan, scheduled_time, settings)
    campaign_control.finish_run(definition, scheduled_time, settings)
    return outcome


def _check_deadline(
    step: RunStep, run_id: str, split: campaigns_table.Segments, settings: CampaignSettings
) -> RunOutcome:
    if split.status in (campaigns_table.RunStatus.PLANNING, campaigns_table.RunStatus.FINISHING):
        finishing = split.status is campaigns_table.RunStatus.FINISHING
        reason = f"run {run_id} did not fan out by its deadline " + (
            "(its finish never completed)" if finishing else f"({len(split.done)} of {split.total} segments done)"
        )
        _fail_split(step.campaign_id, run_id, reason, settings)
        return RunOutcome(step.campaign_id, run_id, status=campaigns_table.RunStatus.FAILED.value)
    return RunOutcome(step.campaign_id, run_id, status=split.status.value)


def _fail_split(campaign_id: str, run_id: str, reason: str, settings: CampaignSettings) -> None:
    """Fail the run and its campaign (a run that fanned out meanwhile is left as it is)."""
    if campaigns_table.fail_run(settings.campaigns_table, campaign_id, run_id, reason):
        logger.warning("campaign run failed", extra={"run_id": run_id, "reason": reason})
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
        campaign_control.fail(campaign_id, reason, settings)
