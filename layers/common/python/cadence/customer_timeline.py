"""One customer's story, oldest first: the messages campaigns sent them (and what became of each), their replies
with the keyword or intent read in them and where they were routed, their consent changes and quiet periods.

Read on demand for `cadence customer show ID`, from what the stack keeps anyway: the contact history (which runs
planned to message the customer, a few small S3 objects a day), the send ledger of those runs (one Query a run),
the conversations table (one Query) and the profile.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cadence.dal import contact_history, conversations_table, profiles_table, sends_table


@dataclass(frozen=True, slots=True)
class TimelineSources:
    profiles_table: str
    conversations_table: str
    sends_table: str
    data_bucket: str


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: str  # ISO time (a send: its run's time; a consent change: when it took effect)
    kind: str  # send, reply, consent, quiet_period
    channel: str | None
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


def customer_timeline(
    customer_id: str, sources: TimelineSources, *, days: int = 90, today: date | None = None
) -> tuple[dict[str, Any] | None, list[TimelineEvent]]:
    """The customer's profile (None when unknown) and their timeline over the last `days` days."""
    today = today or datetime.now(UTC).date()
    profile = profiles_table.get(sources.profiles_table, customer_id)
    events = _sends(customer_id, sources, [today - timedelta(days=offset) for offset in range(days, -1, -1)])
    events += [_reply(entry) for entry in conversations_table.timeline(
        sources.conversations_table, conversations_table.customer_pk(customer_id)
    )]  # fmt: skip
    events += _profile_events(profile or {})
    return profile, sorted(events, key=_moment)


def _moment(event: TimelineEvent) -> datetime:
    # The sources write times differently (seconds with Z, microseconds with an offset, a bare day).
    try:
        moment = datetime.fromisoformat(event.at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_id_of(campaign_id: str, name: str) -> str | None:
    """The run id a contact-history object is named after (see contact_history.run_key), when it can be told."""
    stem = name.removesuffix(".csv.gz").removeprefix(f"{campaign_id}_")
    found = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T)(\d{2})(\d{2})(\d{2})(.*)", stem)
    if not found:
        return None
    day, hour, minute, second, rest = found.groups()
    return f"{campaign_id}@{day}{hour}:{minute}:{second}{rest}"


def _sends(customer_id: str, sources: TimelineSources, days: list[date]) -> list[TimelineEvent]:
    planned = {
        (campaign_id, name, channel): day
        for day, campaign_id, name, contact, channel in contact_history.contacts_on(
            sources.data_bucket, days, except_run=""
        )
        if contact == customer_id
    }
    ledgers: dict[str, dict[tuple[str, str], sends_table.StoredBatch]] = {}
    events = []
    for (campaign_id, name, channel), day in sorted(planned.items(), key=lambda item: item[1]):
        run_id = run_id_of(campaign_id, name)
        outcome = None
        if run_id is not None:
            if run_id not in ledgers:
                ledgers[run_id] = sends_table.run_batches(sources.sends_table, run_id)
            outcome = next(
                (
                    batch.outcomes[customer_id]
                    for (batch_channel, _), batch in ledgers[run_id].items()
                    if batch_channel == channel and customer_id in batch.outcomes
                ),
                None,
            )
        at = run_id.partition("@")[2] if run_id else day.isoformat()
        status = outcome.status.value if outcome else "PLANNED"
        detail = {"campaign_id": campaign_id, "run_id": run_id, "status": status}
        if outcome is not None:
            detail |= {"reason": outcome.reason, "variant": outcome.variant, "coupon_code": outcome.coupon_code}
        reason = f" ({outcome.reason})" if outcome and outcome.reason else ""
        events.append(TimelineEvent(at, "send", channel, f"{campaign_id}: {status}{reason}", _present(detail)))
    return events


def _reply(entry: Mapping[str, Any]) -> TimelineEvent:
    if entry.get("keyword"):
        read = f"keyword {entry['keyword']}"
    elif entry.get("intent"):
        read = f"intent {entry['intent']} ({float(entry.get('confidence') or 0):.2f})"
    else:
        read = "not classified"
    routed = f", to a person ({entry['routed']})" if entry.get("routed") else ""
    answered = ", answered" if entry.get("answered") else ""
    names = ("text", "keyword", "intent", "confidence", "routed", "campaign_id", "run_id", "message_id")
    detail = _present({name: entry.get(name) for name in names})
    return TimelineEvent(str(entry["at"]), "reply", entry.get("channel"), f"{read}{routed}{answered}", detail)


def _profile_events(profile: Mapping[str, Any]) -> list[TimelineEvent]:
    events = []
    for channel in ("email", "sms"):
        at = profile.get(f"consent_{channel}_at")
        if at:
            consent = "yes" if profile.get(f"consent_{channel}") is True else "no"
            source = profile.get(f"consent_{channel}_source") or "unknown"
            events.append(
                TimelineEvent(str(at), "consent", channel, f"consent {consent} ({source})", {"source": source})
            )
    if profile.get("quiet_until"):
        until = str(profile["quiet_until"])
        source = profile.get("quiet_source") or "unknown"
        events.append(TimelineEvent(until, "quiet_period", None, f"quiet until {until} ({source})", {"source": source}))
    return events


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
