"""The reply intent model as the conversations function serves it: verified on load, one batch call, Intent out."""

import hashlib
import json

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.conversations import intent_model
from cadence.conversations.intent_model import INTENT_CLASSES, load_intent_model, loaded_intent_model, prepared
from cadence.conversations.intents import Classified, Intent
from cadence.errors import ModelMismatchError
from model_build.export import read_model_dir
from model_build.intent import DEFAULT_DATA, build_intent_model


@pytest.fixture(scope="module")
def artefact(tmp_path_factory):
    out = tmp_path_factory.mktemp("intent-model")
    build_intent_model(DEFAULT_DATA, out, version="intent-test")
    return read_model_dir(out)


@pytest.fixture(scope="module")
def model(artefact):
    return load_intent_model(*artefact)


@pytest.mark.parametrize(
    ("reply", "intent"),
    [
        ("我的订单什么时候到", Intent.ORDER_QUESTION),
        ("快递到哪了", Intent.ORDER_QUESTION),
        ("where is my order?", Intent.ORDER_QUESTION),
        ("my parcel still hasnt arrived, order #12345", Intent.ORDER_QUESTION),
        ("优惠码用不了", Intent.COUPON_PROBLEM),
        ("the code SAVE20 does not work", Intent.COUPON_PROBLEM),
        (
            "\uff33\uff21\uff36\uff25\uff12\uff10 用不了",
            Intent.COUPON_PROBLEM,
        ),  # full-width SAVE20, as typed in Chinese
        ("质量太差了\uff0c我要投诉", Intent.COMPLAINT),
        ("this is terrible service, very angry", Intent.COMPLAINT),
        ("stop texting me, not interested", Intent.NOT_INTERESTED),
        ("别再发短信了", Intent.NOT_INTERESTED),
        ("不感兴趣", Intent.NOT_INTERESTED),
        ("who is this?", Intent.OTHER),
        ("你是谁", Intent.OTHER),
        ("ok", Intent.OTHER),
    ],
)
def test_clear_replies_in_either_language_get_their_intent(model, reply, intent):
    (classified,) = model.classify([reply])

    assert classified.intent is intent


def test_classify_returns_one_classified_per_reply_in_input_order(model):
    replies = ["优惠码用不了", "where is my order?", "", "\U0001f600", "订单" * 2000, "\ud83d half an emoji"]

    results = model.classify(replies)

    assert len(results) == len(replies)
    assert all(isinstance(result, Classified) and isinstance(result.intent, Intent) for result in results)
    assert all(0.0 <= result.confidence <= 1.0 for result in results)
    assert [result.intent for result in results[:2]] == [Intent.COUPON_PROBLEM, Intent.ORDER_QUESTION]


def test_confidence_is_the_top_probability_and_rows_sum_to_one(model):
    replies = ["优惠码用不了", "thanks!", "I want to speak to a manager"]

    probabilities = model.probabilities(replies)
    results = model.classify(replies)

    assert probabilities.shape == (3, len(INTENT_CLASSES))
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert [result.confidence for result in results] == pytest.approx(probabilities.max(axis=1).tolist())
    assert [result.intent.value for result in results] == [INTENT_CLASSES[i] for i in probabilities.argmax(axis=1)]


def test_an_empty_batch_classifies_to_nothing_without_calling_the_model(model):
    # onnxruntime's TfIdfVectorizer rejects a batch of zero rows, so the model must not be called.
    assert model.classify([]) == []


def test_case_width_and_whitespace_do_not_change_the_verdict(model):
    variants = [
        "where is my order?",
        "WHERE IS MY ORDER?",
        "where  is\tmy\norder?",
        "\uff57\uff48\uff45\uff52\uff45 \uff49\uff53 \uff4d\uff59 \uff4f\uff52\uff44\uff45\uff52\uff1f",
    ]

    results = model.classify(variants)

    assert len({(result.intent, round(result.confidence, 6)) for result in results}) == 1


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=60))
def test_prepared_text_has_no_whitespace_runs_and_is_stable(text):
    once = prepared(text)

    assert prepared(once) == once
    assert "  " not in once
    assert once == once.strip()
    assert not any(character in once for character in "\t\n\r")
    once.encode("utf-8")  # valid UTF-8, which onnxruntime requires


def test_the_manifest_threshold_is_served(model, artefact):
    _, manifest = artefact

    assert model.version == "intent-test"
    assert model.confidence_threshold == manifest["confidence_threshold"]


def test_a_tampered_model_is_refused(artefact):
    model_bytes, manifest = artefact

    with pytest.raises(ModelMismatchError, match="sha256"):
        load_intent_model(model_bytes + b"\0", manifest)


@pytest.mark.parametrize(
    "classes",
    [
        ["complaint", "coupon_problem", "not_interested", "order_question", "other"],  # sklearn's sorted order
        list(INTENT_CLASSES[:-1]),
        [*INTENT_CLASSES, "spam"],
        None,
    ],
)
def test_a_manifest_with_other_classes_is_refused(artefact, classes):
    model_bytes, manifest = artefact

    with pytest.raises(ModelMismatchError, match="classes"):
        load_intent_model(model_bytes, manifest | {"classes": classes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": None}, "kind"),
        ({"version": ""}, "version"),
        ({"confidence_threshold": 1.5}, "confidence_threshold"),
        ({"confidence_threshold": True}, "confidence_threshold"),
        ({"confidence_threshold": "0.5"}, "confidence_threshold"),
    ],
)
def test_a_manifest_missing_what_serving_needs_is_refused(artefact, changes, message):
    model_bytes, manifest = artefact

    with pytest.raises(ModelMismatchError, match=message):
        load_intent_model(model_bytes, manifest | changes)


def test_bytes_that_are_not_an_onnx_model_are_refused_even_with_a_matching_hash(artefact):
    _, manifest = artefact
    garbage = b"not a model"

    with pytest.raises(ModelMismatchError, match="onnxruntime cannot load"):
        load_intent_model(garbage, manifest | {"sha256": hashlib.sha256(garbage).hexdigest()})


def test_a_propensity_model_under_an_intent_manifest_is_refused(artefact):
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    from cadence.features import FEATURE_NAMES  # noqa: PLC0415
    from model_build.export import to_onnx_bytes  # noqa: PLC0415

    features = [[float(i + j) for j in range(len(FEATURE_NAMES))] for i in range(10)]
    pipeline = Pipeline([("model", LogisticRegression())]).fit(features, [0, 1] * 5)
    numeric = to_onnx_bytes(pipeline, "p-1")
    _, manifest = artefact

    with pytest.raises(ModelMismatchError, match="string tensor"):
        load_intent_model(numeric, manifest | {"sha256": hashlib.sha256(numeric).hexdigest()})


@pytest.fixture
def fresh_cache():
    intent_model.loaded_intent_model.cache_clear()  # a container per test: the model loads from this test's bucket
    yield
    intent_model.loaded_intent_model.cache_clear()


def test_the_published_model_is_fetched_from_s3_once_per_container(artefact, data_bucket, fresh_cache):
    model_bytes, manifest = artefact
    s3 = boto3.client("s3")
    s3.put_object(Bucket=data_bucket, Key="models/intent-test/model.onnx", Body=model_bytes)
    s3.put_object(Bucket=data_bucket, Key="models/intent-test/manifest.json", Body=json.dumps(manifest).encode())

    first = loaded_intent_model(data_bucket, "intent-test")
    s3.delete_object(Bucket=data_bucket, Key="models/intent-test/model.onnx")
    second = loaded_intent_model(data_bucket, "intent-test")

    assert second is first
    assert first.classify(["优惠码用不了"])[0].intent is Intent.COUPON_PROBLEM
