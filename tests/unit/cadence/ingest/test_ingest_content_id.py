"""A file's content id is the MD5 of its bytes however it was uploaded, so re-uploads are recognised."""

import hashlib

from cadence.dal import uploads
from cadence.ingest.models import FileRef

PART = 5 * 1024 * 1024  # S3's smallest part but the last


def upload_in_parts(stack, key: str, data: bytes) -> str | None:
    s3 = stack.client("s3")
    upload = s3.create_multipart_upload(Bucket=stack.bucket, Key=key)
    parts = []
    for number, start in enumerate(range(0, len(data), PART), start=1):
        body = data[start : start + PART]
        part = s3.upload_part(Bucket=stack.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body)
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    done = s3.complete_multipart_upload(
        Bucket=stack.bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    return done.get("VersionId")


def content_id(stack, key: str, version: str | None) -> str:
    ref = FileRef(stack.bucket, key, version)
    info, body = uploads.open_object(ref)
    body.close()
    return uploads.content_id(ref, info)


def test_same_bytes_get_the_same_id_whole_or_in_parts(stack):
    data = b"order_id,customer_id,order_date,amount\n" + b"o,1,2024-01-01,1\n" * 400_000  # over one part

    whole = content_id(stack, "incoming/orders/whole.csv", stack.put("incoming/orders/whole.csv", data))
    in_parts = content_id(stack, "incoming/orders/parts.csv", upload_in_parts(stack, "incoming/orders/parts.csv", data))

    assert whole == in_parts == hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_different_bytes_get_different_ids(stack):
    first = content_id(stack, "incoming/orders/a.csv", stack.put("incoming/orders/a.csv", b"order_id\n1\n"))
    second = content_id(stack, "incoming/orders/b.csv", stack.put("incoming/orders/b.csv", b"order_id\n2\n"))

    assert first != second
