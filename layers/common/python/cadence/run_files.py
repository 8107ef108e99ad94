"""Where a campaign run's files live in the data bucket (shared by the planner, dispatch and the CLI)."""


def batches_key(campaign_id: str, run_id: str) -> str:
    """The run's batches as its first attempt cut them: what every retry and resume queues again."""
    return f"campaign-runs/{campaign_id}/{run_id}/batches.jsonl.gz"
