"""What erasing a customer does to storage (cadence.erasure): whole items by customer id, the send ledger's
entries, and the data bucket's object versions."""

from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients


def delete_customer_item(table_name: str, customer_id: str) -> int:
    """Delete the table's item keyed on customer_id; 1 when there was one, else 0."""
    try:
        response = clients.table(table_name).delete_item(Key={"customer_id": customer_id}, ReturnValues="ALL_OLD")
    except ClientError as exc:
        raise clients.translate(exc, "erasure.delete_customer_item") from exc
    return int(bool(response.get("Attributes")))


def scrub_ledger(table_name: str, customer_id: str) -> int:
    """Remove the customer from the send ledger: their outcome and feedback on each batch item, and the items of
    sends made before batches (keyed on the customer); returns how many items changed.

    A Scan of the ledger (no index by customer): erasure is rare, the table is read once per request.
    """
    changed = 0
    pages = clients.scan_pages(
        table_name,
        "erasure.scrub_ledger",
        FilterExpression="customer_id = :cid OR attribute_exists(recipients.#cid) OR attribute_exists(#fb)",
        ExpressionAttributeNames={"#cid": customer_id, "#fb": f"fb#{customer_id}"},
        ExpressionAttributeValues={":cid": customer_id},
        ProjectionExpression="customer_id, send_key",
    )
    table = clients.table(table_name)
    for page in pages:
        for item in page:
            key = {"customer_id": item["customer_id"], "send_key": item["send_key"]}
            try:
                if item["customer_id"] == customer_id:
                    table.delete_item(Key=key)
                else:
                    table.update_item(
                        Key=key,
                        UpdateExpression="REMOVE recipients.#cid, #fb",
                        ExpressionAttributeNames={"#cid": customer_id, "#fb": f"fb#{customer_id}"},
                    )
            except ClientError as exc:
                raise clients.translate(exc, "erasure.scrub_ledger") from exc
            changed += 1
    return changed


def object_versions(bucket: str, prefixes: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """(key, its version ids newest first) of every object under the prefixes (delete markers left out)."""
    paginator = clients.client("s3").get_paginator("list_object_versions")
    for prefix in prefixes:
        by_key: dict[str, list[tuple[bool, str, Any]]] = {}
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    entry = (bool(version["IsLatest"]), str(version["VersionId"]), version["LastModified"])
                    by_key.setdefault(str(version["Key"]), []).append(entry)
        except ClientError as exc:
            raise clients.translate(exc, "erasure.object_versions") from exc
        for key, entries in by_key.items():
            ordered = sorted(entries, key=lambda entry: (entry[0], entry[2]), reverse=True)
            yield key, [version_id for _, version_id, _ in ordered]


def read_version(bucket: str, key: str, version_id: str) -> bytes:
    try:
        response = clients.client("s3").get_object(Bucket=bucket, Key=key, VersionId=version_id)
    except ClientError as exc:
        raise clients.translate(exc, "erasure.read_version") from exc
    return bytes(response["Body"].read())


def put(bucket: str, key: str, data: bytes) -> None:
    try:
        clients.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    except ClientError as exc:
        raise clients.translate(exc, "erasure.put") from exc


def delete_versions(bucket: str, key: str, version_ids: Sequence[str]) -> int:
    """Delete these versions of the object for good; returns how many."""
    s3 = clients.client("s3")
    for version_id in version_ids:
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
        except ClientError as exc:
            raise clients.translate(exc, "erasure.delete_versions") from exc
    return len(version_ids)
