"""Versioned analysis steps and their invocations (nodes).

A step is a small pure function from input products and parameters to one output product,
declared with `@step(version=..., params=...)`. Its parameters are an allow-list of JSON
Schema fragments: only declared parameters are accepted, validated and normalised, and only
they enter the step's key, so transport details (sessions, tokens, users) can never leak
into the cache identity.

`Step.node(...)` binds a step to its inputs and parameters without running anything; the
resulting `Node` knows its content key at once, because keys are built from the keys of the
inputs, never from their contents.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jsonschema
from astropy.io import fits

from .keys import UnhashableValue, canonical, step_key

log = logging.getLogger(__name__)

_NUMBER_TYPES = ("number", "integer")


class StepParameterError(ValueError):
    """A parameter given to a step is unknown, missing or ill-typed."""

    def __init__(self, step: str, parameter: str, reason: str):
        self.step = step
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"step {step}: parameter {parameter!r}: {reason}")


@dataclass
class Output:
    """What a step returns: an HDUList (or None when the step wrote `context.output_path`
    itself, e.g. chunk by chunk) and small JSON-able metadata."""

    hdul: fits.HDUList | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StepContext:
    """Run-time facts a step may ask for by declaring a `context` keyword argument.

    None of them enters the key: they say where things are, not what is computed.
    """

    unit: str | None
    output_path: Path
    archive_dir: Path | None
    log: logging.Logger


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """Normalise a validated value to its declared JSON type (20.0 -> 20 for integers)."""
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])   # also ["number", "null"]
    if "integer" in kinds and "number" not in kinds and isinstance(value, float):
        return int(value)
    if "number" in kinds and "integer" not in kinds and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    if "array" in kinds and isinstance(value, (list, tuple)):
        items = schema.get("items", {})
        return [_coerce(item, items) for item in value]
    if "object" in kinds and isinstance(value, Mapping):
        props = schema.get("properties", {})
        result = {k: _coerce(v, props.get(k, {})) for k, v in value.items()}
        # Nested defaults are filled like top-level ones, so that {} and the explicit
        # defaults are the same parameters (and the same key).
        for k, sub in props.items():
            if k not in result and "default" in sub:
                result[k] = _coerce(sub["default"], sub)
        return result
    return value


def _validation_message(error: jsonschema.ValidationError) -> str:
    where = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{where} {error.message}".strip() if where else error.message


class Step:
    """A named, versioned analysis function with an allow-list of parameters."""

    def __init__(self, func: Callable[..., Any], *, name: str, version: int | str,
                 params: Mapping[str, Mapping[str, Any]] | None = None,
                 inputs: Sequence[str] = (), description: str = ""):
        self.func = func
        self.name = name
        self.VERSION = version
        self.params = {p: dict(schema) for p, schema in (params or {}).items()}
        self.inputs = tuple(inputs)
        self.description = description or (inspect.getdoc(func) or "").split("\n\n")[0]
        self.module = func.__module__
        clash = set(self.params) & set(self.inputs)
        if clash or "context" in self.params or "context" in self.inputs:
            raise ValueError(f"step {name}: names used twice or reserved: {sorted(clash) or ['context']}")
        signature = inspect.signature(func)
        self._wants_context = "context" in signature.parameters
        accepted = set(signature.parameters)
        missing = (set(self.params) | set(self.inputs)) - accepted
        if missing and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            raise ValueError(f"step {name}: function does not accept {sorted(missing)}")
        self._validators = {p: jsonschema.Draft202012Validator(s) for p, s in self.params.items()}
        for param, schema in self.params.items():
            jsonschema.Draft202012Validator.check_schema(schema)
            if "default" in schema:
                self._check(param, schema["default"])

    def __repr__(self) -> str:
        return f"<Step {self.name} v{self.VERSION}>"

    def _check(self, param: str, value: Any) -> Any:
        try:
            # Plain JSON values from here on: numpy scalars and arrays, and tuples, would
            # fail jsonschema's type checks or the JSON record and task files.
            value = canonical(value, param)
        except UnhashableValue as exc:
            raise StepParameterError(self.name, param, exc.reason) from None
        errors = sorted(self._validators[param].iter_errors(value), key=lambda e: list(e.path))
        if errors:
            raise StepParameterError(self.name, param, _validation_message(errors[0]))
        return _coerce(value, self.params[param])

    def normalise(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate `params` against the allow-list and fill defaults."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            declared = ", ".join(sorted(self.params)) or "none"
            raise StepParameterError(self.name, unknown[0],
                                     f"unknown parameter (declared: {declared})")
        result = {}
        for param, schema in self.params.items():
            if param in params:
                result[param] = self._check(param, params[param])
            elif "default" in schema:
                result[param] = _coerce(schema["default"], schema)
            else:
                raise StepParameterError(self.name, param, "missing required parameter")
        return result

    def node(self, *, unit: str | None = None, external: Mapping[str, Any] | None = None,
             **arguments: Any) -> "Node":
        """Bind this step to inputs (Nodes, or lists of Nodes) and parameters."""
        inputs: dict[str, Node | tuple[Node, ...]] = {}
        params: dict[str, Any] = {}
        for name, value in arguments.items():
            if name in self.inputs:
                if isinstance(value, Node):
                    inputs[name] = value
                elif isinstance(value, (list, tuple)) and all(isinstance(v, Node) for v in value):
                    inputs[name] = tuple(value)
                else:
                    raise StepParameterError(self.name, name, "input must be a Node or a list of Nodes")
            else:
                params[name] = value
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise StepParameterError(self.name, sorted(missing)[0], "missing input")
        if external is not None:
            try:
                external = canonical(external, "external")
            except UnhashableValue as exc:
                raise StepParameterError(self.name, "external", exc.reason) from None
        return Node(self, self.normalise(params), inputs, unit, external)

    def run(self, inputs: Mapping[str, Any], params: Mapping[str, Any], context: StepContext) -> Output:
        kwargs = dict(inputs)
        kwargs.update(params)
        if self._wants_context:
            kwargs["context"] = context
        result = self.func(**kwargs)
        if isinstance(result, fits.HDUList):
            return Output(result, {})
        if isinstance(result, Output):
            return result
        raise TypeError(f"step {self.name} returned {type(result).__name__}; "
                        "expected an astropy HDUList or dataserver.Output")


def step(*, version: int | str, name: str | None = None,
         params: Mapping[str, Mapping[str, Any]] | None = None,
         inputs: Sequence[str] = (), description: str = "") -> Callable[[Callable[..., Any]], Step]:
    """Declare a step: `@step(version=1, params={"binsize": {"type": "number", "minimum": 0}})`."""

    def decorate(func: Callable[..., Any]) -> Step:
        return Step(func, name=name or f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}",
                    version=version, params=params, inputs=inputs, description=description)

    return decorate


def resolve_step(module: str, name: str, version: int | str) -> Step:
    """Find step `name` at `version` among the Step objects of `module`."""
    found = [obj for obj in vars(importlib.import_module(module)).values()
             if isinstance(obj, Step) and obj.name == name]
    for obj in found:
        if obj.VERSION == version:
            return obj
    have = ", ".join(str(obj.VERSION) for obj in found) or "none"
    raise LookupError(f"this worker's {module} has step {name} in version(s) {have}; "
                      f"the request needs version {version}")


class Node:
    """One step invocation: a step bound to input nodes and normalised parameters."""

    __slots__ = ("step", "params", "inputs", "unit", "external", "key")

    def __init__(self, step_: Step, params: dict[str, Any],
                 inputs: Mapping[str, "Node | tuple[Node, ...]"], unit: str | None,
                 external: Mapping[str, Any] | None):
        self.step = step_
        self.params = params
        self.inputs = dict(inputs)
        self.unit = unit
        self.external = external
        input_keys = {name: (value.key if isinstance(value, Node) else [v.key for v in value])
                      for name, value in self.inputs.items()}
        self.key = step_key(step_.name, step_.VERSION, params, input_keys, external)

    def __repr__(self) -> str:
        return f"<Node {self.step.name} unit={self.unit} {self.key[:12]}>"

    def input_nodes(self) -> list["Node"]:
        nodes: list[Node] = []
        for value in self.inputs.values():
            nodes.extend([value] if isinstance(value, Node) else value)
        return nodes

    def spec(self) -> dict[str, Any]:
        """JSON description of this node alone, enough for a worker to run it."""
        return {
            "module": self.step.module,
            "name": self.step.name,
            "version": self.step.VERSION,
            "params": self.params,
            "inputs": {name: (value.key if isinstance(value, Node) else [v.key for v in value])
                       for name, value in self.inputs.items()},
            "unit": self.unit,
            "external": self.external,
        }


def topological(targets: Sequence[Node]) -> list[Node]:
    """All nodes reachable from `targets`, each once, inputs before their consumers."""
    order: list[Node] = []
    seen: set[str] = set()
    stack: list[tuple[Node, bool]] = [(t, False) for t in reversed(targets)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            if node.key not in seen:
                seen.add(node.key)
                order.append(node)
            continue
        if node.key in seen:
            continue
        stack.append((node, True))
        for child in reversed(node.input_nodes()):
            if child.key not in seen:
                stack.append((child, False))
    return order


def task_spec(target: Node) -> dict[str, Any]:
    """The sub-graph needed to (re)compute `target`, flattened by key, as plain JSON."""
    return {"target": target.key, "nodes": {n.key: n.spec() for n in topological([target])}}


def meta_json(meta: Mapping[str, Any]) -> str:
    """Serialise step metadata strictly (no NaN), converting numpy scalars."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        if hasattr(obj, "tolist"):
            return obj.tolist()
        raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON-able")
    return json.dumps(meta, default=default, allow_nan=False, sort_keys=True)
