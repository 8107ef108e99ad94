"""A campaign's lifecycle: the states it moves through and the moves that are allowed.

    draft ──store with a schedule──▶ scheduled ──firing──▶ running ──run fanned out──▶ scheduled (more firings)
      ▲ │                               │  ▲                  │                       ▶ completed (last firing)
      │ └──run now──▶ running ──▶ draft  │  └─resume─ paused ◀┘ pause                  ▶ failed (invalid to run)
      cancel from any state but completed and cancelled ──▶ cancelled

A draft has no schedule and runs only when fired by hand (`cadence campaign run-now`), staying a draft. Paused and
cancelled campaigns send nothing: their firings start no run and dispatch suppresses their queued sends. A failed
campaign's firings start no run until it is stored again or resumed. Completed and cancelled are final.

Pure logic: cadence.campaign_control makes the moves with conditional writes and keeps each campaign's EventBridge
Scheduler schedule in step (``schedule_state``).
"""

from enum import StrEnum
from typing import Literal

from cadence.errors import InvalidInputError


class State(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Action(StrEnum):
    STORE = "store"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    START_RUN = "start-run"
    FINISH_RUN = "finish-run"
    FAIL = "fail"


FINAL = frozenset({State.COMPLETED, State.CANCELLED})
# States whose queued sends may leave: a run of a draft (run now) or a completed campaign's deferred sends too.
SENDING = frozenset({State.DRAFT, State.SCHEDULED, State.RUNNING, State.COMPLETED, State.FAILED})

_FROM: dict[Action, frozenset[State | None]] = {
    Action.STORE: frozenset({None, State.DRAFT, State.SCHEDULED, State.PAUSED, State.FAILED}),
    Action.PAUSE: frozenset({State.SCHEDULED, State.RUNNING}),
    Action.RESUME: frozenset({State.PAUSED, State.FAILED}),
    Action.CANCEL: frozenset({State.DRAFT, State.SCHEDULED, State.RUNNING, State.PAUSED, State.FAILED}),
    Action.START_RUN: frozenset({State.DRAFT, State.SCHEDULED, State.RUNNING}),
    Action.FINISH_RUN: frozenset({State.RUNNING}),
    Action.FAIL: frozenset({State.DRAFT, State.SCHEDULED, State.RUNNING}),
}

_TO = {
    Action.PAUSE: State.PAUSED,
    Action.CANCEL: State.CANCELLED,
    Action.START_RUN: State.RUNNING,
    Action.FAIL: State.FAILED,
}

_WHY_NOT = {
    State.RUNNING: "a run is in progress; try again when it has fanned out (or pause it first)",
    State.COMPLETED: "it is completed; store it under a new campaign_id to run it again",
    State.CANCELLED: "it is cancelled; store it under a new campaign_id to run it again",
    State.PAUSED: "it is paused; resume it first",
    State.DRAFT: "it is a draft (no schedule); store it with a schedule, or fire it with run-now",
    State.FAILED: "it failed; store it again or resume it",
}


class IllegalTransitionError(InvalidInputError):
    """The move is not allowed from the campaign's current state; the message says why and what to do."""


def allowed_from(action: Action) -> frozenset[State | None]:
    """The states `action` may start from (None: the campaign is not stored yet)."""
    return _FROM[action]


def next_state(
    current: State | None, action: Action, *, has_schedule: bool, more_firings: bool = True, active: bool = True
) -> State:
    """The state `action` moves a campaign to from `current`.

    `has_schedule`: the campaign's definition has a schedule; `more_firings`: its schedule fires again after the run
    that just finished; `active`: the stored definition's legacy switch (false stores a new campaign paused).

    Raises:
        IllegalTransitionError: the move is not allowed from `current`.
    """
    if current not in _FROM[action]:
        if current is None:
            raise IllegalTransitionError(f"cannot {action.value}: the campaign is not stored")
        reason = _WHY_NOT.get(current, f"it is {current.value}")
        raise IllegalTransitionError(f"cannot {action.value} a {current.value} campaign: {reason}")
    resting = State.SCHEDULED if has_schedule else State.DRAFT
    if action is Action.STORE:
        stays_paused = current is State.PAUSED or (current is None and not active)
        return State.PAUSED if stays_paused else resting
    if action is Action.FINISH_RUN:
        return State.COMPLETED if has_schedule and not more_firings else resting
    return _TO.get(action, resting)  # a resume returns to rest


def schedule_state(state: State) -> Literal["ENABLED", "DISABLED"] | None:
    """What the campaign's own schedule should be in `state`: enabled, disabled, or absent (None)."""
    if state in (State.SCHEDULED, State.RUNNING, State.FAILED):
        # A failed campaign's firings are refused by the run itself; its schedule stays for a resume.
        return "ENABLED"
    if state is State.PAUSED:
        return "DISABLED"
    return None
