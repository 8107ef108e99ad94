"""The message tags dispatch gives every email so SES events find their send (cadence.feedback).

SES allows only letters, digits, `_` and `-` in a tag value, so values are base64url without padding.
"""

import base64

TAG_CAMPAIGN = "cadence-campaign"
TAG_RUN = "cadence-run"
TAG_BATCH = "cadence-batch"
TAG_CUSTOMER = "cadence-customer"


def tag_value(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def from_tag(value: str) -> str:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
