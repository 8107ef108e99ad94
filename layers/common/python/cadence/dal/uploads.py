"""Files in the data bucket: the dropped object as a stream, the reports and rejects written beside it."""

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

from botocore.exceptions import ClientError

from cadence.dal import clients
from cadence.errors import InvalidInputError
from cadence.ingest.models import FileRef, ObjectInfo

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# A single-part upload's ETag under SSE-S3 (the bucket's encryption) is the MD5 of its bytes.
_PLAIN_ETAG = re.compile(r"^[0-9a-f]{32}$")


def _version(ref: FileRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


def open_object(ref: FileRef) -> tuple[ObjectInfo, BinaryIO]:
    """The object's facts and its body as a stream (read it in pieces; close it when done).

    Raises:
        InvalidInputError: the object (or the version the event named) does not exist.
    """
    try:
        response = clients.client("s3").get_object(Bucket=ref.bucket, Key=ref.key, **_version(ref))
    except ClientError as exc:
        if clients.error_code(exc) in _MISSING:
            raise InvalidInputError(f"uploads.open: {ref.key} not found") from exc
        raise clients.translate(exc, "uploads.open") from exc
    modified: datetime = response.get("LastModified") or datetime.now(UTC)
    info = ObjectInfo(
        size=int(response.get("ContentLength", 0)),
        etag=str(response.get("ETag", "")).strip('"'),
        last_modified=modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        metadata={key.lower(): value for key, value in response.get("Metadata", {}).items()},
        version_id=response.get("VersionId") or ref.version_id,
    )
    return info, response["Body"]


def plain_md5(info: ObjectInfo) -> str | None:
    """The MD5 of the object's bytes when its ETag is one (a single-part upload), else None."""
    return info.etag if _PLAIN_ETAG.match(info.etag) else None


def content_id(ref: FileRef, info: ObjectInfo) -> str:
    """The MD5 of the object's bytes, hex: its ETag when that is one, else computed by reading it once.

    A multipart upload's ETag depends on its part size, so the same bytes uploaded another way would get
    another ETag; hashing them keeps the id a function of the content alone.
    """
    if (md5 := plain_md5(info)) is not None:
        return md5
    digest = hashlib.md5(usedforsecurity=False)
    _, body = open_object(FileRef(ref.bucket, ref.key, info.version_id or ref.version_id))
    with body:
        while block := body.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def read_json(bucket: str, key: str) -> dict[str, Any]:
    """A small JSON object, e.g. a column-mapping override.

    Raises:
        InvalidInputError: the object is missing or is not a JSON object.
    """
    info, body = open_object(FileRef(bucket=bucket, key=key))
    with body:
        try:
            value = json.loads(body.read())
        except ValueError as exc:
            raise InvalidInputError(f"uploads.read_json: {key} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidInputError(f"uploads.read_json: {key} is not a JSON object ({info.size} bytes)")
    return value


def read_bytes(bucket: str, key: str) -> bytes:
    """A small object's bytes.

    Raises:
        InvalidInputError: the object is missing.
    """
    _, body = open_object(FileRef(bucket=bucket, key=key))
    with body:
        return bytes(body.read())


def put_bytes(bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    try:
        clients.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    except ClientError as exc:
        raise clients.translate(exc, "uploads.put_bytes") from exc


def put_bytes_once(bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> bytes:
    """Write the object unless it exists (a conditional PutObject); returns the bytes stored under the key.

    Raises:
        TransientError, PermanentError: S3 failed or refused the write or the read.
    """
    try:
        clients.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*")
    except ClientError as exc:
        # 412: an earlier attempt wrote it; 409: a concurrent write of the same key is under way.
        if clients.error_code(exc) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise clients.translate(exc, "uploads.put_bytes_once") from exc
        return read_bytes(bucket, key)
    return data


def put_json(bucket: str, key: str, body: Mapping[str, Any]) -> None:
    data = json.dumps(body, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    try:
        clients.client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/json; charset=utf-8"
        )
    except ClientError as exc:
        raise clients.translate(exc, "uploads.put_json") from exc


def put_file(bucket: str, key: str, fileobj: IO[bytes], content_type: str) -> None:
    """Upload a local file object (multipart when large)."""
    try:
        clients.client("s3").upload_fileobj(fileobj, bucket, key, ExtraArgs={"ContentType": content_type})
    except ClientError as exc:
        raise clients.translate(exc, "uploads.put_file") from exc


def move_aside(ref: FileRef, destination_key: str) -> None:
    """Copy the exact version we read to `destination_key`, then delete the original key.

    In a versioned bucket the delete only adds a delete marker, so a retried event that names the
    version can still read it and reaches the same verdict.
    """
    s3 = clients.client("s3")
    source = {"Bucket": ref.bucket, "Key": ref.key, **_version(ref)}
    try:
        s3.copy(source, ref.bucket, destination_key)
        s3.delete_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as exc:
        if clients.error_code(exc) in _MISSING:
            raise InvalidInputError(f"uploads.move_aside: {ref.key} not found") from exc
        raise clients.translate(exc, "uploads.move_aside") from exc


def delete(bucket: str, key: str) -> None:
    try:
        clients.client("s3").delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        raise clients.translate(exc, "uploads.delete") from exc
