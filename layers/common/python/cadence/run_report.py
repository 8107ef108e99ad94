"""What became of a run's sends: completion counters from the batch ledger, the run's completion, and queuing
again the sends that failed or were held for a paused campaign."""

import gzip
import json
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cadence.campaigns.plan import Batch
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, queues, sends_table, uploads
from cadence.dal.sends_table import BatchStatus, Outcome, SendStatus
from cadence.observability import logger
from cadence.run_files import batches_key

# Each send ends in exactly one of these; `held` counts the sends waiting for a paused campaign to resume, and
# `unsettled` the queued sends with no outcome yet.
OUTCOMES = ("sent", "rejected", "suppressed", "failed", "in_doubt", "cancelled")
_NAMES = {status: status.value.lower() for status in SendStatus} | {SendStatus.UNCERTAIN: "in_doubt"}


def queued_sends(run: Mapping[str, Any]) -> int:
    """How many sends a fanned-out run queued, now and for later releases."""
    return int(run.get("sends_queued") or 0) + int(run.get("sends_deferred") or 0)


def run_counters(sends_table_name: str, run_id: str, queued: int) -> dict[str, int]:
    """Sends of the run per outcome, plus `held` and `unsettled` (queued minus those): the run is done at 0.

    A send FAILED while its batch may still be redelivered counts as failed until it is sent.
    """
    return _counters(sends_table.run_batches(sends_table_name, run_id), queued)


def _counters(batches: Mapping[tuple[str, str], sends_table.StoredBatch], queued: int) -> dict[str, int]:
    counts = Counter(_NAMES[outcome.status] for batch in batches.values() for outcome in batch.outcomes.values())
    counters = {name: counts.get(name, 0) for name in (*OUTCOMES, "held")}
    counters["unsettled"] = max(queued - sum(counters.values()), 0)
    return counters


def record_settled(
    campaigns_table_name: str,
    sends_table_name: str,
    campaign_id: str,
    run_id: str,
    *,
    sends: int,
    newly_final: bool,
) -> bool:
    """Count `sends` more of the run's sends as done (dispatch, after settling a batch; negative when a send
    failed for good is retried and fails again); completes the run when that reaches what it queued.

    `newly_final`: some send reached its final outcome, even if the count did not move (a send that had failed
    for good, retried and sent). Returns whether this call completed the run.
    """
    if sends:
        run = campaigns_table.add_settled(campaigns_table_name, campaign_id, run_id, sends)
    elif newly_final:
        run = campaigns_table.get_run(campaigns_table_name, campaign_id, run_id) or {}
    else:
        return False
    settled = int(run.get("sends_settled") or 0)
    if run.get("status") != campaigns_table.RunStatus.FANNED_OUT or settled < queued_sends(run):
        return False
    return complete_if_settled(campaigns_table_name, sends_table_name, campaign_id, run_id)


def complete_once_quiet(
    campaigns_table_name: str,
    sends_table_name: str,
    campaign_id: str,
    run_id: str,
    *,
    quiet_seconds: float,
    now: datetime | None = None,
) -> tuple[bool, float | None]:
    """(whether this call completed the run, in how many seconds to ask again while it is still open, else None),
    for a delivery of a batch settled before.

    The ledger (one Query of the whole run) is read only once no batch was counted for `quiet_seconds`: while the
    counter moves, the workers moving it complete the run, and a re-asking delivery only comes back once the run
    could have gone quiet. Even then one delivery a quiet period reads it for the run, the others ask again later:
    without this, every duplicate of a settled batch read the whole ledger on each redelivery, and on a run with
    hundreds of them (workers killed mid-invocation bring back their settled batches) those reads kept the
    workers from the batches still to send, so the run stayed quiet and the reads went on.
    """
    run = campaigns_table.get_run(campaigns_table_name, campaign_id, run_id)
    if run is None or run.get("status") != campaigns_table.RunStatus.FANNED_OUT:
        return False, None
    settled_at = run.get("settled_at")
    now = now or datetime.now(UTC)
    if isinstance(settled_at, str):
        quiet_for = (now - datetime.fromisoformat(settled_at)).total_seconds()
        if quiet_for < quiet_seconds:
            return False, quiet_seconds - quiet_for
    if quiet_seconds and not campaigns_table.take_ledger_check(
        campaigns_table_name, campaign_id, run_id, every_seconds=quiet_seconds
    ):
        return False, quiet_seconds
    completed = complete_if_settled(campaigns_table_name, sends_table_name, campaign_id, run_id)
    return completed, None if completed else quiet_seconds


def complete_if_settled(campaigns_table_name: str, sends_table_name: str, campaign_id: str, run_id: str) -> bool:
    """Move the fanned-out run to COMPLETED with its final counters if the ledger shows every queued send done
    (final, or failed on its last delivery). Returns whether this call completed it.

    The ledger decides, not the run's counter: the counter only says when to look (a worker dying between its
    two writes leaves it short; `cadence campaign show` calls this too, and reconciles such a run).
    """
    run = campaigns_table.get_run(campaigns_table_name, campaign_id, run_id)
    if run is None or run.get("status") != campaigns_table.RunStatus.FANNED_OUT:
        return False
    queued = queued_sends(run)
    batches = sends_table.run_batches(sends_table_name, run_id)
    done = sum(sends_table.counted(batch.outcomes, exhausted=batch.exhausted) for batch in batches.values())
    if done < queued:
        return False
    counters = _counters(batches, queued)
    completed = campaigns_table.complete_run(campaigns_table_name, campaign_id, run_id, counters)
    if completed:
        logger.info("campaign run completed", extra={"run_id": run_id, **counters})
    return completed


def retry_failed(settings: CampaignSettings, campaign_id: str, run_id: str) -> int:
    """Queue again the run's sends that failed or were never settled (nothing in doubt); returns how many.

    Each batch goes back with only those sends, under its own batch id, so the ledger keeps every other outcome
    and the batch's lease still guards against a delivery under way. Batches due later are left to their release.
    Sends that had failed for good count as not done again, so a completed run is open until they settle.
    """
    picked = _pick(
        settings, campaign_id, run_id, lambda outcome: outcome is None or outcome.status is SendStatus.FAILED
    )
    reopened = 0
    for found, _ in picked:
        if (
            found is not None
            and found.exhausted
            and sends_table.reopen_batch(settings.sends_table, run_id, found.channel, found.batch_id)
        ):
            reopened += sum(outcome.status is SendStatus.FAILED for outcome in found.outcomes.values())
    if reopened:
        campaigns_table.reopen_run(settings.campaigns_table, campaign_id, run_id)
        campaigns_table.add_settled(settings.campaigns_table, campaign_id, run_id, -reopened)
    return _send(settings, [batch for _, batch in picked])


def release_held(settings: CampaignSettings, campaign_id: str) -> int:
    """Queue again every send dispatch held while the campaign was paused (after a resume or a cancel, which
    dispatch then sends or ends CANCELLED); returns how many."""
    stored = campaigns_table.get_campaign(settings.campaigns_table, campaign_id)
    if stored is None:
        return 0
    released = 0
    for run_id in sorted(stored.held_runs):
        picked = _pick(
            settings, campaign_id, run_id, lambda outcome: outcome is not None and outcome.status is SendStatus.HELD
        )
        released += _send(settings, [batch for _, batch in picked])
        # After queuing: a run forgotten before its sends left would be lost if this call died in between.
        campaigns_table.forget_held_run(settings.campaigns_table, campaign_id, run_id)
    logger.info("held sends queued again", extra={"campaign_id": campaign_id, "sends": released})
    return released


def _pick(
    settings: CampaignSettings, campaign_id: str, run_id: str, wanted: Callable[[Outcome | None], bool]
) -> list[tuple[sends_table.StoredBatch | None, Batch]]:
    """The run's released batches cut down to the sends `wanted` picks (given the ledger's outcome, None when it
    has none), each with its ledger item; skips batches a delivery holds now and batches left with no send."""
    kept = uploads.read_bytes(settings.data_bucket, batches_key(campaign_id, run_id))
    stored = sends_table.run_batches(settings.sends_table, run_id)
    now = datetime.now(UTC)
    picked = []
    for line in gzip.decompress(kept).decode("utf-8").splitlines():
        batch = Batch.from_record(json.loads(line))
        found = stored.get((batch.channel, batch.batch_id))
        if batch.release_at > now or (found and found.status is BatchStatus.SETTLED):
            continue
        if found and found.status is not BatchStatus.PARTIAL and not found.lease_expired:
            continue  # a delivery holds it now
        outcomes = found.outcomes if found else {}
        sends = tuple(send for send in batch.sends if wanted(outcomes.get(send.customer_id)))
        if sends:
            picked.append(
                (found, Batch(batch.campaign_id, run_id, batch.channel, batch.batch_id, batch.release_at, sends))
            )
    return picked


def _send(settings: CampaignSettings, batches: list[Batch]) -> int:
    queues.send_json_batches(settings.dispatch_queue_url, (batch.to_message() for batch in batches))
    return sum(len(batch.sends) for batch in batches)
