"""Pacing one dispatch worker's sends so the fleet stays at or just under the account's send rate.

Each worker starts at its share of the account's rate (GetAccount's MaxSendRate divided by the fleet's
MaximumConcurrency), speeds up by a quarter after each call SES took whole, up to the account's rate (a fleet
running below its cap leaves rate unused), and halves after a call SES throttled (additive increase would take
too long to find the rate after a cold start; the halving is TCP's). A call of n messages moves the worker's next
send n / rate seconds on, so a worker never bursts beyond one call. Pure: the clock is given, the caller sleeps.
"""

from dataclasses import dataclass, field

_SPEED_UP = 1.25
_SLOW_DOWN = 0.5
# The slowest a worker goes: a quarter of its share, so a throttled fleet still makes progress.
_FLOOR_SHARE = 0.25


@dataclass
class Pacer:
    """One worker's send rate (messages per second) and when it may send next."""

    account_rate: float
    concurrency: int
    rate: float = field(init=False)
    _next_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.rate = self.share

    @property
    def share(self) -> float:
        return self.account_rate / max(1, self.concurrency)

    def delay(self, now: float) -> float:
        """Seconds to wait from `now` before the next call may leave."""
        return max(0.0, self._next_at - now)

    def sent(self, now: float, messages: int, *, throttled: bool) -> None:
        """Record a call of `messages` made at `now`, and whether SES throttled any of them."""
        if throttled:
            self.rate = max(self.share * _FLOOR_SHARE, self.rate * _SLOW_DOWN)
        else:
            self.rate = min(self.account_rate, self.rate * _SPEED_UP)
        self._next_at = max(now, self._next_at) + messages / self.rate

    def set_account_rate(self, account_rate: float) -> None:
        """A new quota from GetAccount: the worker's rate stays within it."""
        self.account_rate = account_rate
        self.rate = min(max(self.rate, self.share * _FLOOR_SHARE), account_rate)
