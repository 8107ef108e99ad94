import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pandas.testing as pdt
from sklearn.metrics import roc_auc_score

from cadence.features import FEATURE_NAMES
from model_build import synthetic
from model_build.dataset import build_snapshot, feeds_from_synthetic, read_feeds

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
CN_MOBILE = re.compile(r"^(\+86\s?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}$")


def test_same_seed_gives_the_same_feeds_and_another_seed_does_not():
    first = synthetic.generate(80, seed=5, as_of=AS_OF)
    again = synthetic.generate(80, seed=5, as_of=AS_OF)
    other = synthetic.generate(80, seed=6, as_of=AS_OF)

    for name in ("customers", "orders", "events"):
        pdt.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert first.bad_rows == again.bad_rows
    assert not first.orders.equals(other.orders)


def test_feeds_follow_the_feed_schemas(small_data):
    assert tuple(small_data.customers.columns) == synthetic.CUSTOMER_COLUMNS
    assert tuple(small_data.orders.columns) == synthetic.ORDER_COLUMNS
    assert tuple(small_data.events.columns) == synthetic.EVENT_COLUMNS
    assert set(small_data.events["event_type"]) == {"visit", "open", "click", "add_to_cart"}
    assert small_data.orders["order_id"].is_unique
    times = pd.to_datetime(small_data.orders["order_date"], format="ISO8601", utc=True)
    assert times.max() < pd.Timestamp(AS_OF) and times.min() >= pd.Timestamp(AS_OF - timedelta(days=365))
    assert small_data.orders["order_date"].str.endswith("+00:00").all()


def test_customers_carry_the_deliberately_bad_rows_where_reported(small_data):
    customers = small_data.customers
    reasons = dict(small_data.bad_rows)

    assert len(customers) == 600 + len(synthetic.BAD_ROW_REASONS)
    assert sorted(reasons.values()) == sorted(synthetic.BAD_ROW_REASONS)
    position = {reason: row for row, reason in small_data.bad_rows}
    assert customers.loc[position["missing customer_id"], "customer_id"] == ""
    no_contact = customers.loc[position["no email and no phone"]]
    assert no_contact["email"] == "" and no_contact["phone"] == ""
    assert customers.loc[position["invalid country code"], "country"] == "CHN"
    good = customers.drop(index=list(reasons))
    assert good["customer_id"].str.fullmatch(r"C\d{7}").all()


def test_phones_are_mostly_chinese_mobiles_and_emails_mix_case(small_data):
    good = small_data.customers.drop(index=[row for row, _ in small_data.bad_rows])
    phones = good["phone"][good["phone"] != ""]
    emails = good["email"][good["email"] != ""]

    assert phones.str.match(CN_MOBILE).mean() > 0.8
    assert phones.str.startswith("+86").any() and phones.str.contains(" ").any()
    assert (emails != emails.str.lower()).mean() > 0.3
    assert (emails == emails.str.lower()).mean() > 0.2


def test_recency_and_engagement_predict_the_next_30_days(small_feeds, small_data):
    snapshot = build_snapshot(small_feeds, small_data.as_of - timedelta(days=30), 30)

    def auc_of(name):
        # Fewer days since = more likely to buy, so negate.
        return roc_auc_score(snapshot.labels, -snapshot.features[:, FEATURE_NAMES.index(name)])

    assert 0.05 < snapshot.labels.mean() < 0.5
    assert auc_of("recency_days") > 0.6
    assert auc_of("days_since_last_engagement") > 0.6


def test_written_csvs_read_back_into_the_same_feeds(small_data, tmp_path):
    paths = synthetic.write_feeds(small_data, tmp_path)

    from_files = read_feeds(paths["orders"], paths["customers"], paths["events"])

    assert from_files.fingerprint() == feeds_from_synthetic(small_data).fingerprint()


def test_every_click_follows_an_open_of_the_same_customer_that_day(small_data):
    events = small_data.events.assign(time=pd.to_datetime(small_data.events["event_time"], utc=True))
    events["day"] = events["time"].dt.floor("D")
    first_open = events[events["event_type"] == "open"].groupby(["customer_id", "day"])["time"].min()
    clicks = events[events["event_type"] == "click"].join(first_open.rename("opened"), on=["customer_id", "day"])

    assert len(clicks) > 0
    assert (clicks["opened"] <= clicks["time"]).all()


def test_campaign_orders_convert_messaged_members_at_base_plus_lift_and_others_at_base():
    ids = [f"C{n:05d}" for n in range(20_000)]
    states = ["queued"] * 15_000 + ["holdout"] * 5_000
    members = pd.DataFrame({"customer_id": ids, "state": states, "coupon_code": [f"K{n}" for n in range(20_000)]})
    messaged = set(ids[:10_000])
    effect = synthetic.CampaignEffect(base=0.10, lift=0.20, window_days=7)
    run_at = datetime(2026, 11, 23, 10, tzinfo=UTC)

    orders = synthetic.campaign_orders(members, messaged, run_at, effect, seed=3)

    assert tuple(orders.columns) == synthetic.ORDER_COLUMNS
    buyers = set(orders["customer_id"])
    # exactly the known rates (the demo's uplift check must not depend on luck)
    assert len(buyers & messaged) == 3_000
    assert len(buyers - messaged) == 1_000
    assert len(buyers & set(ids[15_000:])) == 500  # the holdout converts at the base rate exactly
    dates = pd.to_datetime(orders["order_date"], utc=True)
    assert dates.min() > run_at and dates.max() < run_at + timedelta(days=7)
    used = orders[orders["coupon_code"] != ""]
    assert set(used["customer_id"]) <= messaged  # only a member who got the message has its code
    assert abs(len(used) / len(buyers & messaged) - 0.5) < 0.05
