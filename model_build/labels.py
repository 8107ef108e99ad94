"""The label: did the customer buy in the horizon that starts at the cutoff?"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd


def label_window(cutoff: datetime, horizon_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The half-open window [cutoff, cutoff + horizon_days) whose orders make a positive label."""
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    start = cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff.astimezone(UTC)
    return pd.Timestamp(start), pd.Timestamp(start + timedelta(days=horizon_days))


def purchase_labels(
    orders: pd.DataFrame, customer_ids: Sequence[str], cutoff: datetime, horizon_days: int
) -> np.ndarray:
    """1 for each customer with at least one order in the label window, else 0 (int8, in customer_ids order).

    orders needs customer_id (str) and order_date (UTC timestamps), as ``dataset.prepare_feeds`` leaves them.
    """
    start, end = label_window(cutoff, horizon_days)
    in_window = orders[(orders["order_date"] >= start) & (orders["order_date"] < end)]
    buyers = set(in_window["customer_id"])
    return np.fromiter((customer_id in buyers for customer_id in customer_ids), dtype=np.int8, count=len(customer_ids))
