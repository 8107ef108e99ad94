"""Which orders a campaign run gets credit for, and what each of its members bought in its window.

Pure logic over what the report read: the run's members (members.csv), the orders in its window (the order
history), and the later contacts of other runs (the contact history). For an order of a member placed in the
run's window, [run time, run time + window):

- it carries the coupon code this run sent the member: attributed to the run (`coupon`);
- it carries another code: not this run's (that code came from elsewhere);
- it carries none: attributed to the run (`window`, last touch) unless another run contacted the customer after
  this run and no later than the order (that run is the last touch).

Members of the holdout and members the run could not reach go through the same rules, so what the treated and
the holdout bought is measured alike. The uplift itself compares every order of the window (`window_orders`,
`window_revenue`), not only the attributed ones: whether a member also got a later campaign depends on this run
(caps count its sends), so crediting later touches would take more orders away from the holdout than from the
treated and overstate the effect.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cadence.orders import OrderRecord

# Members assigned to the campaign (treated, whether it could reach them or not) and its randomised control.
HOLDOUT = "holdout"
NOT_ASSIGNED = frozenset({"reentry_excluded"})  # left out before the holdout was drawn: neither group
REACHED_STATES = frozenset({"queued", "deferred"})


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class RunMember:
    """One row of a run's members.csv."""

    customer_id: str
    state: str
    variant: str = ""
    coupon_code: str = ""
    decile: int | None = None

    @property
    def treated(self) -> bool:
        return self.state != HOLDOUT and self.state not in NOT_ASSIGNED

    @property
    def in_experiment(self) -> bool:
        return self.state not in NOT_ASSIGNED

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> "RunMember":
        decile = row.get("decile") or ""
        return cls(
            customer_id=row["customer_id"],
            state=row["state"],
            variant=row.get("variant") or "",
            coupon_code=(row.get("coupon_code") or "").upper(),
            decile=int(decile) if decile else None,
        )


@dataclass(slots=True)
class MemberOutcome:
    """What one member bought in the run's window, and how much of it the run gets credit for."""

    window_orders: int = 0
    window_revenue: float = 0.0
    attributed_orders: int = 0
    attributed_revenue: float = 0.0
    by_coupon: int = 0
    by_window: int = 0

    @property
    def converted(self) -> float:
        return 1.0 if self.window_orders else 0.0


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    days: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass
class Attribution:
    outcomes: dict[str, MemberOutcome] = field(default_factory=dict)
    # Orders attributed to the run, of its treated members, by how.
    orders_by_coupon: int = 0
    orders_by_window: int = 0
    attributed_revenue: float = 0.0
    # Orders of the window not credited: another run touched the customer later, or another code was used.
    orders_to_later_touch: int = 0
    orders_with_other_code: int = 0


def attribute(
    members: Sequence[RunMember],
    orders: Iterable[OrderRecord],
    window: Window,
    later_touches: Mapping[str, Sequence[datetime]] | None = None,
) -> Attribution:
    """Each member's window outcome and the run's attributed orders (see the module docstring).

    `later_touches`: per customer, when other runs contacted them (their scheduled times).
    """
    later_touches = later_touches or {}
    by_customer = {member.customer_id: member for member in members if member.in_experiment}
    result = Attribution(outcomes={customer_id: MemberOutcome() for customer_id in by_customer})
    start, end = iso(window.start), iso(window.end)
    for order in sorted(orders, key=lambda o: (o.order_date, o.order_id)):
        member = by_customer.get(order.customer_id)
        if member is None or not start <= order.order_date < end:
            continue
        outcome = result.outcomes[order.customer_id]
        outcome.window_orders += 1
        outcome.window_revenue += order.amount
        code = order.coupon_code.upper()
        if code and code == member.coupon_code:
            how = "coupon"
        elif code:
            result.orders_with_other_code += member.treated
            continue
        elif any(
            window.start < touch and iso(touch) <= order.order_date
            for touch in later_touches.get(member.customer_id, ())
        ):
            result.orders_to_later_touch += member.treated
            continue
        else:
            how = "window"
        outcome.attributed_orders += 1
        outcome.attributed_revenue += order.amount
        if how == "coupon":
            outcome.by_coupon += 1
        else:
            outcome.by_window += 1
        if member.treated:
            result.orders_by_coupon += how == "coupon"
            result.orders_by_window += how == "window"
            result.attributed_revenue += order.amount
    return result
