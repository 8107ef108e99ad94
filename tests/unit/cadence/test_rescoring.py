"""Properties of the re-score plan: which customers are stale, and how they are cut into ScoreQueue messages."""

from hypothesis import given
from hypothesis import strategies as st

from cadence.dal.profile_ids import ScoredVersion
from cadence.events import ScoreRequest
from cadence.rescoring import score_request_bodies, stale_customer_ids

DEPLOYED = "v2"
ids = st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=8), unique=True, max_size=500)
versions = st.sampled_from([None, "v1", DEPLOYED, "V2", ""])


@given(ids, st.integers(min_value=1, max_value=100))
def test_batches_hold_one_to_batch_size_ids_and_together_every_id_once_in_order(
    customer_ids: list[str], batch_size: int
) -> None:
    bodies = list(score_request_bodies(customer_ids, batch_size))

    assert [cid for body in bodies for cid in body["customer_ids"]] == customer_ids
    assert all(1 <= len(body["customer_ids"]) <= batch_size for body in bodies)
    assert len(bodies) == -(-len(customer_ids) // batch_size)
    # every body is a valid score request for the score function
    assert all(ScoreRequest.model_validate(body).reason == "rescore" for body in bodies)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), versions), max_size=200))
def test_stale_customers_are_exactly_those_not_scored_by_the_deployed_version(
    rows: list[tuple[str, str | None]],
) -> None:
    profiles = [ScoredVersion(customer_id, version) for customer_id, version in rows]

    stale = list(stale_customer_ids(profiles, DEPLOYED))

    assert stale == [customer_id for customer_id, version in rows if version != DEPLOYED]
