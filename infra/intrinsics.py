"""A small CloudFormation intrinsic-function resolver for the translated template.

moto's CloudFormation skips some resource types and properties (see ``infra.sam_deploy``); the local stack applies
those from the translated template itself, so their values (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` ...)
must be resolved against the deployed stack's parameters and resources. Resource lookups are delegated to a
``ResourceLookup`` so this module needs no AWS client and can be tested on its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

PSEUDO_PARAMETERS: Final = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class IntrinsicError(ValueError):
    """A template value the resolver cannot resolve."""


class _NoValue:
    """``Ref: AWS::NoValue``: the property is removed."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()


class ResourceLookup(Protocol):
    """Where ``Ref`` and ``Fn::GetAtt`` of a resource get their values: the deployed stack."""

    def ref(self, logical_id: str) -> Any:
        """The value of ``Ref: logical_id``."""
        ...

    def get_att(self, logical_id: str, attribute: str) -> Any:
        """The value of ``Fn::GetAtt: [logical_id, attribute]``."""
        ...


class Resolver:
    """Resolves intrinsic functions in parts of one template against parameters and a resource lookup."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any], lookup: ResourceLookup) -> None:
        self._template = template
        self._parameters = dict(parameters)
        self._lookup = lookup
        self._conditions: dict[str, bool] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda value: base64.b64encode(str(self.resolve(value)).encode()).decode(),
            "Fn::GetAZs": lambda value: [f"{self.resolve(value) or self._parameters['AWS::Region']}{z}" for z in "abc"],
            "Fn::ToJsonString": lambda value: json.dumps(self.resolve(value), separators=(",", ":")),
            "Fn::Equals": lambda value: self._evaluate({"Fn::Equals": value}),
            "Fn::Not": lambda value: self._evaluate({"Fn::Not": value}),
            "Fn::And": lambda value: self._evaluate({"Fn::And": value}),
            "Fn::Or": lambda value: self._evaluate({"Fn::Or": value}),
        }

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its value; ``AWS::NoValue`` entries removed."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                (key, argument), *_ = value.items()
                if key in self._functions:
                    return self._functions[key](argument)
                if key == "Condition" and isinstance(argument, str):
                    return self.condition(argument)
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        """The value of a template condition."""
        if name not in self._conditions:
            conditions = self._template.get("Conditions", {})
            if name not in conditions:
                raise IntrinsicError(f"unknown condition {name!r}")
            self._conditions[name] = self._evaluate(conditions[name])
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        """Whether the resource exists given its ``Condition`` (resources without one always do)."""
        condition = self._template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def _evaluate(self, expression: Any) -> bool:
        if not isinstance(expression, Mapping) or len(expression) != 1:
            raise IntrinsicError(f"not a condition: {expression!r}")
        (function, argument), *_ = expression.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return _text(left) == _text(right)
        if function == "Fn::Not":
            return not self._evaluate(argument[0])
        if function == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if function == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        raise IntrinsicError(f"unsupported condition function {function!r}")

    def _ref(self, name: Any) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        if name in self._template.get("Resources", {}):
            return self._lookup.ref(name)
        raise IntrinsicError(f"Ref to unknown parameter or resource {name!r}")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return self._lookup.get_att(logical_id, self.resolve(attribute))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} writes ${Literal}
                return "${" + name[1:] + "}"
            if name in values:
                return _text(values[name])
            if name in self._parameters or name in self._template.get("Resources", {}):
                return _text(self._ref(name))
            if "." in name:
                return _text(self._get_att(name))
            raise IntrinsicError(f"Fn::Sub variable {name!r} is neither a parameter nor a resource")

        return _SUB_VARIABLE.sub(replace, text)

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        resolved = self.resolve(items)
        return str(delimiter).join(_text(item) for item in _as_list(resolved))

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return _as_list(self.resolve(items))[int(self.resolve(index))]

    def _split(self, argument: Any) -> list[str]:
        delimiter, text = argument
        return str(self.resolve(text)).split(delimiter)

    def _find_in_map(self, argument: Any) -> Any:
        name, top, second = (self.resolve(item) for item in argument)
        try:
            return self._template["Mappings"][name][top][second]
        except KeyError as exc:
            raise IntrinsicError(f"Fn::FindInMap {name}/{top}/{second} not found") from exc


def references(value: Any) -> set[str]:
    """Logical ids that ``value`` refers to through Ref, Fn::GetAtt or Fn::Sub (parameters included)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                local = set() if isinstance(item, str) else set(item[1])
                found.update(
                    name.split(".", 1)[0]
                    for name in _SUB_VARIABLE.findall(text)
                    if not name.startswith("!") and name not in local
                )
                if not isinstance(item, str):
                    found.update(references(item[1]))
            else:
                found.update(references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(references(item))
    return found - PSEUDO_PARAMETERS


def dependency_order(resources: Mapping[str, Mapping[str, Any]], logical_ids: Iterable[str]) -> list[str]:
    """``logical_ids`` ordered so that each comes after the others of them it refers to or depends on."""
    wanted = list(logical_ids)
    wanted_set = set(wanted)
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in ordered:
            return
        if logical_id in visiting:
            raise IntrinsicError(f"circular dependency through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        needs = references(resource.get("Properties", {})) | set(
            [depends_on] if isinstance(depends_on, str) else depends_on
        )
        for other in sorted(needs & wanted_set):
            visit(other)
        visiting.discard(logical_id)
        ordered.append(logical_id)

    for logical_id in wanted:
        visit(logical_id)
    return ordered


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return value.split(",")
    raise IntrinsicError(f"expected a list: {value!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)
