"""A :class:`Tool`: a typed callable with pydantic input and output models and the metadata agents need.

A tool wraps a plain Python function. Its *input model* is either given explicitly (the function then takes one
argument, an instance of that model) or derived from the function's signature (one field per parameter, with the
parameter's annotation, default and the description from the docstring's ``Args:`` section). Its *output model* is
the function's return annotation when that is a pydantic model, else a one-field wrapper model ``{"result": ...}``.
The JSON schemas agents see are derived from these models, so the schema and the validation can never disagree.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from malot.errors import ToolError

__all__ = ["TOOL_ATTRIBUTE", "Tool", "ToolMetadata", "describe_validation_error", "tool_of"]

#: Attribute set on a decorated function that holds its :class:`Tool`.
TOOL_ATTRIBUTE = "__malot_tool__"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class ToolMetadata(BaseModel):
    """What a tool is about, for listing and choosing: its family, source paper, tags, and whether it is heavy.

    ``heavy`` tools (large memory or long CPU time) run in a separate process by default, so a crash or a memory
    spike cannot take the caller down with it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str = ""
    paper: str = ""
    tags: tuple[str, ...] = ()
    heavy: bool = False
    plugin: str = ""


class _DerivedInput(BaseModel):
    """Base of input models derived from a signature: unknown arguments are errors."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


@dataclass(slots=True)
class Tool:
    """A typed callable an agent or a user can call by name with JSON arguments.

    Build one with :meth:`from_function` (or the :func:`malot.tools.tool` decorator). ``input_model`` validates the
    arguments; ``output_model`` types the result. ``explicit_input`` says whether the function takes the input model
    itself (one argument) rather than keyword arguments.
    """

    name: str
    description: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    metadata: ToolMetadata = field(default_factory=ToolMetadata)
    explicit_input: bool = False
    wraps_result: bool = False

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        input_model: type[BaseModel] | None = None,
        output_model: type[BaseModel] | None = None,
        family: str = "",
        paper: str = "",
        tags: Sequence[str] = (),
        heavy: bool = False,
    ) -> Tool:
        """Wrap ``fn`` as a tool, deriving what is not given from its signature and docstring."""
        tool_name = name or fn.__name__
        if not _NAME_RE.match(tool_name):
            raise ToolError(
                f"invalid tool name {tool_name!r}",
                hint="use letters, digits, '_' or '-' (at most 64 characters), starting with a letter or '_'",
            )
        doc = inspect.getdoc(fn) or ""
        _, arg_docs = _parse_docstring(doc)
        hints = _type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]
        explicit = False
        if input_model is None and len(params) == 1 and _is_model(hints.get(params[0].name)):
            input_model = hints[params[0].name]
        if input_model is not None:
            # the function takes the model itself when its one parameter is annotated with a model class
            explicit = len(params) == 1 and _is_model(hints.get(params[0].name))
            missing = set(input_model.model_fields) - {p.name for p in params}
            if not explicit and missing and not any(p.kind is p.VAR_KEYWORD for p in params):
                raise ToolError(
                    f"tool {tool_name!r}: input model fields {sorted(missing)} are not parameters of {fn.__name__}",
                    hint="take the model as the only argument, or name one parameter per field",
                )
        else:
            input_model = _derive_input_model(tool_name, params, hints, arg_docs)
        wraps = False
        if output_model is None:
            ret = hints.get("return", Any)
            if _is_model(ret):
                output_model = ret
            else:
                output_model = create_model(_camel(tool_name) + "Output", __base__=BaseModel, result=(ret, ...))
                wraps = True
        return cls(
            name=tool_name,
            description=description if description is not None else _without_args_section(doc),
            fn=fn,
            input_model=input_model,
            output_model=output_model,
            metadata=ToolMetadata(family=family, paper=paper, tags=tuple(tags), heavy=heavy),
            explicit_input=explicit,
            wraps_result=wraps,
        )

    # --- schemas ---------------------------------------------------------------------------------------------

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().splitlines()[0] if self.description.strip() else ""

    @property
    def is_async(self) -> bool:
        """Whether the wrapped function is a coroutine function."""
        return inspect.iscoroutinefunction(self.fn)

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (``$defs`` kept, the top-level title dropped)."""
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        schema.setdefault("properties", {})
        schema.setdefault("type", "object")
        return schema

    def output_schema(self) -> dict[str, Any]:
        """JSON schema of the result."""
        schema = self.output_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def openai_schema(self) -> dict[str, Any]:
        """The tool in the OpenAI function-calling format (``{"type": "function", "function": {...}}``)."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.input_schema()},
        }

    def describe(self) -> dict[str, Any]:
        """Everything known about the tool as a JSON-ready dict (for ``malot tools show``)."""
        return {
            "name": self.name,
            "description": self.description,
            "metadata": self.metadata.model_dump(mode="json"),
            "input_schema": self.input_schema(),
            "output_schema": self.output_schema(),
            "function": f"{self.fn.__module__}:{self.fn.__qualname__}",
        }

    # --- calling ---------------------------------------------------------------------------------------------

    def validate_arguments(self, arguments: Mapping[str, Any] | BaseModel | str | None) -> BaseModel:
        """Validate arguments (a mapping, a JSON string, or an input-model instance) into the input model.

        Raises :class:`ToolError` naming every bad field and what it expected.
        """
        if isinstance(arguments, self.input_model):
            return arguments
        if isinstance(arguments, BaseModel):
            arguments = arguments.model_dump()
        try:
            if isinstance(arguments, str | bytes):
                return self.input_model.model_validate_json(arguments or "{}")
            return self.input_model.model_validate(dict(arguments or {}))
        except ValidationError as exc:
            raise ToolError(
                f"invalid arguments for tool {self.name!r}: {describe_validation_error(exc)}",
                hint=f"see the schema with 'malot tools show {self.name}'",
            ) from None

    def call_validated(self, args: BaseModel) -> Any:
        """Call the function with validated arguments; returns whatever it returns (maybe a coroutine)."""
        if self.explicit_input:
            return self.fn(args)
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        return self.fn(**kwargs)

    def wrap_output(self, value: Any) -> BaseModel:
        """Turn the function's return value into an instance of the output model."""
        if self.wraps_result:
            value = {"result": value}
        if isinstance(value, self.output_model):
            return value
        try:
            if isinstance(value, BaseModel):
                value = value.model_dump()
            return self.output_model.model_validate(value)
        except ValidationError as exc:
            raise ToolError(
                f"tool {self.name!r} returned a value that does not match its output model: "
                f"{describe_validation_error(exc)}",
                hint="this is a bug in the tool; report it to the plugin's authors",
            ) from None

    def invoke(self, arguments: Mapping[str, Any] | BaseModel | str | None) -> BaseModel:
        """Validate, call synchronously in this thread, and type the result (for sync functions)."""
        args = self.validate_arguments(arguments)
        value = self.call_validated(args)
        if inspect.isawaitable(value):
            raise ToolError(f"tool {self.name!r} is async", hint="use 'await registry.run(...)' to call it")
        return self.wrap_output(value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly, without validation."""
        return self.fn(*args, **kwargs)


def tool_of(obj: Any) -> Tool | None:
    """The :class:`Tool` of a decorated function (or the tool itself), else ``None``."""
    if isinstance(obj, Tool):
        return obj
    found = getattr(obj, TOOL_ATTRIBUTE, None)
    return found if isinstance(found, Tool) else None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad field: ``field 'x': message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown argument {loc!r}")
        elif err["type"] == "missing":
            parts.append(f"missing required argument {loc!r}")
        else:
            parts.append(f"argument {loc!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolError(
            f"cannot resolve the type annotations of {fn.__qualname__}: {type(exc).__name__}: {exc}",
            hint="annotate every parameter with types importable at module level",
        ) from None


def _derive_input_model(
    tool_name: str, params: list[inspect.Parameter], hints: Mapping[str, Any], arg_docs: Mapping[str, str]
) -> type[BaseModel]:
    from pydantic import Field

    fields: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolError(f"tool {tool_name!r}: *args/**kwargs cannot be described by a schema", hint="name them")
        if p.name not in hints:
            raise ToolError(f"tool {tool_name!r}: parameter {p.name!r} has no type annotation", hint="annotate it")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], Field(default, description=arg_docs.get(p.name)))
    model: type[BaseModel] = create_model(_camel(tool_name) + "Input", __base__=_DerivedInput, **fields)
    return model


def _without_args_section(doc: str) -> str:
    """The docstring without its ``Args:`` section (argument descriptions go into the schema instead)."""
    out: list[str] = []
    skipping = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:") and not line.startswith((" ", "\t")):
            skipping = True
            continue
        if skipping and stripped and not line.startswith((" ", "\t")):
            skipping = False
        if not skipping:
            out.append(line)
    return "\n".join(out).strip()


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_-]+", name) if part)


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary line and the ``Args:`` descriptions of a Google-style docstring."""
    lines = doc.splitlines()
    summary = lines[0].strip() if lines else ""
    args: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if not in_args:
            continue
        if stripped.endswith(":") and not line.startswith((" ", "\t")):
            break  # the next section
        if not stripped:
            current = None
            continue
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        if m and (current is None or len(line) - len(line.lstrip()) <= _indent_of(lines, current)):
            current = m.group(1)
            args[current] = m.group(3).strip()
        elif current is not None:
            args[current] = (args[current] + " " + stripped).strip()
    return summary, args


def _indent_of(lines: list[str], name: str) -> int:
    for line in lines:
        if re.match(rf"^\s*{re.escape(name)}\s*(\([^)]*\))?\s*:", line):
            return len(line) - len(line.lstrip())
    return 0
