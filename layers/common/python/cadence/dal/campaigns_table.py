"""The campaigns table: a campaign's definition (record_key DEFINITION) and its runs (record_key RUN#<run id>)."""

import json
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.dal.items import from_item, to_item
from cadence.errors import InvalidInputError

DEFINITION = "DEFINITION"


class RunStatus(StrEnum):
    PLANNING = "PLANNING"
    FANNED_OUT = "FANNED_OUT"


def _run_key(run_id: str) -> str:
    return f"RUN#{run_id}"


def put_definition(table_name: str, campaign_id: str, definition: Mapping[str, Any], active: bool) -> None:
    """Store (or replace) a validated campaign definition."""
    try:
        clients.table(table_name).put_item(
            Item={
                "campaign_id": campaign_id,
                "record_key": DEFINITION,
                "definition": json.dumps(definition, sort_keys=True),
                "active": active,
                "updated_at": datetime.now(UTC).isoformat(),
            }
        )
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.put_definition") from exc


def _stored_definition(item: Mapping[str, Any]) -> dict[str, Any]:
    # The item's own active attribute is the switch: the daily sweep filters on it and an operator can flip it with
    # one UpdateItem. The copy inside the JSON is what was last deployed, and gives way to it.
    return {**json.loads(item["definition"]), "active": item.get("active") is True}


def get_definition(table_name: str, campaign_id: str) -> dict[str, Any] | None:
    """A campaign's stored definition, with `active` as the item's attribute says; None when there is none."""
    try:
        key = {"campaign_id": campaign_id, "record_key": DEFINITION}
        item = clients.table(table_name).get_item(Key=key, ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise clients.translate(exc, "campaigns.get_definition") from exc
    return _stored_definition(item) if item else None


def active_campaign_ids(table_name: str) -> Iterator[str]:
    """The id of every active campaign (the definitions themselves are read, and validated, by each run)."""
    active = Attr("record_key").eq(DEFINITION) & Attr("active").eq(True)
    pages = clients.scan_pages(
        table_name, "campaigns.active_campaign_ids", FilterExpression=active, ProjectionExpression="campaign_id"
    )
    for page in pages:
        for item in page:
            yield str(item["campaign_id"])


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


def finish_run(table_name: str, campaign_id: str, run_id: str, summary: Mapping[str, Any]) -> None:
    """PLANNING -> FANNED_OUT with the run's counts; a run already fanned out is left as it is."""
    item = to_item(summary)
    names = {"#status": "status", **{f"#f{i}": name for i, name in enumerate(item)}}
    values = {
        ":planning": RunStatus.PLANNING.value,
        ":done": RunStatus.FANNED_OUT.value,
        ":finished": datetime.now(UTC).isoformat(),
        **{f":v{i}": value for i, value in enumerate(item.values())},
    }
    assignments = ["#status = :done", "finished_at = :finished"] + [f"#f{i} = :v{i}" for i in range(len(item))]
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": _run_key(run_id)},
            UpdateExpression="SET " + ", ".join(assignments),
            ConditionExpression="#status = :planning",
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


def list_definitions(table_name: str) -> Iterator[dict[str, Any]]:
    """Every stored campaign definition, with `active` as the item's attribute says (the operator's view)."""
    pages = clients.scan_pages(
        table_name, "campaigns.list_definitions", FilterExpression=Attr("record_key").eq(DEFINITION)
    )
    for page in pages:
        for item in page:
            yield _stored_definition(item)


def set_active(table_name: str, campaign_id: str, active: bool) -> None:
    """Switch a stored campaign on or off: the item attribute the daily sweep and dispatch read.

    Raises:
        InvalidInputError: no campaign with that id is stored.
    """
    try:
        clients.table(table_name).update_item(
            Key={"campaign_id": campaign_id, "record_key": DEFINITION},
            UpdateExpression="SET active = :active, updated_at = :now",
            ConditionExpression="attribute_exists(record_key)",
            ExpressionAttributeValues={":active": active, ":now": datetime.now(UTC).isoformat()},
        )
    except ClientError as exc:
        if clients.error_code(exc) == "ConditionalCheckFailedException":
            raise InvalidInputError(f"campaign {campaign_id} is not deployed") from exc
        raise clients.translate(exc, "campaigns.set_active") from exc


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
        from_item({key: value for key, value in item.items() if key != "coupon_secret"})
        for item in page.get("Items", [])
    ]
