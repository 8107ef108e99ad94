"""Issue 10's chaos test, scaled down for `make test` (the 20,000-recipient run is `make bench`'s chaos section):
SES throttled beyond its rate, 15 % of its calls failing, dispatch workers killed at random moments mid-batch."""

from collections.abc import Iterator

import pytest

from infra.chaos import dispatch_overrides, run_chaos
from infra.local_stack import DEFAULT_WORK_DIR, LocalStack
from infra.runtime import WorkerFaults

# 20 batches at 100 sends/s, seeded. A dispatch worker makes about four AWS calls a batch (campaign read, claim,
# SendBulkEmail, settle), so 20 batches take at least 80; with this share and seed the first worker dies after its
# 51st call (infra.runtime draws per worker from "<seed>:<spawn>"), so at least one kill is certain, whatever the
# throttling adds. Each kill costs a lease (15 s), which is most of the test's time.
RECIPIENTS = 1_000
RATE = 100.0
KILL_SHARE = 0.03
SEED = 10


@pytest.fixture(scope="module")
def chaos_stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """A second stack in the session's endpoint, whose dispatch workers die now and then (see infra.chaos)."""
    with LocalStack(
        port=0,
        beside=local_stack,
        stack_name="chaos-local",
        parameters={"Brand": "chaos", "SenderEmail": "hello@chaos.example", "SmsSenderId": "CHAOS"},
        work_dir=DEFAULT_WORK_DIR / "pytest-chaos",
        environment_overrides=dispatch_overrides(),
        worker_faults={"DispatchFunction": WorkerFaults(kill_share=KILL_SHARE, seed=SEED)},
    ) as stack:
        yield stack


def test_every_recipient_ends_once_and_ses_matches_the_ledger_when_ses_throttles_fails_and_workers_die(
    chaos_stack: LocalStack,
) -> None:
    report = run_chaos(chaos_stack, recipients=RECIPIENTS, rate=RATE, failure_share=0.15, seed=SEED, timeout=300)

    summary = report.summary()
    # the faults happened: throttled destinations, failed calls, killed workers
    assert report.shim_throttled > 0, summary
    assert report.shim_failed_calls > 0, summary
    assert report.worker_kills > 0, summary
    # every recipient in exactly one final state, SES's messages match the ledger's SENT exactly (IN_DOUBT is the
    # only state allowed to be unmatched), the run COMPLETED with counters that add up to what it queued
    assert report.problems == [], summary
    assert report.run_status == "COMPLETED"
    assert sum(report.outcomes.values()) == RECIPIENTS
    assert report.outcomes["SENT"] + report.outcomes["IN_DOUBT"] == RECIPIENTS, summary
    assert report.outcomes["SENT"] <= report.shim_messages <= RECIPIENTS
