"""Model artefacts in S3: models/<version>/model.onnx beside models/<version>/manifest.json."""

import json
from typing import Any

from botocore.exceptions import ClientError

from cadence.dal import clients


def model_key(version: str, name: str) -> str:
    return f"models/{version}/{name}"


def load_artifacts(bucket: str, version: str) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes and the parsed manifest of one model version."""
    s3 = clients.client("s3")
    try:
        model_bytes = s3.get_object(Bucket=bucket, Key=model_key(version, "model.onnx"))["Body"].read()
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=model_key(version, "manifest.json"))["Body"].read())
    except ClientError as exc:
        raise clients.translate(exc, f"models.load {version}") from exc
    return model_bytes, manifest
