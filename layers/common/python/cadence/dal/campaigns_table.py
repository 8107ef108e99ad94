"""The campaigns table: a campaign's definition (record_key DEFINITION), every version of it stored (record_key
VERSION#<stored at>#<nonce>, with who stored it) and its runs (record_key RUN#<run id>)."""

import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from cadence.campaigns.lifecycle import State
from cadence.dal import clients
from cadence.dal.items import from_item, to_item
from cadence.errors import InvalidInputError

DEFINITION = "DEFINITION"
_VERSION = "VERSION#"


class RunStatus(StrEnum):
    PLANNING = "PLANNING"
    # A run split across invocations: its segments are done and one finisher is planning the whole audience.
    FINISHING = "FINISHING"
    FANNED_OUT = "FANNED_OUT"
    COMPLETED = "COMPLETED"  # every queued send has its final outcome (the run item keeps the final counters)
    FAILED = "FAILED"


# What a split run keeps on its item besides its status; the definition is the one its segments plan with.
# The run's copy of the definition is not named `definition`: the campaign function may not write that attribute
# (template.yaml's NoDefinitionWrites), which only the operator's CLI stores.
_SEGMENT_FIELDS = ("segments_total", "segments_done", "segment_considered", "run_definition", "finisher")


@dataclass(frozen=True)
class Segments:
    """A split run's progress: how many segments, which are done, how many candidates each read."""

    total: int
    done: frozenset[int]
    considered: Mapping[int, int]
    status: RunStatus
    definition: dict[str, Any]

    @property
    def complete(self) -> bool:
        return len(self.done) >= self.total


def _segments(item: Mapping[str, Any]) -> Segments:
    return Segments(
        total=int(item["segments_total"]),
        done=frozenset(int(k) for k in item.get("segments_done", ())),
        considered={int(k): int(v) for k, v in item.get("segment_considered", {}).items()},
        status=RunStatus(item.get("status", RunStatus.PLANNING.value)),
        definition=json.loads(item["run_definition"]),
    )


def _run_key(run_id: str) -> str:
    return f"RUN#{run_id}"


@dataclass(frozen=True)
class StoredCampaign:
    """A stored definition (JSON-ready, as validated when stored) and the campaign's lifecycle state."""

    campaign_id: str
    definition: dict[str, Any]
    state: State
    # The item's own state attribute (None on items stored before the lifecycle): what a conditional move expects.
    stored_state: str | None
    state_reason: str | None = None
    state_changed_at: str | None = None
    # Runs whose sends dispatch held while the campaign was paused: resuming (or cancelling) queues them again.
    held_runs: frozenset[str] = frozenset()


class ConcurrentChangeError(Exception):
    """The campaign's state changed between reading it and writing the move."""


def _campaign(item: Mapping[str, Any]) -> StoredCampaign:
    raw = item.get("state")
    # Items stored before the lifecycle carry only the active switch.
    state = State(raw) if raw else (State.DRAFT if item.get("active") is not False else State.PAUSED)
    definition = json.loads(item["definition"])
    definition.pop("active", None)
    return StoredCampaign(
        campaign_id=str(item["campaign_id"]),
        definition=definition,
        state=state,
        stored_state=raw,
        state_reason=item.get("state_reason"),
        state_changed_at=item.get("state_changed_at"),
        held_runs=frozenset(item.get("held_runs", ())),
    )


def _expect(stored_state: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(condition, names, values) that hold only while the item's state attribute is still `stored_state`."""
    if stored_state is None:
        return "attribute_not_exists(#state)", {"#state": "state"}, {}
    return "#state = :expected", {"#state": "state"}, {":expected": stored_state}


def put_definition(
    table_name: str,
    campaign_id: str,
    definition: Mapping[str, Any],
    state: State,
    expected: str | None = None,
    *,
    stored_by: str | None = None,
) -> None:
    """Store (or replace) a validated definition in `state`, if the item's state attribute is still `expected`
    (None: no campaign is stored, or one stored before the lifecycle), and keep it as a new version with who
    stored it (`stored_by`, the caller's IAM principal) and when; both writes happen or neither.

    Raises:
        ConcurrentChangeError: the state is no longer `expected`.
    """
    condition, names, values = _expect(expected)
    now = datetime.now(UTC).isoformat()
    text = json.dumps({k: v for k, v in definition.items() if k != "active"}, sort_keys=True)
    current = {
        "campaign_id": campaign_id,
        "record_key": DEFINITION,
        "definition": text,
        "state": state.value,
        "state_changed_at": now,
        "updated_at": now,
        **({"stored_by": stored_by} if stored_by else {}),
    }
    # Sort keys order versions by time; the nonce keeps two stores in one microsecond apart.
    version = {
        "campaign_id": campaign_id,
        "record_key": f"{_VERSION}{now}#{secrets.token_hex(4)}",
        "definition": text,
        "stored_at": now,
        "stored_by": stored_by or "unknown",
    }
    serialize = TypeSerializer().serialize
    try:
        clients.client("dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": {key: serialize(value) for key, value in current.items()},
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": names,
                        **(
                            {"ExpressionAttributeValues": {key: serialize(v) for key, v in values.items()}}
                            if values
                            else {}
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": {key: serialize(value) for key, value in version.items()},
                        "ConditionExpression": "attribute_not_exists(record_key)",
                    }
                },
            ]
        )
    except ClientError as exc:
        reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
        if reasons & {"ConditionalCheckFailed", "TransactionConflict"}:
            raise ConcurrentChangeError(f"campaign {campaign_id} changed while it was being stored") from exc
        raise clients.translate(exc, "campaigns.put_definition") from exc


def history(table_name: str, campaign_id: str) -> list[dict[str, Any]]:
    """Every stored version of a campaign's definition, oldest first: stored_at, stored_by, definition (a dict)."""
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "KeyConditionExpression": Key("campaign_id").eq(campaign_id) & Key("record_key").begins_with(_VERSION),
        "ConsistentRead": True,
    }
    try:
        while True:
            page = clients.table(table_name).query(**arguments)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.history") from exc
    return [
        {
            "stored_at": str(item["stored_at"]),
            "stored_by": str(item["stored_by"]),
            "definition": json.loads(item["definition"]),
        }
        for item in items
    ]


def move(table_name: str, campaign_id: str, expected: str | None, to: State, reason: str | None = None) -> None:
    """Set the campaign's state to `to` if it is still `expected` (the stored state attribute just read).

    Raises:
        ConcurrentChangeError: the campaign is gone, or its state is no longer `expected`.
    """
    condition, names, values = _expect(expected)
    assignments = "#state = :to, state_changed_at = :now" + (", state_reason = :reason" if reason else "")
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": DEFINITION},
            UpdateExpression=f"SET {assignments}" + ("" if reason else " REMOVE state_reason"),
            ConditionExpression=f"attribute_exists(record_key) AND {condition}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                **values,
                ":to": to.value,
                ":now": datetime.now(UTC).isoformat(),
                **({":reason": reason[:1000]} if reason else {}),
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            raise ConcurrentChangeError(f"campaign {campaign_id} changed before it could become {to.value}") from exc
        raise clients.translate(exc, "campaigns.move") from exc


def get_campaign(table_name: str, campaign_id: str) -> StoredCampaign | None:
    """A campaign's stored definition and state; None when there is none."""
    try:
        key = {"campaign_id": campaign_id, "record_key": DEFINITION}
        item = clients.table(table_name).get_item(Key=key, ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.get_campaign") from exc
    return _campaign(item) if item else None


def claim_run(table_name: str, campaign_id: str, run_id: str) -> RunStatus | None:
    """Create the run in PLANNING; returns None when new, else the status an earlier delivery left."""
    table = clients.table(table_name)
    key = {"campaign_id": campaign_id, "record_key": _run_key(run_id)}
    try:
        table.put_item(
            Item={
                **key,
                "run_id": run_id,
                "status": RunStatus.PLANNING.value,
                "started_at": datetime.now(UTC).isoformat(),
                # Coupon codes are an HMAC of run and customer under this: unguessable, and the same on a re-plan.
                "coupon_secret": secrets.token_hex(32),
            },
            ConditionExpression="attribute_not_exists(record_key)",
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "campaigns.claim_run") from exc
        existing = table.get_item(Key=key, ConsistentRead=True).get("Item", {})
        return RunStatus(existing.get("status", RunStatus.PLANNING.value))
    return None


def run_secret(table_name: str, campaign_id: str, run_id: str) -> str:
    """The secret the run's coupon codes derive from (written when the run was claimed)."""
    try:
        item = clients.table(table_name).get_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)}, ConsistentRead=True
        )
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.run_secret") from exc
    return str(item.get("Item", {}).get("coupon_secret", ""))


def split_run(table_name: str, campaign_id: str, run_id: str, total: int, definition: Mapping[str, Any]) -> Segments:
    """Record that the run is planned in `total` segments with `definition`; returns what the run holds.

    The first call wins: a retried coordinator that would pick another total (the table grew) or a definition
    stored again meanwhile gets the first one's, so the segments always partition the audience one way.
    """
    try:
        item = clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression=(
                "SET segments_total = if_not_exists(segments_total, :total), "
                "#definition = if_not_exists(#definition, :definition), "
                "segment_considered = if_not_exists(segment_considered, :none)"
            ),
            ConditionExpression="attribute_exists(record_key)",
            ExpressionAttributeNames={"#definition": "run_definition"},
            ExpressionAttributeValues={
                ":total": total,
                ":definition": json.dumps(dict(definition), sort_keys=True),
                ":none": {},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.split_run") from exc
    return _segments(item)


def segment_done(table_name: str, campaign_id: str, run_id: str, segment: int, considered: int) -> Segments:
    """Add `segment` to the run's done set (a set: a retried segment adds nothing) with how many candidates it
    read; returns the run's progress after the write, so exactly the writes after the last segment see it complete.

    Raises:
        InvalidInputError: the run is not split (or gone).
    """
    try:
        item = clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="ADD segments_done :segment SET segment_considered.#k = :considered",
            ConditionExpression="attribute_exists(segments_total)",
            ExpressionAttributeNames={"#k": str(segment)},
            ExpressionAttributeValues={":segment": {segment}, ":considered": considered},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            raise InvalidInputError(f"run {run_id} is not split into segments") from exc
        raise clients.translate(exc, "campaigns.segment_done") from exc
    return _segments(item)


def get_segments(table_name: str, campaign_id: str, run_id: str) -> Segments | None:
    """A split run's progress (None: no such run, or not split)."""
    try:
        item = (
            clients.table(table_name)
            .get_item(Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)}, ConsistentRead=True)
            .get("Item")
        )
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.get_segments") from exc
    return _segments(item) if item and "segments_total" in item else None


def claim_finish(table_name: str, campaign_id: str, run_id: str, finisher: str) -> bool:
    """PLANNING -> FINISHING for `finisher` (the caller saw every segment done); True when `finisher` holds the finish
    (it just claimed it, or claimed it on an earlier attempt: Lambda retries an invocation under its request id).
    """
    table = clients.table(table_name)
    key = {"campaign_id": campaign_id, "record_key": _run_key(run_id)}
    try:
        table.update_item(
            Key=key,
            UpdateExpression="SET #status = :finishing, finisher = :finisher",
            ConditionExpression="#status = :planning AND attribute_exists(segments_total)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":planning": RunStatus.PLANNING.value,
                ":finishing": RunStatus.FINISHING.value,
                ":finisher": finisher,
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) != "ConditionalCheckFailedException":
            raise clients.translate(exc, "campaigns.claim_finish") from exc
        item = table.get_item(Key=key, ConsistentRead=True).get("Item", {})
        return bool(item.get("status") == RunStatus.FINISHING.value and item.get("finisher") == finisher)
    return True


def fail_run(table_name: str, campaign_id: str, run_id: str, reason: str) -> bool:
    """A run still planning or finishing -> FAILED with the reason; False when it had fanned out (or failed)."""
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="SET #status = :failed, failed_at = :now, failure_reason = :reason",
            ConditionExpression="#status IN (:planning, :finishing)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":planning": RunStatus.PLANNING.value,
                ":finishing": RunStatus.FINISHING.value,
                ":failed": RunStatus.FAILED.value,
                ":now": datetime.now(UTC).isoformat(),
                ":reason": reason[:1000],
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "campaigns.fail_run") from exc
    return True


def finish_run(table_name: str, campaign_id: str, run_id: str, summary: Mapping[str, Any]) -> None:
    """PLANNING or FINISHING -> FANNED_OUT with the run's counts; a run fanned out (or failed) is left as it is."""
    item = to_item(summary)
    names = {"#status": "status", **{f"#f{i}": name for i, name in enumerate(item)}}
    values = {
        ":planning": RunStatus.PLANNING.value,
        ":finishing": RunStatus.FINISHING.value,
        ":done": RunStatus.FANNED_OUT.value,
        ":finished": datetime.now(UTC).isoformat(),
        **{f":v{i}": value for i, value in enumerate(item.values())},
    }
    assignments = ["#status = :done", "finished_at = :finished"] + [f"#f{i} = :v{i}" for i in range(len(item))]
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="SET " + ", ".join(assignments),
            ConditionExpression="#status IN (:planning, :finishing)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return
        raise clients.translate(exc, "campaigns.finish_run") from exc


def get_run(table_name: str, campaign_id: str, run_id: str) -> dict[str, Any] | None:
    try:
        item = clients.table(table_name).get_item(Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)})
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.get_run") from exc
    return from_item(item["Item"]) if "Item" in item else None


def list_campaigns(table_name: str) -> Iterator[StoredCampaign]:
    """Every stored campaign with its state (the operator's view)."""
    pages = clients.scan_pages(
        table_name, "campaigns.list_campaigns", FilterExpression=Attr("record_key").eq(DEFINITION)
    )
    for page in pages:
        for item in page:
            yield _campaign(item)


# The coupon secret stays in the table; a split run's definition and bookkeeping are no counters.
_HIDDEN_RUN_FIELDS = frozenset({"coupon_secret", *_SEGMENT_FIELDS})


def list_runs(table_name: str, campaign_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """A campaign's latest runs, newest first, with their counters (the coupon secret stays in the table)."""
    try:
        page = clients.table(table_name).query(
            KeyConditionExpression=Key("campaign_id").eq(campaign_id) & Key("record_key").begins_with(_run_key("")),
            ScanIndexForward=False,  # run ids end in their scheduled time, so the sort key orders runs by time
            Limit=limit,
        )
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.list_runs") from exc
    return [
        from_item({key: value for key, value in item.items() if key not in _HIDDEN_RUN_FIELDS})
        for item in page.get("Items", [])
    ]


def note_held_run(table_name: str, campaign_id: str, run_id: str) -> None:
    """Remember that some of the run's sends are held for the paused campaign (idempotent: a set)."""
    _update_held(table_name, campaign_id, "ADD", run_id, "campaigns.note_held_run")


def forget_held_run(table_name: str, campaign_id: str, run_id: str) -> None:
    """The run's held sends were queued again."""
    _update_held(table_name, campaign_id, "DELETE", run_id, "campaigns.forget_held_run")


def _update_held(table_name: str, campaign_id: str, verb: str, run_id: str, action: str) -> None:
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": DEFINITION},
            UpdateExpression=f"{verb} held_runs :run",
            ConditionExpression="attribute_exists(record_key)",
            ExpressionAttributeValues={":run": {run_id}},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return  # the campaign is gone: nothing can resume it
        raise clients.translate(exc, action) from exc


def add_settled(table_name: str, campaign_id: str, run_id: str, sends: int) -> dict[str, Any]:
    """Count `sends` more of the run's sends as done (negative when a retry reopens some); returns the run item.

    A counter, not the truth: a worker dying between settling a batch and counting it leaves it short, which the
    ledger-based check in `cadence.run_report.complete_if_settled` reconciles. `settled_at` (ISO UTC) says when it
    last moved, so that check is made only once the run has gone quiet.
    """
    try:
        response = clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="ADD sends_settled :sends SET settled_at = :now",
            ExpressionAttributeValues={":sends": sends, ":now": datetime.now(UTC).isoformat()},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.add_settled") from exc
    return from_item(response.get("Attributes", {}))


def take_ledger_check(table_name: str, campaign_id: str, run_id: str, *, every_seconds: float) -> bool:
    """Whether this caller may read the run's whole ledger now: at most one caller per `every_seconds` for a run
    (`ledger_checked_at`), however many redelivered batches ask. False when another did within that time."""
    now = datetime.now(UTC)
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="SET ledger_checked_at = :now",
            ConditionExpression="attribute_exists(record_key) AND "
            "(attribute_not_exists(ledger_checked_at) OR ledger_checked_at < :since)",
            ExpressionAttributeValues={
                ":now": now.isoformat(),
                ":since": (now - timedelta(seconds=every_seconds)).isoformat(),
            },
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "campaigns.take_ledger_check") from exc
    return True


def complete_run(table_name: str, campaign_id: str, run_id: str, counters: Mapping[str, int]) -> bool:
    """FANNED_OUT -> COMPLETED with the final counters; False when the run was not FANNED_OUT (done already)."""
    return _move_run(
        table_name,
        campaign_id,
        run_id,
        (RunStatus.FANNED_OUT, RunStatus.COMPLETED),
        update="SET #status = :to, completed_at = :now, final_counters = :counters",
        values={":now": datetime.now(UTC).isoformat(), ":counters": dict(counters)},
    )


def reopen_run(table_name: str, campaign_id: str, run_id: str) -> bool:
    """COMPLETED -> FANNED_OUT: some of its sends were queued again (retry-failed); False for a run not completed."""
    return _move_run(
        table_name,
        campaign_id,
        run_id,
        (RunStatus.COMPLETED, RunStatus.FANNED_OUT),
        update="SET #status = :to REMOVE completed_at, final_counters",
        values={},
    )


def _move_run(
    table_name: str,
    campaign_id: str,
    run_id: str,
    move: tuple[RunStatus, RunStatus],
    *,
    update: str,
    values: Mapping[str, Any],
) -> bool:
    expected, to = move
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression=update,
            ConditionExpression="#status = :expected",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":expected": expected.value, ":to": to.value, **values},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, f"campaigns.move_run_to_{to.value.lower()}") from exc
    return True


def add_feedback(table_name: str, campaign_id: str, run_id: str, counts: Mapping[str, int]) -> dict[str, int]:
    """Add provider event counts to the run (`feedback_<kind>`); returns every feedback count after the add."""
    names = {f"#k{i}": f"feedback_{kind}" for i, kind in enumerate(counts)}
    values = {f":v{i}": count for i, count in enumerate(counts.values())}
    try:
        response = clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="ADD " + ", ".join(f"#k{i} :v{i}" for i in range(len(counts))),
            ConditionExpression="attribute_exists(record_key)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return {}  # no such run: nothing to guard
        raise clients.translate(exc, "campaigns.add_feedback") from exc
    item = from_item(response.get("Attributes", {}))
    return {key.removeprefix("feedback_"): int(value) for key, value in item.items() if key.startswith("feedback_")}


def mark_risk_paused(table_name: str, campaign_id: str, run_id: str, figures: Mapping[str, Any]) -> bool:
    """Note once that the risk guard paused the campaign for this run; False when it had already."""
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="SET risk_paused = :figures",
            ConditionExpression="attribute_exists(record_key) AND attribute_not_exists(risk_paused)",
            ExpressionAttributeValues={":figures": to_item(dict(figures))},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise clients.translate(exc, "campaigns.mark_risk_paused") from exc
    return True
