"""Attribution: which orders of a run's window it gets credit for, by coupon code, else by last touch."""

from datetime import UTC, datetime, timedelta

from cadence.campaigns.attribution import RunMember, Window, attribute
from cadence.orders import OrderRecord

RUN_AT = datetime(2026, 11, 23, 10, tzinfo=UTC)
WINDOW = Window(RUN_AT, 7)


def order(order_id: str, customer_id: str, hours: float, amount: float = 10.0, code: str = "") -> OrderRecord:
    moment = RUN_AT + timedelta(hours=hours)
    return OrderRecord(order_id, customer_id, moment.strftime("%Y-%m-%dT%H:%M:%SZ"), amount, "CNY", code)


MEMBERS = [
    RunMember("t1", "queued", "a", "WBCODE1"),
    RunMember("t2", "queued", "a", "WBCODE2"),
    RunMember("h1", "holdout", "a"),
    RunMember("r1", "reentry_excluded", "a"),
    RunMember("n1", "no_consent", "a"),
]


def test_an_order_with_the_members_code_is_attributed_by_coupon():
    result = attribute(MEMBERS, [order("o1", "t1", 5, 30.0, "wbcode1")], WINDOW)

    assert (result.orders_by_coupon, result.orders_by_window, result.attributed_revenue) == (1, 0, 30.0)
    assert result.outcomes["t1"].by_coupon == 1


def test_an_order_without_a_code_in_the_window_is_attributed_by_last_touch():
    result = attribute(MEMBERS, [order("o1", "t2", 24), order("o2", "n1", 30)], WINDOW)

    assert (result.orders_by_coupon, result.orders_by_window) == (0, 2)  # n1 was assigned, though not reached
    assert result.outcomes["t2"].attributed_orders == 1


def test_orders_outside_the_window_or_of_non_members_count_for_nothing():
    orders = [order("early", "t1", -1), order("late", "t1", 7 * 24), order("edge", "t1", 7 * 24 - 0.01)]
    orders.append(order("stranger", "x9", 5))

    result = attribute(MEMBERS, orders, WINDOW)

    assert result.outcomes["t1"].window_orders == 1  # only 'edge': the window is [run, run + 7 days)
    assert "x9" not in result.outcomes


def test_a_later_contact_by_another_run_takes_the_orders_placed_after_it():
    touches = {"t1": [RUN_AT + timedelta(days=2)]}
    orders = [order("before", "t1", 24), order("after", "t1", 72), order("coupon", "t1", 80, code="WBCODE1")]

    result = attribute(MEMBERS, orders, WINDOW, touches)

    assert result.outcomes["t1"].by_window == 1  # 'before'
    assert result.outcomes["t1"].by_coupon == 1  # the code still names this run
    assert result.orders_to_later_touch == 1
    # every order of the window is still measured for uplift
    assert result.outcomes["t1"].window_orders == 3


def test_another_code_is_not_this_runs_but_is_still_measured():
    result = attribute(MEMBERS, [order("o1", "t2", 5, code="WBCODE1")], WINDOW)

    assert (result.orders_by_coupon, result.orders_by_window, result.orders_with_other_code) == (0, 0, 1)
    assert result.outcomes["t2"].window_orders == 1


def test_the_holdout_is_measured_like_the_treated_and_reentry_members_not_at_all():
    result = attribute(MEMBERS, [order("o1", "h1", 5, 12.5), order("o2", "r1", 5)], WINDOW)

    assert (result.outcomes["h1"].window_orders, result.outcomes["h1"].window_revenue) == (1, 12.5)
    assert result.outcomes["h1"].by_window == 1
    assert result.orders_by_window == 0  # the run's own credit counts treated members only
    assert "r1" not in result.outcomes
