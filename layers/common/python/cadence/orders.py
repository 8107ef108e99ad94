"""One accepted order as attribution reads it: written by ingest, read by the campaign report; no pandas, no boto3."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: str
    customer_id: str
    order_date: str  # ISO-8601 UTC, 'YYYY-MM-DDTHH:MM:SSZ': compares as text
    amount: float
    currency: str = ""
    coupon_code: str = ""

    @property
    def month(self) -> str:
        """'YYYY-MM': the partition the order history keeps it under."""
        return self.order_date[:7]
