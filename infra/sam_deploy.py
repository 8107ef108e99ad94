"""Deploy a SAM template into moto: package, translate offline, create the stack, then apply what moto skipped.

Measured with moto 5.2.5 and aws-sam-translator 1.115 (the stack reaches CREATE_COMPLETE regardless):

- Resource types moto's CloudFormation does not create at all (they show up in ListStackResources with an empty
  logical id): ``AWS::S3::BucketPolicy``, ``AWS::SES::EmailIdentity``, ``AWS::Scheduler::ScheduleGroup``,
  ``AWS::Scheduler::Schedule``, ``AWS::Lambda::EventInvokeConfig``, ``AWS::SNS::Subscription``. They are created
  here through the service APIs.
- Properties moto ignores: the bucket's ``NotificationConfiguration``, ``PublicAccessBlockConfiguration``,
  ``VersioningConfiguration``, ``LifecycleConfiguration`` and ``OwnershipControls``; tables'
  ``PointInTimeRecoverySpecification``, ``TimeToLiveSpecification`` and ``SSESpecification``; functions' ``Layers``,
  ``Architectures`` and ``TracingConfig``. They are applied here through the service APIs, or, where moto's API has no
  way to set them (table SSE, function architectures and tracing), on moto's in-process models.
- Stack outputs whose value refers to a skipped resource are dropped by moto; they are resolved here.

Everything applied is read from the translated template and resolved by ``infra.intrinsics`` against the stack's
parameters and resources, so the template stays the single description of the stack.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import secrets
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import boto3
import yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from infra.clients import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, Clients
from infra.function_urls import FunctionUrls
from infra.intrinsics import IntrinsicError, Resolver, dependency_order
from infra.moto_patches import InProcessMoto

log = logging.getLogger(__name__)

SKIPPED_ZIP_PARTS: Final = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_CREATE_TIMEOUT_S: Final = 120.0


class DeployError(RuntimeError):
    """The stack could not be deployed."""


# ---------- template loading and packaging ----------


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt ...), dates kept as strings."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    if suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node).split(".", 1)}
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)
_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def create_table_like(dynamodb: Any, properties: Mapping[str, Any], name: str) -> None:
    """A table with the keys, billing and indexes a template's AWS::DynamoDB::Table declares, under `name` (benches
    and tests make the template's tables in moto without deploying the stack)."""
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
        **{key: properties[key] for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes") if key in properties},
    )


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation/SAM template from YAML or JSON."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise DeployError(f"{path} is not a CloudFormation template")
    return loaded


def zip_directory(directory: Path) -> bytes:
    """A deterministic zip of a folder (sorted, fixed timestamps, no caches), like `sam package` uploads."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if path.is_dir() or SKIPPED_ZIP_PARTS.intersection(relative.parts) or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def package(
    template: dict[str, Any], base_dir: Path, upload: Callable[[str, bytes], str]
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Zip every local CodeUri/ContentUri, upload it and point the URI at it (the translator rejects local paths).

    Returns the packaged template and, per uploaded S3 key, the local folder it came from.
    """
    packaged = json.loads(json.dumps(template))
    sources: dict[str, Path] = {}
    global_code = packaged.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for logical_id, resource in packaged["Resources"].items():
        properties = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        uri_key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(kind)
        if uri_key is None:
            continue
        if kind == "AWS::Serverless::Function" and uri_key not in properties and "InlineCode" not in properties:
            if global_code is None:
                continue
            properties[uri_key] = global_code
        uri = properties.get(uri_key)
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue
        source = (base_dir / uri).resolve()
        if not source.is_dir():
            raise DeployError(f"{logical_id}.{uri_key}: {source} is not a folder")
        body = zip_directory(source)
        key = f"{logical_id}/{hashlib.sha256(body).hexdigest()[:16]}.zip"
        properties[uri_key] = upload(key, body)
        sources[key] = source
    return packaged, sources


def translate(sam_template: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """SAM -> CloudFormation, offline: a region from an explicit session and managed policies from the bundled map."""
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY, region_name=region
    )
    translator = Translator(None, Parser(), boto_session=session)
    # An empty managed-policy map keeps the translator from calling IAM; AWS-managed policy names still resolve
    # from the map bundled with the package.
    return translator.translate(
        json.loads(json.dumps(sam_template)), parameter_values=dict(parameters), get_managed_policy_map=dict
    )


# ---------- the deployed stack ----------


@dataclass
class Deployment:
    """A deployed stack as the router needs it."""

    stack_name: str
    stack_id: str
    region: str
    account_id: str
    template: dict[str, Any]  # translated
    parameters: dict[str, Any]  # every parameter's value, pseudo parameters included
    resolver: Resolver
    resource_types: dict[str, str]  # logical id -> type, resources that exist
    physical_ids: dict[str, str]
    outputs: dict[str, str]
    code_dirs: dict[str, Path]  # function or layer logical id -> local source folder
    applied: list[str] = field(default_factory=list)  # what was applied beside moto's CloudFormation

    def physical_id(self, logical_id: str) -> str:
        """The physical name/id/url of a resource."""
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise KeyError(f"no resource {logical_id!r} in stack {self.stack_name}") from None

    def resources_of_type(self, resource_type: str) -> list[str]:
        """Logical ids of the existing resources of one type, in template order."""
        return [logical_id for logical_id, kind in self.resource_types.items() if kind == resource_type]


class _StackLookup:
    """Ref and GetAtt values of the deployed resources, read through the service APIs."""

    def __init__(self, clients: Clients, template: Mapping[str, Any], physical_ids: dict[str, str]) -> None:
        self._clients = clients
        self._resources: Mapping[str, Any] = template["Resources"]
        self.physical_ids = physical_ids
        self.attributes: dict[tuple[str, str], Any] = {}  # set by the appliers for resources moto skipped

    def ref(self, logical_id: str) -> Any:
        physical = self.physical_ids.get(logical_id)
        if physical:
            return physical
        if self._resources[logical_id]["Type"] == "AWS::Lambda::LayerVersion":
            return self._layer_version_arn(logical_id)
        raise IntrinsicError(f"{logical_id} has no physical id (not created locally)")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[logical_id, attribute]
        kind = self._resources[logical_id]["Type"]
        physical = self.ref(logical_id)
        value = self._read_attribute(kind, physical, attribute)
        self.attributes[logical_id, attribute] = value
        return value

    def _read_attribute(self, kind: str, physical: str, attribute: str) -> Any:
        readers: dict[tuple[str, str], Callable[[], Any]] = {
            ("AWS::SQS::Queue", "QueueUrl"): lambda: physical,
            ("AWS::SQS::Queue", "QueueName"): lambda: physical.rsplit("/", 1)[-1],
            ("AWS::SQS::Queue", "Arn"): lambda: self._clients("sqs").get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"],
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:aws:s3:::{physical}",
            ("AWS::S3::Bucket", "DomainName"): lambda: f"{physical}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): lambda: f"{physical}.s3.{self._clients.region}.amazonaws.com",
            ("AWS::DynamoDB::Table", "Arn"): lambda: self._table(physical)["TableArn"],
            ("AWS::DynamoDB::Table", "StreamArn"): lambda: self._table(physical).get("LatestStreamArn"),
            ("AWS::Lambda::Function", "Arn"): lambda: self._clients("lambda").get_function_configuration(
                FunctionName=physical
            )["FunctionArn"],
            ("AWS::IAM::Role", "Arn"): lambda: self._clients("iam").get_role(RoleName=physical)["Role"]["Arn"],
            ("AWS::IAM::Role", "RoleId"): lambda: self._clients("iam").get_role(RoleName=physical)["Role"]["RoleId"],
            ("AWS::SNS::Topic", "TopicArn"): lambda: physical,
            ("AWS::SNS::Topic", "TopicName"): lambda: physical.rsplit(":", 1)[-1],
        }
        reader = readers.get((kind, attribute))
        if reader is None:
            raise IntrinsicError(f"Fn::GetAtt {attribute} of {kind} is not supported locally")
        return reader()

    def _table(self, name: str) -> dict[str, Any]:
        return dict(self._clients("dynamodb").describe_table(TableName=name)["Table"])

    def _layer_version_arn(self, logical_id: str) -> str:
        # moto leaves a layer version's physical id empty; find it by the name moto generated (stack-logicalid-...)
        # or by its LayerName.
        stack_prefix = None
        layer_name = self._resources[logical_id].get("Properties", {}).get("LayerName")
        for page in self._clients("lambda").get_paginator("list_layers").paginate():
            for layer in page["Layers"]:
                name = layer["LayerName"]
                if f"-{logical_id}-" in name or name == layer_name:
                    stack_prefix = layer["LatestMatchingVersion"]["LayerVersionArn"]
        if stack_prefix is None:
            raise IntrinsicError(f"layer {logical_id} not found")
        return stack_prefix


class Deployer:
    """Creates one stack in the local endpoint and fills in what moto's CloudFormation skipped."""

    def __init__(
        self, clients: Clients, moto: InProcessMoto, stack_name: str, function_urls: FunctionUrls | None = None
    ) -> None:
        """``function_urls``: listeners that serve the template's function URLs (else moto's URLs, unanswered)."""
        self._clients = clients
        self._moto = moto
        self._stack_name = stack_name
        self._function_urls = function_urls

    def deploy(self, template_path: Path, parameters: Mapping[str, str]) -> Deployment:
        """Package, translate and create the stack, then apply the skipped resources and properties."""
        started = time.monotonic()
        sam_template = load_template(template_path)
        declared = sam_template.get("Parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise DeployError(f"parameters not declared in {template_path.name}: {', '.join(sorted(unknown))}")
        artifacts = self._artifacts_bucket()
        packaged, sources = package(
            sam_template, template_path.parent, lambda key, body: self._upload(artifacts, key, body)
        )
        template = translate(packaged, parameters, self._clients.region)
        translated_at = time.monotonic()
        stack_id = self._create_stack(template, parameters)
        created_at = time.monotonic()

        physical_ids, resource_types = self._stack_resources()
        account_id = stack_id.split(":")[4]
        values = {
            name: spec.get("Default") for name, spec in template.get("Parameters", {}).items() if "Default" in spec
        }
        values.update(parameters)
        for name, spec in template.get("Parameters", {}).items():
            if spec.get("Type") == "CommaDelimitedList" and isinstance(values.get(name), str):
                values[name] = values[name].split(",")
        values.update(
            {
                "AWS::AccountId": account_id,
                "AWS::Region": self._clients.region,
                "AWS::Partition": "aws",
                "AWS::StackName": self._stack_name,
                "AWS::StackId": stack_id,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NotificationARNs": [],
            }
        )
        lookup = _StackLookup(self._clients, template, physical_ids)
        resolver = Resolver(template, values, lookup)
        code_dirs = _code_dirs(template, sources)
        deployment = Deployment(
            stack_name=self._stack_name,
            stack_id=stack_id,
            region=self._clients.region,
            account_id=account_id,
            template=template,
            parameters=values,
            resolver=resolver,
            resource_types=resource_types,
            physical_ids=physical_ids,
            outputs={},
            code_dirs=code_dirs,
        )
        _GapFiller(self._clients, self._moto, deployment, lookup, self._function_urls).apply()
        deployment.outputs = self._outputs(deployment)
        created = [what.split(" ", 1)[0] for what in deployment.applied if what.endswith("through the service API")]
        properties = [what for what in deployment.applied if not what.endswith("through the service API")]
        log.info(
            "moto's CloudFormation skipped %d resource(s) and %d property set(s); applied through the service APIs: %s",
            len(created),
            len(properties),
            ", ".join(created) or "-",
        )
        log.info(
            "deployed stack %s: translate %.2fs, create_stack %.2fs, skipped parts applied %.2fs",
            self._stack_name,
            translated_at - started,
            created_at - translated_at,
            time.monotonic() - created_at,
        )
        return deployment

    def _artifacts_bucket(self) -> str:
        name = f"{self._stack_name.lower()}-artifacts"[:63]
        s3 = self._clients("s3")
        location = {} if self._clients.region == "us-east-1" else {"LocationConstraint": self._clients.region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # a second stack in this process
            s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": location} if location else {}))
        return name

    def _upload(self, bucket: str, key: str, body: bytes) -> str:
        self._clients("s3").put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def _create_stack(self, template: dict[str, Any], parameters: Mapping[str, str]) -> str:
        cloudformation = self._clients("cloudformation")
        response = cloudformation.create_stack(
            StackName=self._stack_name,
            TemplateBody=json.dumps(_placeholder_getatts(template)),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deadline = time.monotonic() + _CREATE_TIMEOUT_S
        while True:
            stack = cloudformation.describe_stacks(StackName=response["StackId"])["Stacks"][0]
            status = stack["StackStatus"]
            if status == "CREATE_COMPLETE":
                return str(stack["StackId"])
            if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
                reason = stack.get("StackStatusReason", "")
                raise DeployError(f"stack {self._stack_name} ended in {status}: {reason}")
            time.sleep(0.05)

    def _stack_resources(self) -> tuple[dict[str, str], dict[str, str]]:
        physical_ids: dict[str, str] = {}
        resource_types: dict[str, str] = {}
        paginator = self._clients("cloudformation").get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=self._stack_name):
            for summary in page["StackResourceSummaries"]:
                logical_id = summary.get("LogicalResourceId")
                if logical_id:  # moto lists the types it skipped without a logical id
                    physical_ids[logical_id] = summary.get("PhysicalResourceId", "")
                    resource_types[logical_id] = summary["ResourceType"]
        return physical_ids, resource_types

    def _outputs(self, deployment: Deployment) -> dict[str, str]:
        stack = self._clients("cloudformation").describe_stacks(StackName=self._stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        resolver = deployment.resolver
        for key, output in deployment.template.get("Outputs", {}).items():
            if key in outputs or ("Condition" in output and not resolver.condition(output["Condition"])):
                continue
            # moto drops outputs that refer to resources it skipped; those exist now, so resolve them here.
            try:
                outputs[key] = str(resolver.resolve(output["Value"]))
            except IntrinsicError as exc:
                log.warning("output %s left out: %s", key, exc)
        return outputs


# Types moto's CloudFormation skips whose attributes the template reads with Fn::GetAtt: moto refuses a GetAtt of a
# resource it does not know ("references undefined resource"), so what it is given reads a placeholder instead;
# the gap filler creates the resource and applies the real value (a function's environment, say) afterwards.
_GETATT_SKIPPED: Final = frozenset({"AWS::Lambda::Url"})
_PLACEHOLDER: Final = "https://placeholder.invalid/"


def _placeholder_getatts(template: Mapping[str, Any]) -> Any:
    resources = template.get("Resources", {})
    skipped = {name for name, resource in resources.items() if resource.get("Type") in _GETATT_SKIPPED}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            target = value.get("Fn::GetAtt")
            if len(value) == 1 and isinstance(target, list) and target and target[0] in skipped:
                return _PLACEHOLDER
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    return {
        **template,
        "Resources": {name: walk(resource) for name, resource in resources.items()},
        "Outputs": {key: output for key, output in template.get("Outputs", {}).items() if walk(output) == output},
    }


def _code_dirs(template: Mapping[str, Any], sources: Mapping[str, Path]) -> dict[str, Path]:
    code_dirs: dict[str, Path] = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        code = properties.get("Code") if resource["Type"] == "AWS::Lambda::Function" else properties.get("Content")
        if isinstance(code, dict) and code.get("S3Key") in sources:
            code_dirs[logical_id] = sources[code["S3Key"]]
    return code_dirs


# ---------- what moto's CloudFormation skipped ----------


def is_tls_only_statement(statement: Mapping[str, Any]) -> bool:
    """A Deny on ``aws:SecureTransport`` false: the usual TLS-only bucket-policy statement."""
    if statement.get("Effect") != "Deny":
        return False
    secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return str(secure).lower() == "false"


class _GapFiller:
    """Applies, from the translated template, the resources and properties moto's CloudFormation skipped."""

    def __init__(
        self,
        clients: Clients,
        moto: InProcessMoto,
        deployment: Deployment,
        lookup: _StackLookup,
        function_urls: FunctionUrls | None,
    ) -> None:
        self._clients = clients
        self._moto = moto
        self._function_urls = function_urls
        self._deployment = deployment
        self._lookup = lookup
        self._resolver = deployment.resolver
        self._resources: dict[str, Any] = deployment.template["Resources"]
        self._creators: dict[str, Callable[[str, dict[str, Any]], str]] = {
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SES::ConfigurationSet": self._configuration_set,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::Scheduler::Schedule": self._schedule,
            "AWS::Lambda::EventInvokeConfig": self._event_invoke_config,
            "AWS::Lambda::Url": self._function_url,
            "AWS::SNS::Subscription": self._sns_subscription,
        }
        self._property_appliers: dict[str, Callable[[str, str, dict[str, Any]], None]] = {
            "AWS::S3::Bucket": self._bucket_properties,
            "AWS::DynamoDB::Table": self._table_properties,
            "AWS::Lambda::Function": self._function_properties,
        }

    def apply(self) -> None:
        existing = self._deployment.resource_types
        skipped = [
            logical_id
            for logical_id in self._resources
            if logical_id not in existing and self._resolver.resource_enabled(logical_id)
        ]
        for logical_id in dependency_order(self._resources, skipped):
            kind = self._resources[logical_id]["Type"]
            creator = self._creators.get(kind)
            if creator is None:
                log.warning("%s (%s): moto's CloudFormation skipped it and it is not created locally", logical_id, kind)
                continue
            properties = self._resolver.resolve(self._resources[logical_id].get("Properties", {}))
            physical = creator(logical_id, properties)
            self._deployment.physical_ids[logical_id] = physical
            self._deployment.resource_types[logical_id] = kind
            self._note(f"{logical_id} ({kind}) created through the service API")
        for logical_id, kind in list(existing.items()):
            applier = self._property_appliers.get(kind)
            if applier is not None:
                properties = self._resolver.resolve(self._resources[logical_id].get("Properties", {}))
                applier(logical_id, self._deployment.physical_ids[logical_id], properties)

    def _note(self, what: str) -> None:
        self._deployment.applied.append(what)
        log.debug("%s", what)

    # -- resources --

    def _bucket_policy(self, logical_id: str, properties: dict[str, Any]) -> str:
        bucket = properties["Bucket"]
        document = dict(properties["PolicyDocument"])
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [statement for statement in statements if not is_tls_only_statement(statement)]
        for statement in statements:
            if is_tls_only_statement(statement):
                # moto enforces bucket policies and the local endpoint is plain http, so this statement would
                # deny every request (403); on AWS it stays.
                log.info(
                    "%s: statement %s (deny aws:SecureTransport false) left out locally: the endpoint is plain http",
                    logical_id,
                    statement.get("Sid", "<no Sid>"),
                )
        if kept:
            document["Statement"] = kept
            self._clients("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
        return str(bucket)

    def _email_identity(self, logical_id: str, properties: dict[str, Any]) -> str:
        identity = str(properties["EmailIdentity"])
        ses = self._clients("ses")
        # moto's SES, like SES's sandbox, rejects sends from unverified senders: verify the identity right away.
        if "@" in identity:
            ses.verify_email_identity(EmailAddress=identity)
        else:
            ses.verify_domain_identity(Domain=identity)
        return identity

    def _configuration_set(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.get("Name") or self._generated_name(logical_id)
        self._clients("sesv2").create_configuration_set(ConfigurationSetName=name)
        return str(name)

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.get("Name") or self._generated_name(logical_id)
        generate = properties.get("GenerateSecretString")
        # A generated secret is random, as CloudFormation makes it; a fixed SecretString is kept as written.
        value = properties.get("SecretString") or secrets.token_urlsafe(int((generate or {}).get("PasswordLength", 32)))
        response = self._clients("secretsmanager").create_secret(Name=name, SecretString=value)
        return str(response["ARN"])  # Ref of a secret is its ARN

    def _sns_subscription(self, logical_id: str, properties: dict[str, Any]) -> str:
        # A function's SNS event source: the topic's messages then reach the router (infra.moto_patches).
        response = self._clients("sns").subscribe(
            TopicArn=properties["TopicArn"],
            Protocol=properties["Protocol"],
            Endpoint=properties["Endpoint"],
            ReturnSubscriptionArn=True,
        )
        return str(response["SubscriptionArn"])

    def _function_url(self, logical_id: str, properties: dict[str, Any]) -> str:
        response = self._clients("lambda").create_function_url_config(
            FunctionName=properties["TargetFunctionArn"], AuthType=properties.get("AuthType", "NONE")
        )
        url = str(response["FunctionUrl"])
        if self._function_urls is not None:
            # Before any !GetAtt reads it: the address that answers is the one outputs and variables carry.
            url = self._function_urls.bind(str(response["FunctionArn"]))
            self._moto.set_function_url(str(response["FunctionArn"]), url)
        self._lookup.attributes[logical_id, "FunctionUrl"] = url
        self._lookup.attributes[logical_id, "FunctionArn"] = response["FunctionArn"]
        return str(response["FunctionArn"])

    def _schedule_group(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.get("Name") or self._generated_name(logical_id)
        response = self._clients("scheduler").create_schedule_group(Name=name, Tags=properties.get("Tags", []))
        self._lookup.attributes[logical_id, "Arn"] = response["ScheduleGroupArn"]
        return str(name)

    def _schedule(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.get("Name") or self._generated_name(logical_id)
        request: dict[str, Any] = {
            "Name": name,
            "ScheduleExpression": properties["ScheduleExpression"],
            "FlexibleTimeWindow": properties.get("FlexibleTimeWindow", {"Mode": "OFF"}),
            "Target": properties["Target"],
        }
        for key in ("GroupName", "Description", "ScheduleExpressionTimezone", "State", "KmsKeyArn"):
            if key in properties:
                request[key] = properties[key]
        for key in ("StartDate", "EndDate"):
            if key in properties:
                request[key] = datetime.fromisoformat(str(properties[key]).replace("Z", "+00:00"))
        response = self._clients("scheduler").create_schedule(**request)
        self._lookup.attributes[logical_id, "Arn"] = response["ScheduleArn"]
        return str(name)

    def _event_invoke_config(self, logical_id: str, properties: dict[str, Any]) -> str:
        request = {
            key: properties[key]
            for key in ("FunctionName", "MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
            if key in properties
        }
        self._clients("lambda").put_function_event_invoke_config(**request)
        return str(properties["FunctionName"])

    def _generated_name(self, logical_id: str) -> str:
        suffix = hashlib.sha256(f"{self._deployment.stack_id}/{logical_id}".encode()).hexdigest()[:12].upper()
        return f"{self._deployment.stack_name}-{logical_id}-{suffix}"[:64]

    # -- properties --

    def _bucket_properties(self, logical_id: str, bucket: str, properties: dict[str, Any]) -> None:
        s3 = self._clients("s3")
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]}
            )
            self._note(f"{logical_id}: VersioningConfiguration")
        if "LifecycleConfiguration" in properties:
            rules = [_lifecycle_rule(rule) for rule in properties["LifecycleConfiguration"].get("Rules", [])]
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
            self._note(f"{logical_id}: LifecycleConfiguration")
        if "OwnershipControls" in properties:
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])
            self._note(f"{logical_id}: OwnershipControls")
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
            )
            self._note(f"{logical_id}: PublicAccessBlockConfiguration")
        if "NotificationConfiguration" in properties:
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration=_notification_configuration(properties["NotificationConfiguration"]),
            )
            self._note(f"{logical_id}: NotificationConfiguration")

    def _table_properties(self, logical_id: str, table: str, properties: dict[str, Any]) -> None:
        dynamodb = self._clients("dynamodb")
        pitr = properties.get("PointInTimeRecoverySpecification")
        if pitr is not None:
            enabled = bool(pitr.get("PointInTimeRecoveryEnabled", False))
            dynamodb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
            )
            self._note(f"{logical_id}: PointInTimeRecoverySpecification")
        ttl = properties.get("TimeToLiveSpecification")
        if ttl is not None and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
            self._note(f"{logical_id}: TimeToLiveSpecification")
        sse = properties.get("SSESpecification")
        if sse is not None:
            # moto's UpdateTable has no SSESpecification and its CloudFormation reads the API's key name (Enabled)
            # instead of the template's (SSEEnabled), so set it on the table model.
            self._moto.set_table_sse(table, enabled=bool(sse.get("SSEEnabled")), kms_key=sse.get("KMSMasterKeyId"))
            self._note(f"{logical_id}: SSESpecification")

    def _function_properties(self, logical_id: str, function_name: str, properties: dict[str, Any]) -> None:
        lambda_client = self._clients("lambda")
        current = lambda_client.get_function_configuration(FunctionName=function_name)
        update: dict[str, Any] = {}
        layers = properties.get("Layers")
        if layers:
            update["Layers"] = layers
        environment = properties.get("Environment", {}).get("Variables")
        if environment is not None:
            wanted = {key: str(value) for key, value in environment.items()}
            if current.get("Environment", {}).get("Variables", {}) != wanted:
                # e.g. a variable that refers to a resource moto skipped, which moto could not resolve
                update["Environment"] = {"Variables": wanted}
        if update:
            lambda_client.update_function_configuration(FunctionName=function_name, **update)
            self._note(f"{logical_id}: {', '.join(sorted(update))}")
        architectures = properties.get("Architectures")
        tracing = properties.get("TracingConfig", {}).get("Mode")
        if architectures or tracing:
            # moto's UpdateFunctionConfiguration ignores both; set them on the function model.
            self._moto.set_function_details(function_name, architectures=architectures, tracing_mode=tracing)
            self._note(f"{logical_id}: Architectures, TracingConfig")


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape (the common fields)."""
    converted: dict[str, Any] = {"Status": rule["Status"]}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    converted["Filter"] = {"Prefix": rule["Prefix"]} if "Prefix" in rule else {}
    if "ExpirationInDays" in rule:
        # A parameter given on the command line arrives as a string; the S3 API takes a number.
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return converted


def _notification_configuration(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation NotificationConfiguration in the S3 API's shape."""

    def entry(item: Mapping[str, Any], target_key: str, target: str) -> dict[str, Any]:
        converted: dict[str, Any] = {target_key: item[target], "Events": [item["Event"]]}
        rules = item.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            converted["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
        return converted

    api: dict[str, Any] = {
        "LambdaFunctionConfigurations": [
            entry(item, "LambdaFunctionArn", "Function") for item in configuration.get("LambdaConfigurations", [])
        ],
        "QueueConfigurations": [
            entry(item, "QueueArn", "Queue") for item in configuration.get("QueueConfigurations", [])
        ],
        "TopicConfigurations": [
            entry(item, "TopicArn", "Topic") for item in configuration.get("TopicConfigurations", [])
        ],
    }
    if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    return {key: value for key, value in api.items() if value or key == "EventBridgeConfiguration"}
