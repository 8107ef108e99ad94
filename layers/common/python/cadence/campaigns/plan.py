"""Planning one run: every audience member ends in exactly one state, and the sends it implies.

Pure logic over what the run read (profiles, activity, scores) and the contact history; the campaign
function does the reading and the writing. Order of the decisions, for each member of the audience:

1. re-entry: received this campaign inside its re-entry window (or ever, for once-only) -> reentry_excluded
2. assignment: variant, then holdout, from hashes of campaign and customer (stable across runs); the
   holdout keeps its variant so uplift can be measured per variant -> holdout
3. a quiet period: the customer replied "not interested" and asked for quiet until a later time -> quiet_period
   (cadence.conversations.inbound)
4. reachability: no address on any channel -> no_address; addresses but no consent -> no_consent (a webhook's
   address and consent are the profile attributes its campaign names, see WebhookChannel)
5. one address, one message: customers sharing an email, phone or webhook address get it once; the highest
   score keeps it (then the lowest id) -> duplicate_address, with the id kept
6. frequency caps over every campaign's contacts (overall and per channel) -> capped
7. timing: the member's release time (send_at_local in the customer's zone, then quiet hours moved
   to their end) -> queued, or deferred when quiet hours moved it (deferred sends are released later,
   never dropped)

A run over a large audience is split across invocations, so planning is two stages. `assess` looks at one
member at a time and needs nothing from the others or from the contact history: the rule, variant and holdout,
reachability, release time and offer value. It keeps compact `MemberFacts`, which segments of the audience can
write apart: addresses hashed for the cross-member checks, and what sending will read of the profile (address,
consent, message fields), carried to the batches so that dispatch need not read every profile again. `decide`
takes every member's facts and the contact history and makes the cross-member decisions: re-entry (whose order in
the list above it keeps), one message per address, caps, unique coupon codes. `plan_run` is the two in one
process; the plan is the same whichever way it is made.
"""

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from cadence.campaigns.definition import CHANNELS, CampaignDefinition, Caps, Channel, QuietHours
from cadence.campaigns.rules import member_view
from cadence.campaigns.timezones import customer_zone
from cadence.suppression import hash_normalised

_BUCKETS = 10_000_000
# Crockford's base32: no I, L, O, U, so a code read aloud or typed is not mistaken.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
COUPON_LENGTH = 12  # 60 bits


class MemberState(StrEnum):
    QUEUED = "queued"
    DEFERRED = "deferred"
    HOLDOUT = "holdout"
    REENTRY_EXCLUDED = "reentry_excluded"
    # Replied "not interested": left out until the profile's quiet_until.
    QUIET_PERIOD = "quiet_period"
    NO_ADDRESS = "no_address"
    NO_CONSENT = "no_consent"
    # Every channel it consented to goes to an address on the suppression list (bounced, complained, opted out).
    SUPPRESSED = "suppressed"
    DUPLICATE_ADDRESS = "duplicate_address"
    CAPPED = "capped"


@dataclass(frozen=True, slots=True)
class Contact:
    """One message planned for a customer on a day (what caps and re-entry count)."""

    customer_id: str
    day: date
    channel: Channel
    campaign_id: str
    # Two runs of one campaign on one day are two contacts.
    run_id: str = ""


class ContactHistory:
    """Contacts of the last days, per customer: loaded once per run, never one read per customer."""

    def __init__(self, contacts: Iterable[Contact] = ()) -> None:
        self._by_customer: dict[str, list[Contact]] = {}
        # A contact read twice (from the per-day and the per-campaign record) counts once.
        for contact in dict.fromkeys(contacts):
            self._by_customer.setdefault(contact.customer_id, []).append(contact)

    def of(self, customer_id: str) -> list[Contact]:
        return self._by_customer.get(customer_id, [])

    def __len__(self) -> int:
        return sum(len(contacts) for contacts in self._by_customer.values())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One customer the run read: profile, activity aggregates and score."""

    profile: Mapping[str, Any]
    activity: Mapping[str, Any] | None = None
    score: Mapping[str, Any] | None = None

    @property
    def customer_id(self) -> str:
        return str(self.profile["customer_id"])


@dataclass(slots=True)
class Member:
    """An audience member's outcome, recorded for every member (the holdout included)."""

    customer_id: str
    state: MemberState
    variant: str | None
    channels: tuple[Channel, ...] = ()
    offer_value: str | None = None
    coupon_code: str | None = None
    release_at: datetime | None = None
    duplicate_of: str | None = None
    score: float | None = None
    # The model's decile when the run read the score: uplift per decile is measured on it, not on a later score.
    decile: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "state": self.state.value,
            "variant": self.variant or "",
            "channels": "+".join(self.channels),
            "offer_value": self.offer_value or "",
            "coupon_code": self.coupon_code or "",
            "release_at": self.release_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.release_at else "",
            "duplicate_of": self.duplicate_of or "",
            "score": repr(self.score) if self.score is not None else "",
            "decile": str(self.decile) if self.decile is not None else "",
        }


@dataclass(frozen=True, slots=True)
class Send:
    """One message to dispatch: who, on which channel, with which variant, offer and code."""

    campaign_id: str
    run_id: str
    customer_id: str
    channel: Channel
    variant: str | None = None
    offer_value: str | None = None
    coupon_code: str | None = None
    # The profile's address, consent and message fields for the channel as planning read them (None: dispatch
    # reads the profile); CampaignDefinition.contact.
    contact: Mapping[str, str | bool] | None = field(default=None, hash=False)

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "run_id": self.run_id,
            "customer_id": self.customer_id,
            "channel": self.channel,
        }
        for name in _SEND_FIELDS:
            if (value := getattr(self, name)) is not None:
                message[name] = value
        return message


# What a send carries beside its customer, when set.
_SEND_FIELDS = ("variant", "offer_value", "coupon_code", "contact")
# SESv2 SendBulkEmail takes at most 50 destinations a call; a batch is also one ledger item and one SQS message.
BATCH_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Batch:
    """Sends of one run, channel, release time and variant that are queued, claimed and settled together."""

    campaign_id: str
    run_id: str
    channel: Channel
    batch_id: str
    release_at: datetime
    sends: tuple[Send, ...]

    def to_message(self) -> dict[str, Any]:
        """The SQS body: the run once, and per send only what differs (customer, variant, offer, code, contact)."""
        recipients = []
        for send in self.sends:
            recipient: dict[str, Any] = {"customer_id": send.customer_id}
            for name in _SEND_FIELDS:
                if (value := getattr(send, name)) is not None:
                    recipient[name] = dict(value) if name == "contact" else value
            recipients.append(recipient)
        return {
            "campaign_id": self.campaign_id,
            "run_id": self.run_id,
            "channel": self.channel,
            "batch_id": self.batch_id,
            "sends": recipients,
        }

    def to_record(self) -> dict[str, Any]:
        """The message with its release time: what a run keeps of the batches it cut."""
        return {**self.to_message(), "release_at": self.release_at.astimezone(UTC).isoformat()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Batch":
        sends = tuple(
            Send(
                campaign_id=record["campaign_id"],
                run_id=record["run_id"],
                customer_id=send["customer_id"],
                channel=record["channel"],
                variant=send.get("variant"),
                offer_value=send.get("offer_value"),
                coupon_code=send.get("coupon_code"),
                contact=send.get("contact"),
            )
            for send in record["sends"]
        )
        release_at = datetime.fromisoformat(record["release_at"])
        return cls(record["campaign_id"], record["run_id"], record["channel"], record["batch_id"], release_at, sends)


@dataclass(slots=True)
class Plan:
    run_id: str
    considered: int = 0
    members: list[Member] = field(default_factory=list)
    # Sends by the UTC minute they may leave; what is due at planning time sits under `planned_at`.
    releases: dict[datetime, list[Send]] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        """Members per state, per variant and per channel; the states add up to `audience`."""
        states = Counter(member.state.value for member in self.members)
        variants = Counter(member.variant or "default" for member in self.members)
        sends = Counter(send.channel for sends in self.releases.values() for send in sends)
        return {
            "considered": self.considered,
            "audience": len(self.members),
            **{f"state_{state.value}": states.get(state.value, 0) for state in MemberState},
            **{f"variant_{name}": count for name, count in sorted(variants.items())},
            **{f"sends_{channel}": sends.get(channel, 0) for channel in CHANNELS},
        }

    def sends(self) -> list[Send]:
        return [send for moment in sorted(self.releases) for send in self.releases[moment]]

    def batches(self, size: int = BATCH_LIMIT) -> list[Batch]:
        """The sends cut into batches of at most `size`, per release time, channel and variant, in customer id order.

        One variant a batch because SendBulkEmail takes one template (one per variant): a batch is one call, so SES
        sees 20 calls per 1,000 emails however many variants a campaign tests. The cut depends only on the plan's
        sends, not their order: each (customer, channel) send is in exactly one batch, and the same plan always
        gives the same batch ids. A plan made again from changed data may cut differently, so a run keeps the
        batches it queued (cadence.campaign_runs).
        """
        cut: list[Batch] = []
        for moment in sorted(self.releases):
            for channel in CHANNELS:
                of_channel = [send for send in self.releases[moment] if send.channel == channel]
                # Variant names match ^[a-z0-9][a-z0-9_-]*$, so "" (no variant) sorts first and ids cannot clash.
                for variant in sorted({send.variant or "" for send in of_channel}):
                    sends = sorted(
                        (send for send in of_channel if (send.variant or "") == variant), key=lambda s: s.customer_id
                    )
                    stem = f"{channel}-{moment.astimezone(UTC):%Y%m%dT%H%MZ}" + (f"-{variant}" if variant else "")
                    for index, start in enumerate(range(0, len(sends), size)):
                        chunk = tuple(sends[start : start + size])
                        batch_id = f"{stem}-{index:05d}"
                        cut.append(Batch(chunk[0].campaign_id, chunk[0].run_id, channel, batch_id, moment, chunk))
        return cut

    def split(self, due: datetime) -> tuple[list[Send], dict[datetime, list[Send]]]:
        """(the sends that may leave by `due`, the later releases by their time)."""
        now = [send for moment in sorted(self.releases) if moment <= due for send in self.releases[moment]]
        return now, {moment: sends for moment, sends in sorted(self.releases.items()) if moment > due}


@dataclass(frozen=True, slots=True)
class StackRules:
    """What the stack sets for every campaign; a campaign's own caps and quiet hours replace them."""

    caps: Caps = field(default_factory=Caps)
    quiet_hours: QuietHours | None = None
    # (channel, address hash) on the suppression list (cadence.suppression): never planned, by any campaign.
    suppressed: frozenset[tuple[str, str]] = frozenset()


def _unit(*parts: str) -> float:
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return (int.from_bytes(digest[:8], "big") % _BUCKETS) / _BUCKETS


def assign(definition: CampaignDefinition, customer_id: str) -> tuple[str | None, bool]:
    """(variant, in holdout): deterministic per campaign and customer, independent of each other."""
    variant = None
    if definition.variants:
        total = sum(arm.weight for arm in definition.variants)
        point = _unit("variant", definition.campaign_id, customer_id) * total
        for arm in definition.variants:
            point -= arm.weight
            if point < 0:
                variant = arm.name
                break
        variant = variant or definition.variants[-1].name
    holdout = _unit("holdout", definition.campaign_id, customer_id) < definition.holdout_percent / 100
    return variant, holdout


def coupon_code(secret: str, run_id: str, customer_id: str, prefix: str = "", attempt: int = 0) -> str:
    """Unguessable without the run's secret, and the same for a re-planned run (same secret)."""
    message = f"{run_id}:{customer_id}:{attempt}".encode()
    number = int.from_bytes(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:8], "big")
    chars = []
    for _ in range(COUPON_LENGTH):
        number, index = divmod(number, len(_CODE_ALPHABET))
        chars.append(_CODE_ALPHABET[index])
    return prefix + "".join(chars)


def _address(definition: CampaignDefinition, profile: Mapping[str, Any], channel: Channel) -> str | None:
    """The address as one-message-per-address and the suppression list compare it: trimmed, lower-cased."""
    value = definition.address(profile, channel)
    return value.lower() if value else None


def _reentered(definition: CampaignDefinition, contacts: list[Contact], today: date) -> bool:
    own = [contact for contact in contacts if contact.campaign_id == definition.campaign_id]
    if not own:
        return False
    if definition.reentry.days is None:
        return True
    return any((today - contact.day).days < definition.reentry.days for contact in own)


def _allowed_channels(caps: Caps, contacts: list[Contact], wanted: tuple[Channel, ...], today: date) -> list[Channel]:
    """The wanted channels the caps leave room for, in the campaign's order."""
    rules = caps.rules()

    def used(channel: str | None, days: int) -> int:
        return sum(1 for c in contacts if (today - c.day).days < days and (channel is None or c.channel == channel))

    overall = rules.get("overall")
    room = overall.max - used(None, overall.days) if overall else len(wanted)
    allowed = []
    for channel in wanted:
        rule = rules.get(channel)
        if room <= 0:
            break
        if rule is not None and used(channel, rule.days) >= rule.max:
            continue
        allowed.append(channel)
        room -= 1
    return allowed


def release_time(
    now: datetime, profile: Mapping[str, Any], definition: CampaignDefinition, quiet: QuietHours | None
) -> tuple[datetime, bool]:
    """(UTC time the member's messages may leave, whether quiet hours moved it)."""
    zone = customer_zone(profile, definition.default_timezone)
    local = now.astimezone(zone)
    if definition.send_at_local is not None:
        target = datetime.combine(local.date(), definition.send_at_local, tzinfo=zone)
        if target < local.replace(second=0, microsecond=0):
            target = datetime.combine(local.date() + timedelta(days=1), definition.send_at_local, tzinfo=zone)
        local = target
    deferred = False
    if quiet is not None and quiet.contains(local.time().replace(tzinfo=None)):
        end_day = local.date() if local.time() < quiet.end else local.date() + timedelta(days=1)
        local, deferred = datetime.combine(end_day, quiet.end, tzinfo=zone), True
    release = local.astimezone(UTC).replace(second=0, microsecond=0)
    return max(release, now.astimezone(UTC).replace(second=0, microsecond=0)), deferred


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What planning keeps of one audience member between its two stages (see the module docstring).

    `state` is set when the member is settled before the cross-member stage (holdout, no address, no consent);
    None means reachable on `channels`. `addresses` holds a hash of the address of each of those channels.
    """

    customer_id: str
    state: MemberState | None
    variant: str | None
    score: float | None = None
    channels: tuple[Channel, ...] = ()
    addresses: tuple[str, ...] = ()
    release_at: datetime | None = None
    deferred: bool = False
    offer_value: str | None = None
    decile: int | None = None
    # What sending reads of the profile on `channels` (CampaignDefinition.contact), carried to the batches.
    contact: Mapping[str, str | bool] | None = None

    FIELDS = (
        "customer_id", "state", "variant", "score", "channels", "addresses", "release_at", "deferred", "offer",
        "decile", "contact",
    )  # fmt: skip

    def to_row(self) -> list[str]:
        """The facts as text, in FIELDS order (what a segment of a run writes); `from_row` reads them back."""
        return [
            self.customer_id,
            self.state.value if self.state else "",
            self.variant or "",
            repr(self.score) if self.score is not None else "",  # repr round-trips a float exactly: ranks hold
            "+".join(self.channels),
            "+".join(self.addresses),
            self.release_at.astimezone(UTC).strftime("%Y%m%dT%H%MZ") if self.release_at else "",
            "1" if self.deferred else "",
            self.offer_value if self.offer_value is not None else "",
            str(self.decile) if self.decile is not None else "",
            json.dumps(self.contact, ensure_ascii=False, separators=(",", ":")) if self.contact is not None else "",
        ]

    @classmethod
    def from_row(cls, row: list[str]) -> "MemberFacts":
        # Rows a segment wrote before deciles were kept have nine fields, before contacts were carried ten.
        customer_id, state, variant, score, channels, addresses, release_at, deferred, offer, *rest = row
        return cls(
            customer_id,
            MemberState(state) if state else None,
            variant or None,
            float(score) if score else None,
            tuple(channels.split("+")) if channels else (),  # type: ignore[arg-type]
            tuple(addresses.split("+")) if addresses else (),
            datetime.strptime(release_at, "%Y%m%dT%H%MZ").replace(tzinfo=UTC) if release_at else None,
            deferred == "1",
            offer or None,
            int(rest[0]) if rest and rest[0] else None,
            json.loads(rest[1]) if len(rest) > 1 and rest[1] else None,
        )


# A normalised address's hash, the same the suppression list is keyed on; no address in what a run writes between
# its stages.
address_hash = hash_normalised


@dataclass(slots=True)
class Assessment:
    """The first stage's output for some of the audience: how many candidates were read, the members' facts."""

    considered: int = 0
    facts: list[MemberFacts] = field(default_factory=list)


def assess(
    definition: CampaignDefinition,
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    stack: StackRules | None = None,
) -> Assessment:
    """The per-member stage: each candidate the audience rule holds, with what only it decides (see the module
    docstring), in the candidates' order."""
    stack = stack or StackRules()
    quiet = definition.quiet_hours or stack.quiet_hours
    out = Assessment()
    for candidate in candidates:
        out.considered += 1
        view = member_view(candidate.profile, candidate.activity, candidate.score, now)
        if not definition.audience.holds(view):
            continue
        customer_id = candidate.customer_id
        variant, holdout = assign(definition, customer_id)
        score = view["score"]
        decile = _decile(candidate)
        if holdout:
            out.facts.append(MemberFacts(customer_id, MemberState.HOLDOUT, variant, score, decile=decile))
            continue
        if _quiet(candidate.profile, now):
            out.facts.append(MemberFacts(customer_id, MemberState.QUIET_PERIOD, variant, score, decile=decile))
            continue
        state, channels = _reachable_channels(definition, candidate.profile, stack.suppressed)
        if state is not None:
            out.facts.append(MemberFacts(customer_id, state, variant, score, decile=decile))
            continue
        release, deferred = release_time(now, candidate.profile, definition, quiet)
        offer = definition.offer_for(variant)
        offer_value = None
        if offer is not None:
            offer_value = offer.value_for(float(decile) if decile is not None else None, score)
        hashes = tuple(address_hash(_address(definition, candidate.profile, channel) or "") for channel in channels)
        contact = definition.contact(candidate.profile, channels)
        out.facts.append(
            MemberFacts(
                customer_id, None, variant, score, channels, hashes, release, deferred, offer_value, decile, contact
            )
        )
    return out


def _quiet(profile: Mapping[str, Any], now: datetime) -> bool:
    until = profile.get("quiet_until")
    if not isinstance(until, str) or not until:
        return False
    try:
        moment = datetime.fromisoformat(until)
    except ValueError:
        return False  # not a time we wrote: the quiet period is ours to set, an unreadable one holds nobody back
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) > now


def _decile(candidate: Candidate) -> int | None:
    decile = (candidate.score or {}).get("decile", candidate.profile.get("decile"))
    return int(decile) if decile is not None else None


def decide(
    definition: CampaignDefinition,
    run_id: str,
    facts: Iterable[MemberFacts],
    *,
    considered: int,
    now: datetime,
    history: ContactHistory | None = None,
    stack: StackRules | None = None,
    secret: str = "",
) -> Plan:
    """The cross-member stage: every member's final state and the run's sends, from all members' facts (members
    keep the order of `facts`)."""
    history = history or ContactHistory()
    stack = stack or StackRules()
    caps = definition.caps or stack.caps
    today = now.astimezone(UTC).date()
    plan = Plan(run_id=run_id, considered=considered)
    reachable: list[tuple[MemberFacts, Member]] = []
    for fact in facts:
        member = Member(
            fact.customer_id, fact.state or MemberState.QUEUED, fact.variant, score=fact.score, decile=fact.decile
        )
        plan.members.append(member)
        if _reentered(definition, history.of(fact.customer_id), today):
            member.state = MemberState.REENTRY_EXCLUDED
        elif fact.state is None:
            reachable.append((fact, member))
    codes: set[str] = set()
    for fact, member, channels in _one_message_per_address(reachable):
        allowed = _allowed_channels(caps, history.of(member.customer_id), channels, today)
        if not allowed:
            member.state = MemberState.CAPPED
            continue
        assert fact.release_at is not None  # noqa: S101 - assess gives every reachable member a release time
        release = fact.release_at
        member.state = MemberState.DEFERRED if fact.deferred else MemberState.QUEUED
        member.channels, member.release_at = tuple(allowed), release
        offer = definition.offer_for(member.variant)
        if offer is not None:
            member.offer_value = fact.offer_value
            if offer.coupon:
                member.coupon_code = _unique_code(codes, secret, run_id, member.customer_id, offer.coupon_prefix)
        for channel in allowed:
            plan.releases.setdefault(release, []).append(
                Send(
                    definition.campaign_id,
                    run_id,
                    member.customer_id,
                    channel,
                    member.variant,
                    member.offer_value,
                    member.coupon_code,
                    definition.contact(fact.contact, (channel,)) if fact.contact is not None else None,
                )
            )
    return plan


def plan_run(
    definition: CampaignDefinition,
    run_id: str,
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    history: ContactHistory | None = None,
    stack: StackRules | None = None,
    secret: str = "",
) -> Plan:
    """Decide every audience member's state and the sends of one run (see the module docstring)."""
    assessed = assess(definition, candidates, now=now, stack=stack)
    return decide(
        definition,
        run_id,
        assessed.facts,
        considered=assessed.considered,
        now=now,
        history=history,
        stack=stack,
        secret=secret,
    )


def _unique_code(codes: set[str], secret: str, run_id: str, customer_id: str, prefix: str) -> str:
    attempt = 0
    while (code := coupon_code(secret, run_id, customer_id, prefix, attempt)) in codes:
        attempt += 1
    codes.add(code)
    return code


def _reachable_channels(
    definition: CampaignDefinition, profile: Mapping[str, Any], suppressed: frozenset[tuple[str, str]] = frozenset()
) -> tuple[MemberState | None, tuple[Channel, ...]]:
    """(no_address / no_consent / suppressed when no channel is left, else None; the campaign's channels with
    address and consent whose address is not suppressed)."""
    addressed = [channel for channel in definition.channels if _address(definition, profile, channel)]
    consented = tuple(channel for channel in addressed if definition.consented(profile, channel))
    if not addressed:
        return MemberState.NO_ADDRESS, ()
    if not consented:
        return MemberState.NO_CONSENT, ()
    allowed = tuple(
        channel
        for channel in consented
        if (channel, address_hash(_address(definition, profile, channel) or "")) not in suppressed
    )
    if not allowed:
        return MemberState.SUPPRESSED, ()
    return None, allowed


def _one_message_per_address(
    reachable: list[tuple[MemberFacts, Member]],
) -> list[tuple[MemberFacts, Member, tuple[Channel, ...]]]:
    """Drop each channel whose address a higher-ranked member already holds; members left with none are duplicates."""
    ranked = sorted(reachable, key=lambda item: (-(item[1].score or 0.0), item[1].customer_id))
    holders: dict[tuple[Channel, str], str] = {}
    kept = []
    for fact, member in ranked:
        own: list[Channel] = []
        first_holder = None
        for channel, address in zip(fact.channels, fact.addresses, strict=True):
            holder = holders.get((channel, address))
            if holder is None:
                holders[(channel, address)] = member.customer_id
                own.append(channel)
            else:
                first_holder = first_holder or holder
        if own:
            kept.append((fact, member, tuple(own)))
        else:
            member.state, member.duplicate_of = MemberState.DUPLICATE_ADDRESS, first_holder
    return kept


def contacts_of(plan: Plan, campaign_id: str) -> list[Contact]:
    """What this run adds to the contact history: one contact per planned send, on its release day."""
    return [
        Contact(send.customer_id, moment.date(), send.channel, campaign_id, plan.run_id)
        for moment, sends in plan.releases.items()
        for send in sends
    ]


def time_of_day(text: str) -> time:
    """'21:00' -> time(21, 0) (for settings read from the environment)."""
    return time.fromisoformat(text)
