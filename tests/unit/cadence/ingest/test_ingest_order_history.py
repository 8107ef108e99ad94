"""Accepted orders land in the order history (what campaign attribution reads), coupon codes cleaned."""

from cadence.dal import order_history

ORDERS = (
    "Order ID,Customer ID,Order Date,Total,Promo Code\n"
    "A1,007,2024-02-28T23:00:00Z,10,wb-3k7q 9xz2\n"
    'A2,007,2024-03-01T10:00:00+08:00,"1,299.50",\n'
    'A2,007,2024-03-01T10:00:00+08:00,"1,300.50",\n'
    "A3,008,2024-03-05,5,???\n"
    "A4,008,not a date,5,\n"
)


def test_accepted_orders_are_kept_by_month_once_per_order_with_their_coupon(stack, ingest):
    report = ingest("incoming/orders/o.csv", ORDERS)

    assert (report["rows_accepted"], report["rows_rejected"]) == (4, 1)
    assert report["values_cleared"] == {"invalid:coupon_code": 1}  # '???' is no code: the order stays, without one
    assert sorted(key.split("/")[2] for key in stack.keys(order_history.PREFIX)) == ["2024-02", "2024-03"]
    window = order_history.orders_between(stack.bucket, "2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z")
    orders = sorted(window, key=lambda order: order.order_id)
    assert [(o.order_id, o.customer_id, o.order_date, o.amount, o.coupon_code) for o in orders] == [
        ("A1", "007", "2024-02-28T23:00:00Z", 10.0, "WB3K7Q9XZ2"),
        ("A2", "007", "2024-03-01T02:00:00Z", 1300.5, ""),  # the last row of a repeated id
        ("A3", "008", "2024-03-05T00:00:00Z", 5.0, ""),
    ]


def test_order_history_reads_only_the_window_asked_for(stack, ingest):
    ingest("incoming/orders/o.csv", ORDERS)

    window = order_history.orders_between(stack.bucket, "2024-03-01T00:00:00Z", "2024-03-05T00:00:00Z")

    assert [order.order_id for order in window] == ["A2"]


def test_a_reuploaded_file_adds_no_order_twice(stack, ingest):
    ingest("incoming/orders/o.csv", ORDERS)
    keys = stack.keys(order_history.PREFIX)
    ingest("incoming/orders/copy.csv", ORDERS)

    assert stack.keys(order_history.PREFIX) == keys
    everything = list(order_history.orders_between(stack.bucket, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    assert len(everything) == 3
