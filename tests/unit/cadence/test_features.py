import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.features import FEATURE_NAMES, FEATURE_SPEC, MISSING_DAYS, build_feature_matrix, build_feature_row

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
DAY_FEATURES = (
    "recency_days",
    "days_since_last_visit",
    "days_since_last_open",
    "days_since_last_click",
    "days_since_last_engagement",
)


def features_of(profile, as_of=AS_OF):
    return dict(zip(FEATURE_NAMES, build_feature_row(profile, as_of), strict=True))


def iso(moment):
    return moment.isoformat()


def test_feature_names_are_the_spec_names_in_order_and_unique():
    assert tuple(spec.name for spec in FEATURE_SPEC) == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert {spec.dtype for spec in FEATURE_SPEC} == {"float32"}
    assert all(spec.meaning for spec in FEATURE_SPEC)


def test_each_feature_lands_in_its_spec_column_when_profile_is_complete():
    profile = {
        "customer_id": "C1",
        "email": "Wei.Zhang@QQ.com",
        "phone": "138 0013 8000",
        "signup_date": "2025-01-01",
        "consent_email": True,
        "consent_sms": False,
        "order_count": 4,
        "total_spend": 399.0,
        "first_order_at": iso(AS_OF - timedelta(days=100)),
        "last_order_at": iso(AS_OF - timedelta(days=10, hours=5)),
        "last_visit_at": iso(AS_OF - timedelta(days=2)),
        "last_open_at": iso(AS_OF - timedelta(days=7)),
        "last_click_at": iso(AS_OF - timedelta(days=30)),
        "event_count": 19,
    }

    features = features_of(profile)

    tenure = (AS_OF.date() - date(2025, 1, 1)).days
    assert features == {
        "recency_days": 10.0,
        "has_ordered": 1.0,
        "frequency": 4.0,
        "log_monetary": round(math.log1p(399.0), 4),
        "log_avg_order_value": round(math.log1p(399.0 / 4), 4),
        "tenure_days": float(tenure),
        "orders_per_30d": round(4 * 30 / tenure, 4),
        "days_since_last_visit": 2.0,
        "days_since_last_open": 7.0,
        "days_since_last_click": 30.0,
        "days_since_last_engagement": 2.0,
        "log_event_count": round(math.log1p(19), 4),
        "has_email": 1.0,
        "has_phone": 1.0,
        "consent_email": 1.0,
        "consent_sms": 0.0,
    }


def test_missing_values_use_the_documented_sentinels_when_profile_is_empty():
    features = features_of({})

    assert {name: features[name] for name in DAY_FEATURES} == dict.fromkeys(DAY_FEATURES, MISSING_DAYS)
    assert all(value == 0.0 for name, value in features.items() if name not in DAY_FEATURES)


def test_unparseable_values_count_as_missing():
    garbage = {
        "last_order_at": "yesterday",
        "signup_date": "2024-13-45",
        "order_count": "many",
        "total_spend": float("nan"),
        "event_count": float("inf"),
        "last_visit_at": 12345,
        "email": "not-an-email",
        "phone": "12345",
        "consent_email": "maybe",
    }

    assert build_feature_row(garbage, AS_OF) == build_feature_row({}, AS_OF)


def test_consent_counts_only_when_clearly_true():
    def consent(value):
        return features_of({"consent_email": value})["consent_email"]

    assert [consent(v) for v in (True, "true", "TRUE", " yes ", 1, Decimal(1))] == [1.0] * 6
    assert [consent(v) for v in (False, "false", "", None, "maybe", 0, 2, Decimal("sNaN"), float("nan"))] == [0.0] * 9


def test_timestamp_after_as_of_counts_as_today_and_recency_is_capped():
    features = features_of(
        {"last_order_at": iso(AS_OF + timedelta(hours=3)), "last_visit_at": "1990-01-01T00:00:00+00:00"}
    )

    assert features["recency_days"] == 0.0
    assert features["days_since_last_visit"] == MISSING_DAYS


def test_naive_times_are_read_as_utc():
    aware = {"last_order_at": "2025-05-30T23:00:00+00:00"}
    naive = {"last_order_at": "2025-05-30T23:00:00"}
    shifted = {"last_order_at": "2025-05-31T07:00:00+08:00"}

    expected = build_feature_row(aware, AS_OF)
    assert build_feature_row(naive, AS_OF.replace(tzinfo=None)) == expected
    assert build_feature_row(shifted, AS_OF) == expected
    assert build_feature_row({"last_order_at": datetime(2025, 5, 30, 23)}, AS_OF) == expected


def test_dynamodb_style_numbers_give_the_same_features_as_python_numbers():
    python_numbers = {"order_count": 3, "total_spend": 120.5, "event_count": 7}
    decimals = {"order_count": Decimal(3), "total_spend": Decimal("120.5"), "event_count": Decimal(7)}

    assert build_feature_row(decimals, AS_OF) == build_feature_row(python_numbers, AS_OF)


def test_matrix_has_one_float32_row_per_profile_in_input_order():
    profiles = [{"order_count": 1}, {}, {"order_count": 5}]

    matrix = build_feature_matrix(profiles, AS_OF)

    assert matrix.dtype == np.float32
    assert matrix.shape == (3, len(FEATURE_NAMES))
    assert matrix[:, FEATURE_NAMES.index("frequency")].tolist() == [1.0, 0.0, 5.0]


def test_matrix_of_no_profiles_keeps_the_feature_width():
    assert build_feature_matrix([], AS_OF).shape == (0, len(FEATURE_NAMES))


def test_distinct_values_stay_distinct_in_float32():
    # Rounding keeps neighbours on a coarse grid, so tree thresholds cannot collapse them in float32.
    spends = [10_000.0 + cents / 100 for cents in range(0, 2000, 7)]
    matrix = build_feature_matrix([{"order_count": 1, "total_spend": s} for s in spends], AS_OF)
    column = matrix[:, FEATURE_NAMES.index("log_monetary")]
    values = sorted(set(column.tolist()))
    gaps = np.diff(np.asarray(values, dtype=np.float32))
    assert gaps.min() > 2 * np.spacing(np.float32(values[-1]))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.dates().map(lambda day: day.isoformat()),
)
_profile_keys = st.sampled_from(
    [
        "customer_id",
        "email",
        "phone",
        "signup_date",
        "consent_email",
        "consent_sms",
        "order_count",
        "total_spend",
        "first_order_at",
        "last_order_at",
        "last_visit_at",
        "last_open_at",
        "last_click_at",
        "event_count",
        "country",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    profile=st.dictionaries(_profile_keys, _scalars, max_size=15),
    as_of=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_features_are_deterministic_finite_and_spec_shaped_for_any_profile(profile, as_of):
    row = build_feature_row(profile, as_of)
    again = build_feature_row(dict(reversed(list(profile.items()))), as_of)
    matrix = build_feature_matrix([profile, profile], as_of)

    assert len(row) == len(FEATURE_NAMES)
    assert row == again
    assert all(math.isfinite(value) for value in row)
    assert np.isfinite(matrix).all()
    assert matrix.tolist()[0] == matrix.tolist()[1] == np.asarray(row, dtype=np.float32).tolist()
    for name in (*DAY_FEATURES, "tenure_days"):
        assert 0.0 <= row[FEATURE_NAMES.index(name)] <= MISSING_DAYS
