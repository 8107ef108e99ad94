"""Serving scores: load the published model once per container, score a batch of customers, write the scores."""

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools.metrics import MetricUnit

from cadence import scoring
from cadence.config import ScoreSettings
from cadence.dal import models, profiles_table, scores_table
from cadence.observability import logger, metrics


@cache
def loaded_model(bucket: str, version: str) -> scoring.ScoringModel:
    """The model the template names, fetched and verified once per container."""
    model_bytes, manifest = models.load_artifacts(bucket, version)
    model = scoring.load_model(model_bytes, manifest)
    logger.info("model loaded", extra={"model_version": model.version})
    return model


def score_customers(customer_ids: Sequence[str], settings: ScoreSettings) -> int:
    """Score the customers that have a profile and write their scores in batches; returns how many."""
    model = loaded_model(settings.model_bucket, settings.model_version)
    # One dict per customer: the profile with its order and event aggregates (both tables, one BatchGetItem).
    found = profiles_table.get_many(settings.profiles_table, customer_ids, activity_table=settings.activity_table)
    profiles = list(found.values())
    if not profiles:
        return 0
    results = scoring.score_profiles(profiles, model, datetime.now(UTC))
    scores_table.put_many(
        settings.scores_table,
        [
            {
                "customer_id": result.customer_id,
                "score": result.score,
                "decile": result.decile,
                "model_version": result.model_version,
                "scored_at": result.scored_at,
            }
            for result in results
        ],
    )
    written = len(results)
    metrics.add_metric(name="CustomersScored", unit=MetricUnit.Count, value=written)
    return written
