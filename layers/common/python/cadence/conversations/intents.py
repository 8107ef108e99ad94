"""What a reply that is not a keyword asks of us: the intents the reply model tells apart, and its verdict on one
reply. The model itself (char n-grams, ONNX) is cadence.conversations.intent_model; routing reads only these."""

from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    ORDER_QUESTION = "order_question"
    COUPON_PROBLEM = "coupon_problem"
    COMPLAINT = "complaint"
    NOT_INTERESTED = "not_interested"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Classified:
    """The model's most likely intent for a reply and its probability (0..1)."""

    intent: Intent
    confidence: float
