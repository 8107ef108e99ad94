"""What became of a run's sends: completion counters from the batch ledger, and re-queuing the failed ones."""

import gzip
import json
from collections import Counter
from datetime import UTC, datetime

from cadence.campaign_runs import batches_key
from cadence.campaigns.plan import Batch
from cadence.dal import queues, sends_table, uploads
from cadence.dal.sends_table import BatchStatus, SendStatus

# Each send ends in exactly one of these; `unsettled` counts the queued sends without one yet.
OUTCOMES = ("sent", "rejected", "suppressed", "failed", "in_doubt", "cancelled")
_NAMES = {status: status.value.lower() for status in SendStatus} | {SendStatus.UNCERTAIN: "in_doubt"}


def run_counters(sends_table_name: str, run_id: str, queued: int) -> dict[str, int]:
    """Sends of the run per final outcome, plus `unsettled` (queued minus settled): the run is done at 0.

    A send FAILED while its batch may still be redelivered counts as failed until it is sent.
    """
    batches = sends_table.run_batches(sends_table_name, run_id)
    counts = Counter(_NAMES[outcome.status] for batch in batches.values() for outcome in batch.outcomes.values())
    counters = {name: counts.get(name, 0) for name in OUTCOMES}
    counters["unsettled"] = max(queued - sum(counters.values()), 0)
    return counters


def retry_failed(
    sends_table_name: str, data_bucket: str, dispatch_queue_url: str, campaign_id: str, run_id: str
) -> int:
    """Queue again the run's sends that failed or were never settled (nothing in doubt); returns how many.

    Each batch goes back with only those sends, under its own batch id, so the ledger keeps every other outcome
    and the batch's lease still guards against a delivery under way. Batches due later are left to their release.
    """
    kept = gzip.decompress(uploads.read_bytes(data_bucket, batches_key(campaign_id, run_id))).decode("utf-8")
    stored = sends_table.run_batches(sends_table_name, run_id)
    now = datetime.now(UTC)
    messages = []
    for line in kept.splitlines():
        batch = Batch.from_record(json.loads(line))
        found = stored.get((batch.channel, batch.batch_id))
        if batch.release_at > now or (found and found.status is BatchStatus.SETTLED):
            continue
        if found and found.status is not BatchStatus.PARTIAL and not found.lease_expired:
            continue  # a delivery holds it now
        outcomes = found.outcomes if found else {}
        retry = [
            send
            for send in batch.sends
            if send.customer_id not in outcomes or outcomes[send.customer_id].status is SendStatus.FAILED
        ]
        if retry:
            messages.append(
                Batch(batch.campaign_id, run_id, batch.channel, batch.batch_id, batch.release_at, tuple(retry))
            )
    queues.send_json_batches(dispatch_queue_url, (batch.to_message() for batch in messages))
    return sum(len(batch.sends) for batch in messages)
