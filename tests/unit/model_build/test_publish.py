import boto3
import pytest

from cadence.dal.models import load_artifacts
from cadence.errors import ModelMismatchError
from cadence.scoring import load_model
from model_build.publish import publish
from model_build.train import build_model


@pytest.fixture(scope="module")
def model_dir(small_feeds, small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    build_model(
        small_feeds, small_data.as_of, 30, out, version="pub-1", with_report=False, candidates=["logistic_regression"]
    )
    return out


def test_published_model_loads_through_the_score_function_path(model_dir, data_bucket):
    keys = publish(model_dir, data_bucket)

    model = load_model(*load_artifacts(data_bucket, "pub-1"))
    assert keys == ["models/pub-1/model.onnx", "models/pub-1/manifest.json"]
    assert model.version == "pub-1"


def test_a_directory_whose_manifest_does_not_match_is_not_uploaded(model_dir, data_bucket, tmp_path):
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes() + b"\0")
    (tampered / "manifest.json").write_text((model_dir / "manifest.json").read_text())

    with pytest.raises(ModelMismatchError):
        publish(tampered, data_bucket)

    assert boto3.client("s3").list_objects_v2(Bucket=data_bucket).get("KeyCount") == 0
