"""Upload a built model to s3://<bucket>/models/<version>/, where the score function loads it from."""

from pathlib import Path
from typing import Any

import boto3

from cadence.dal.models import model_key
from cadence.scoring import load_model
from model_build.export import MANIFEST_FILE, MODEL_FILE, read_model_dir


def publish(model_dir: Path, bucket: str, *, endpoint_url: str | None = None, s3: Any = None) -> list[str]:
    """Verify the model directory as the score function would, then upload model.onnx and manifest.json.

    The manifest goes last, so a reader never finds a manifest whose model is not there yet.
    Returns the keys written.

    Raises:
        ModelMismatchError: the directory's model does not match its manifest or the feature spec.
    """
    onnx_bytes, manifest = read_model_dir(model_dir)
    version = load_model(onnx_bytes, manifest).version
    client = s3 if s3 is not None else boto3.client("s3", endpoint_url=endpoint_url)
    keys = []
    for name, body, content_type in (
        (MODEL_FILE, onnx_bytes, "application/octet-stream"),
        (MANIFEST_FILE, (model_dir / MANIFEST_FILE).read_bytes(), "application/json"),
    ):
        key = model_key(version, name)
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        keys.append(key)
    return keys
