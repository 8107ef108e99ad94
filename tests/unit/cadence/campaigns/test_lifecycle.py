"""The campaign lifecycle's moves: every (state, action) pair, allowed or refused with a reason."""

import pytest

from cadence.campaigns.lifecycle import Action, IllegalTransitionError, State, next_state, schedule_state

D, S, R, C, P, X, F = (
    State.DRAFT,
    State.SCHEDULED,
    State.RUNNING,
    State.COMPLETED,
    State.PAUSED,
    State.CANCELLED,
    State.FAILED,
)

# (from, action) -> to, for a campaign with a schedule that fires again; every pair not listed is refused.
SCHEDULED_CAMPAIGN = {
    (None, Action.STORE): S,
    (D, Action.STORE): S,
    (S, Action.STORE): S,
    (P, Action.STORE): P,
    (F, Action.STORE): S,
    (S, Action.PAUSE): P,
    (R, Action.PAUSE): P,
    (P, Action.RESUME): S,
    (F, Action.RESUME): S,
    (D, Action.CANCEL): X,
    (S, Action.CANCEL): X,
    (R, Action.CANCEL): X,
    (P, Action.CANCEL): X,
    (F, Action.CANCEL): X,
    (D, Action.START_RUN): R,
    (S, Action.START_RUN): R,
    (R, Action.START_RUN): R,
    (R, Action.FINISH_RUN): S,
    (D, Action.FAIL): F,
    (S, Action.FAIL): F,
    (R, Action.FAIL): F,
}


@pytest.mark.parametrize("current", [None, *State])
@pytest.mark.parametrize("action", list(Action))
def test_every_move_of_a_scheduled_campaign_goes_where_the_table_says_or_is_refused(
    current: State | None, action: Action
) -> None:
    expected = SCHEDULED_CAMPAIGN.get((current, action))
    if expected is None:
        with pytest.raises(IllegalTransitionError, match=f"cannot {action.value}"):
            next_state(current, action, has_schedule=True)
    else:
        assert next_state(current, action, has_schedule=True) is expected


def test_without_a_schedule_a_campaign_rests_as_a_draft() -> None:
    assert next_state(None, Action.STORE, has_schedule=False) is D
    assert next_state(R, Action.FINISH_RUN, has_schedule=False) is D  # run-now keeps a draft a draft
    assert next_state(P, Action.RESUME, has_schedule=False) is D


def test_the_last_firing_completes_the_campaign() -> None:
    assert next_state(R, Action.FINISH_RUN, has_schedule=True, more_firings=False) is C


def test_a_new_campaign_stored_inactive_is_paused() -> None:
    assert next_state(None, Action.STORE, has_schedule=True, active=False) is P


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(IllegalTransitionError, match="store it under a new campaign_id"):
        next_state(C, Action.STORE, has_schedule=True)
    with pytest.raises(IllegalTransitionError, match="a run is in progress"):
        next_state(R, Action.STORE, has_schedule=True)


def test_the_schedule_follows_the_state() -> None:
    assert {state: schedule_state(state) for state in State} == {
        D: None,
        S: "ENABLED",
        R: "ENABLED",
        C: None,
        P: "DISABLED",
        X: None,
        F: "ENABLED",
    }
