"""The campaign domain: what a marketer writes (definition, rules) and who gets what in a run (plan).

Pure logic: the campaign function's data access happens in cadence.dal and cadence.campaign_runs wires them.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cadence.campaigns.definition import CampaignDefinition, Channel

__all__ = ["CampaignDefinition", "Channel", "is_reachable", "run_id_for"]


def run_id_for(campaign_id: str, scheduled_time: datetime) -> str:
    """The same schedule firing (or a retry of it) always yields the same run id."""
    return f"{campaign_id}@{scheduled_time.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def is_reachable(profile: Mapping[str, Any], channel: Channel, definition: CampaignDefinition | None = None) -> bool:
    """The customer consented to the channel and has an address for it (a webhook's: where `definition` says)."""
    if channel == "webhook":
        if definition is None:
            return False
        return bool(definition.address(profile, channel)) and definition.consented(profile, channel)
    if channel == "email":
        return bool(profile.get("email")) and profile.get("consent_email") is True
    return bool(profile.get("phone")) and profile.get("consent_sms") is True
