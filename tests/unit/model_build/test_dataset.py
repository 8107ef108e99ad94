from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from cadence.errors import InvalidInputError
from cadence.features import build_feature_matrix
from model_build.dataset import build_profiles, build_snapshot, prepare_feeds, read_feeds

CUTOFF = datetime(2025, 5, 1, tzinfo=UTC)

CUSTOMERS_CSV = "\n".join(
    [
        "customer_id,email,phone,first_name,last_name,country,city,timezone,language,signup_date,"
        "consent_email,consent_sms,updated_at",
        "007,Li.Na@QQ.com,138 0013 8000,Na,Li,CN,Shanghai,Asia/Shanghai,zh-CN,2024-11-20,true,false,"
        "2025-04-01T00:00:00+00:00",
        "0042,,+86 139 1234 5678,Wei,Wang,CN,Beijing,Asia/Shanghai,zh-CN,2025-06-01,false,true,"
        "2025-04-01T00:00:00+00:00",
        "",
    ]
)
ORDERS_CSV = """order_id,customer_id,order_date,amount,currency,items,channel
O1,007,2025-01-10T09:00:00+00:00,120.50,CNY,2,web
O2,007,2025-04-20T18:30:00+00:00,79.50,CNY,1,app
O2,007,2025-04-20T18:30:00+00:00,79.50,CNY,1,app
O3,007,2025-05-01T00:00:00+00:00,999.00,CNY,9,app
O4,0099,2025-03-01T08:00:00+00:00,15.00,CNY,1,store
"""
EVENTS_CSV = """customer_id,event_type,event_time,attributes
007,visit,2025-04-28T10:00:00+00:00,{}
007,visit,2025-04-25T10:00:00+00:00,{}
007,open,2025-04-02T10:00:00+00:00,"{""campaign"": ""spring""}"
007,add_to_cart,2025-04-20T18:00:00+00:00,{}
007,click,2025-05-02T10:00:00+00:00,{}
"""

# What the profiles table holds for customer 007 at the cutoff (Decimals already converted), i.e. what
# the score function reads: the serving side of the parity.
SERVED_PROFILE_007 = {
    "customer_id": "007",
    "email": "Li.Na@QQ.com",
    "phone": "138 0013 8000",
    "first_name": "Na",
    "last_name": "Li",
    "country": "CN",
    "city": "Shanghai",
    "timezone": "Asia/Shanghai",
    "language": "zh-CN",
    "signup_date": "2024-11-20",
    "consent_email": True,
    "consent_sms": False,
    "updated_at": "2025-04-01T00:00:00+00:00",
    "order_count": 2,
    "total_spend": 200,
    "first_order_at": "2025-01-10T09:00:00+00:00",
    "last_order_at": "2025-04-20T18:30:00+00:00",
    "last_visit_at": "2025-04-28T10:00:00+00:00",
    "last_open_at": "2025-04-02T10:00:00+00:00",
    "event_count": 4,
}


@pytest.fixture
def feeds(tmp_path):
    paths = {}
    for name, text in (("customers", CUSTOMERS_CSV), ("orders", ORDERS_CSV), ("events", EVENTS_CSV)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return read_feeds(paths["orders"], paths["customers"], paths["events"])


def test_training_path_gives_the_served_profile_the_same_feature_vector(feeds):
    snapshot = build_snapshot(feeds, CUTOFF, 30)

    row = snapshot.features[snapshot.customer_ids.index("007")]

    served = build_feature_matrix([SERVED_PROFILE_007], CUTOFF)[0]
    np.testing.assert_array_equal(row, served)
    trained_profile = snapshot.profiles[snapshot.customer_ids.index("007")]
    assert trained_profile == SERVED_PROFILE_007


def test_history_at_or_after_the_cutoff_does_not_reach_the_features(feeds):
    profile = build_profiles(feeds, CUTOFF)[0]

    assert profile["customer_id"] == "007"
    assert profile["order_count"] == 2  # the 999.00 order at the cutoff belongs to the label window
    assert "last_click_at" not in profile  # the click came after the cutoff


def test_snapshot_holds_customers_known_before_the_cutoff_with_ids_as_written(feeds):
    snapshot = build_snapshot(feeds, CUTOFF, 30)

    # 0042 signed up after the cutoff; 0099 only appears in orders.
    assert snapshot.customer_ids == ["007", "0099"]
    assert snapshot.labels.tolist() == [1, 0]
    assert build_snapshot(feeds, datetime(2025, 7, 1, tzinfo=UTC), None).customer_ids == ["0042", "007", "0099"]


def test_a_resent_order_counts_once(feeds):
    assert feeds.orders["order_id"].tolist().count("O2") == 1


def test_feeds_without_customers_or_events_still_build_profiles():
    feeds = prepare_feeds(
        pd.DataFrame(
            {"customer_id": ["a", "b"], "order_date": ["2025-01-01", "2025-04-30T10:00:00Z"], "amount": ["5", "x"]}
        )
    )

    profiles = build_profiles(feeds, CUTOFF)

    assert profiles == [
        {
            "customer_id": "a",
            "order_count": 1,
            "total_spend": 5.0,
            "first_order_at": "2025-01-01T00:00:00+00:00",
            "last_order_at": "2025-01-01T00:00:00+00:00",
        },
        {
            "customer_id": "b",
            "order_count": 1,
            "total_spend": 0.0,
            "first_order_at": "2025-04-30T10:00:00+00:00",
            "last_order_at": "2025-04-30T10:00:00+00:00",
        },
    ]


def test_orders_without_customer_or_readable_date_are_dropped():
    feeds = prepare_feeds(
        pd.DataFrame(
            {"customer_id": ["a", "", "c"], "order_date": ["2025-01-01", "2025-01-01", "soon"], "amount": ["1"] * 3}
        )
    )

    assert feeds.orders["customer_id"].tolist() == ["a"]


def test_a_feed_without_a_required_column_is_refused(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id,amount\nO1,a,10\n")

    with pytest.raises(InvalidInputError, match="order_date"):
        read_feeds(orders)


def test_fingerprint_ignores_row_order_and_sees_content(feeds):
    shuffled = prepare_feeds(feeds.orders.iloc[::-1], feeds.customers.iloc[::-1], feeds.events.iloc[::-1])
    changed_orders = feeds.orders.assign(amount=feeds.orders["amount"] + 1)

    assert shuffled.fingerprint() == feeds.fingerprint()
    assert prepare_feeds(changed_orders, feeds.customers, feeds.events).fingerprint() != feeds.fingerprint()


def test_duplicates_merge_as_ingest_merges_them():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "email": ["old@x.cn", "", "new@x.cn"],
            "phone": ["13800138000", "", ""],
            "updated_at": ["2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-02-01T00:00:00Z"],
        }
    )
    orders = pd.DataFrame(
        {"order_id": ["O1", "O1"], "customer_id": ["a", "a"], "order_date": ["2025-01-05"] * 2, "amount": ["10", "12"]}
    )
    events = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "event_type": ["visit", "Visit", "visit"],
            "event_time": ["2025-01-06T00:00:00Z"] * 3,
            "attributes": ["{}", "{}", '{"page": "/p/1"}'],
        }
    )

    (profile,) = build_profiles(prepare_feeds(orders, customers, events), CUTOFF)

    # Newest non-empty value per column; the last row of a re-sent order; a re-sent event once.
    assert (profile["email"], profile["phone"]) == ("new@x.cn", "13800138000")
    assert (profile["order_count"], profile["total_spend"]) == (1, 12.0)
    assert profile["event_count"] == 2
