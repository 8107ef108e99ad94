"""Re-scoring after a model change: queue every customer the deployed model version has not scored.

Ingest queues a customer for scoring when their profile changes; a new model version changes no profile,
so without this the customers who stay quiet keep the old model's score. Run daily and by hand after a
deploy. A repeated run queues the customers still waiting again, which costs a second scoring and nothing
else: the score function's writes overwrite with the same values.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit

from cadence.config import RescoreSettings
from cadence.dal import profile_ids, queues
from cadence.dal.profile_ids import ScoredVersion
from cadence.observability import logger, metrics

RESCORE_REASON: Final = "rescore"


@dataclass(frozen=True, slots=True)
class RescoreOutcome:
    model_version: str
    profiles_scanned: int
    customers_queued: int
    messages_sent: int


def stale_customer_ids(profiles: Iterable[ScoredVersion], model_version: str) -> Iterator[str]:
    """Ids of the profiles never scored or scored by another model version, in the given order."""
    return (profile.customer_id for profile in profiles if profile.model_version != model_version)


def score_request_bodies(customer_ids: Iterable[str], batch_size: int) -> Iterator[dict[str, Any]]:
    """ScoreQueue bodies of at most ``batch_size`` ids each, in order, losing and repeating none."""
    for chunk in queues.chunked(customer_ids, batch_size):
        yield {"customer_ids": chunk, "reason": RESCORE_REASON}


def queue_stale_customers(settings: RescoreSettings) -> RescoreOutcome:
    """Scan the profiles and queue the stale ones for scoring, streaming: memory stays flat as the table grows.

    Raises:
        TransientError: a scan page or some messages failed after retries; the whole run may be repeated.
        PermanentError: the table or queue rejected the request.
    """
    scanned = _Counter(profile_ids.scan_model_versions(settings.profiles_table, settings.scores_table))
    stale = _Counter(stale_customer_ids(scanned, settings.model_version))
    sent = queues.send_json_batches(settings.score_queue_url, score_request_bodies(stale, settings.rescore_batch_size))
    outcome = RescoreOutcome(settings.model_version, scanned.count, stale.count, sent)
    logger.info(
        "stale customers queued for scoring",
        extra={
            "model_version": outcome.model_version,
            "profiles_scanned": outcome.profiles_scanned,
            "customers_queued": outcome.customers_queued,
            "messages_sent": outcome.messages_sent,
        },
    )
    metrics.add_metric(name="CustomersQueuedForRescore", unit=MetricUnit.Count, value=outcome.customers_queued)
    return outcome


class _Counter[T]:
    """Passes items through and counts them."""

    def __init__(self, items: Iterable[T]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[T]:
        for item in self._items:
            self.count += 1
            yield item
