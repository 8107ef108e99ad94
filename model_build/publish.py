"""Upload a built model to s3://<bucket>/models/<version>/, where the score function loads it from."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from cadence.conversations.intent_model import MODEL_KIND as INTENT_KIND
from cadence.conversations.intent_model import load_intent_model
from cadence.dal.models import model_key
from cadence.scoring import load_model
from model_build.export import MANIFEST_FILE, MODEL_FILE, read_model_dir


def publish(model_dir: Path, bucket: str, *, endpoint_url: str | None = None, s3: Any = None) -> list[str]:
    """Verify the model directory as the function serving it would, then upload model.onnx and manifest.json.

    The manifest goes last, so a reader never finds a manifest whose model is not there yet.
    Returns the keys written.

    Raises:
        ModelMismatchError: the directory's model does not match its manifest, the feature spec or the intents.
    """
    onnx_bytes, manifest = read_model_dir(model_dir)
    version = verified_version(onnx_bytes, manifest)
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


def verified_version(onnx_bytes: bytes, manifest: Mapping[str, Any]) -> str:
    """The version of a model the serving code accepts: an intent model by its manifest's kind, else propensity.

    Raises:
        ModelMismatchError: the serving code's loader refuses the model.
    """
    if manifest.get("kind") == INTENT_KIND:
        return load_intent_model(onnx_bytes, manifest).version
    return load_model(onnx_bytes, manifest).version
