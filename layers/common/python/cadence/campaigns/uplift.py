"""How much a campaign changed what its members did: treated against holdout, with a confidence interval.

Pure arithmetic on per-member outcomes (converted 0/1, revenue), no numpy: the layer carries no numpy, and
the sums are one pass over the members. The difference of two means is estimated with unpooled (Welch)
variances and a normal approximation, which holds for the audience sizes a campaign has (hundreds and up per
group); each figure carries its group sizes so a reader sees when it does not. The holdout is assigned at
random (a hash of campaign and customer) before anything else about the member is known, so treated minus
holdout is the effect of being in the campaign (intention to treat), whatever share of the treated the
campaign could reach. Divided by that share it is the effect on those actually messaged (Bloom's estimator,
which assumes the campaign does nothing to a member it never reached).
"""

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """Treated mean minus holdout mean, with its interval at `confidence` and a two-sided p-value.

    `difference`, `low`, `high` and `p_value` are None when a group has fewer than two members.
    """

    treated_n: int
    holdout_n: int
    treated_mean: float | None
    holdout_mean: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    confidence: float = CONFIDENCE

    def scaled(self, factor: float) -> "Estimate":
        """The effect per unit of `factor` (e.g. per messaged member: divide by the share reached)."""

        def scale(value: float | None) -> float | None:
            return None if value is None or factor <= 0 else value / factor

        return Estimate(
            self.treated_n, self.holdout_n, self.treated_mean, self.holdout_mean,
            scale(self.difference), scale(self.low), scale(self.high), self.p_value if factor > 0 else None,
            self.confidence,
        )  # fmt: skip

    def covers(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Moments:
    n: int
    mean: float
    variance: float  # sample variance (n - 1)


def _moments(values: Iterable[float]) -> _Moments:
    # Welford's update: one pass, and no loss of precision when revenue sums grow large.
    n, mean, m2 = 0, 0.0, 0.0
    for value in values:
        n += 1
        delta = value - mean
        mean += delta / n
        m2 += delta * (value - mean)
    return _Moments(n, mean, m2 / (n - 1) if n > 1 else 0.0)


def difference(treated: Iterable[float], holdout: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean of `treated` minus mean of `holdout` (Welch standard error, normal interval and p-value)."""
    a, b = _moments(treated), _moments(holdout)
    means = (a.mean if a.n else None, b.mean if b.n else None)
    if a.n < 2 or b.n < 2:
        return Estimate(a.n, b.n, *means, None, None, None, None, confidence)
    diff = a.mean - b.mean
    se = math.sqrt(a.variance / a.n + b.variance / b.n)
    if se == 0:
        # Every member of each group did the same (e.g. nobody bought): the difference is exact.
        return Estimate(a.n, b.n, *means, diff, diff, diff, 1.0 if diff == 0 else 0.0, confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p_value = 2 * (1 - NormalDist().cdf(abs(diff) / se))
    return Estimate(a.n, b.n, *means, diff, diff - z * se, diff + z * se, p_value, confidence)
