"""The one definition of event type names: how a raw type is normalised and which types are engagement.

Ingest (what the score function later reads) and model_build (what the model is trained on) must turn
"Page View" into the same name, or a feature means one thing in training and another in serving. Both
call ``normalise_event_type``; neither keeps a table of its own.

No pandas here: the module sits in the common layer, which every function loads.
"""

import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

EVENT_TYPE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "page_view": "visit",
        "pageview": "visit",
        "visited": "visit",
        "email_open": "open",
        "opened": "open",
        "email_click": "click",
        "clicked": "click",
    }
)
"""Names upstream systems use (already snake_case) -> our name."""

ENGAGEMENT_ATTRIBUTES: Final[Mapping[str, str]] = MappingProxyType(
    {"visit": "last_visit_at", "open": "last_open_at", "click": "last_click_at"}
)
"""Event types that feed engagement recency -> the profile attribute holding the latest one's time."""

EVENT_TYPE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""What a normalised event type must look like; anything else is rejected."""

_SEPARATORS: Final = re.compile(r"[\s\-]+")


def normalise_event_type(value: str) -> str:
    """snake_case with aliases resolved: NFKC-folded, stripped, lower-cased, runs of spaces/dashes -> "_".

    "Page View", "page-view" and "PAGE_VIEW" all become "visit". The result may still be invalid
    (empty, or with other punctuation); check it with ``is_valid_event_type``.
    """
    name = _SEPARATORS.sub("_", unicodedata.normalize("NFKC", value).strip().lower())
    return EVENT_TYPE_ALIASES.get(name, name)


def is_valid_event_type(name: str) -> bool:
    """Whether a normalised event type is acceptable (lower-case letters, digits and _, at most 64)."""
    return EVENT_TYPE_PATTERN.fullmatch(name) is not None
