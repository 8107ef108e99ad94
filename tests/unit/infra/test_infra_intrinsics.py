"""The intrinsic-function resolver used to apply what moto's CloudFormation skipped."""

from typing import Any

import pytest

from infra.intrinsics import IntrinsicError, Resolver, dependency_order, references

TEMPLATE: dict[str, Any] = {
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "NotProd"}, {"Fn::Equals": ["a", "a"]}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "Both"}]},
    },
    "Mappings": {"Sizes": {"local": {"Memory": 256}}},
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": "data-${Stage}"}}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "Bucket"}, "Resource": {"Fn::Sub": "${Bucket.Arn}/*"}},
        },
        "Identity": {"Type": "AWS::SES::EmailIdentity", "Condition": "IsProd", "DependsOn": "Policy"},
    },
}


class FakeStack:
    def ref(self, logical_id: str) -> Any:
        return {"Bucket": "data-local", "Queue": "https://queue/url"}[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"arn:{logical_id}:{attribute}"


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(TEMPLATE, {"Stage": "local", "AWS::Region": "us-east-1", "Names": ["a", "b"]}, FakeStack())


def test_ref_resolves_parameters_and_resources(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Stage"}) == "local"
    assert resolver.resolve({"Ref": "Queue"}) == "https://queue/url"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-1"


def test_sub_resolves_parameters_resources_attributes_and_escapes(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Sub": "${Bucket}/${Bucket.Arn}/${AWS::Region}/${!Literal}"}) == (
        "data-local/arn:Bucket:Arn/us-east-1/${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": ["${Name}-${Stage}", {"Name": {"Ref": "Queue"}}]}) == "https://queue/url-local"


def test_get_att_accepts_the_list_and_the_dotted_forms(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:Queue:Arn"
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "arn:Queue:QueueName"


def test_conditions_and_if_follow_the_parameters(resolver: Resolver) -> None:
    assert resolver.condition("IsProd") is False
    assert resolver.condition("NotProd") is True
    assert resolver.condition("Both") is True
    assert resolver.condition("Either") is True
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}) == "small"
    assert resolver.resource_enabled("Identity") is False
    assert resolver.resource_enabled("Bucket") is True


def test_no_value_removes_the_entry(resolver: Resolver) -> None:
    value = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]},
        "List": [{"Ref": "AWS::NoValue"}, 2],
    }

    assert resolver.resolve(value) == {"Keep": 1, "List": [2]}


def test_join_select_split_and_find_in_map(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, "x"]]}) == "local-x"
    assert resolver.resolve({"Fn::Join": [",", {"Ref": "Names"}]}) == "a,b"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}) == 256


def test_unknown_references_are_errors(resolver: Resolver) -> None:
    with pytest.raises(IntrinsicError):
        resolver.resolve({"Ref": "Nope"})
    with pytest.raises(IntrinsicError):
        resolver.resolve({"Fn::Sub": "${Nope}"})
    with pytest.raises(IntrinsicError):
        resolver.condition("Nope")


def test_references_finds_ref_getatt_and_sub_variables_but_not_pseudo_parameters() -> None:
    value = {
        "A": {"Ref": "Bucket"},
        "B": {"Fn::GetAtt": ["Queue", "Arn"]},
        "C": {"Fn::Sub": "${Policy.Arn}-${AWS::Region}-${!Skip}"},
        "D": {"Fn::Sub": ["${Local}-${Stage}", {"Local": {"Ref": "Identity"}}]},
    }

    assert references(value) == {"Bucket", "Queue", "Policy", "Stage", "Identity"}


def test_dependency_order_puts_what_a_resource_needs_first() -> None:
    ordered = dependency_order(TEMPLATE["Resources"], ["Identity", "Policy", "Bucket"])

    assert ordered.index("Bucket") < ordered.index("Policy") < ordered.index("Identity")
