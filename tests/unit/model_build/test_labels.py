from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from model_build.dataset import prepare_feeds
from model_build.labels import purchase_labels

CUTOFF = datetime(2025, 5, 1, tzinfo=UTC)


def orders_at(**moments):
    return prepare_feeds(
        pd.DataFrame(
            {
                "order_id": [f"O{i}" for i in range(len(moments))],
                "customer_id": list(moments),
                "order_date": [moment.isoformat() for moment in moments.values()],
                "amount": ["10.00"] * len(moments),
            }
        )
    ).orders


def test_a_purchase_inside_the_horizon_is_positive_and_outside_is_not():
    orders = orders_at(
        at_cutoff=CUTOFF,
        inside=CUTOFF + timedelta(days=12),
        last_second=CUTOFF + timedelta(days=30) - timedelta(seconds=1),
        at_horizon_end=CUTOFF + timedelta(days=30),
        before_cutoff=CUTOFF - timedelta(seconds=1),
        long_after=CUTOFF + timedelta(days=90),
    )
    customers = ["at_cutoff", "inside", "last_second", "at_horizon_end", "before_cutoff", "long_after", "never"]

    labels = purchase_labels(orders, customers, CUTOFF, 30)

    assert labels.tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_labels_follow_the_order_of_the_customer_ids():
    orders = orders_at(b=CUTOFF + timedelta(days=1))

    assert purchase_labels(orders, ["a", "b", "c", "b"], CUTOFF, 7).tolist() == [0, 1, 0, 1]


def test_an_order_in_another_time_zone_is_compared_in_utc():
    # 07:30 in Shanghai on the cutoff day is 23:30 UTC the day before: history, not label.
    orders = prepare_feeds(
        pd.DataFrame({"customer_id": ["a"], "order_date": ["2025-05-01T07:30:00+08:00"], "amount": ["1"]})
    ).orders

    assert purchase_labels(orders, ["a"], CUTOFF, 30).tolist() == [0]


def test_a_horizon_below_one_day_is_refused():
    with pytest.raises(ValueError, match="horizon_days"):
        purchase_labels(orders_at(a=CUTOFF), ["a"], CUTOFF, 0)
