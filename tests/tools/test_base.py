"""Tool construction: schemas derived from signatures and docstrings, explicit models, validation errors."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from malot.errors import ToolError
from malot.tools import Tool, ToolRegistry, tool, tool_of


class Point(BaseModel):
    """A point in the plane."""

    x: float
    y: float = 0.0


class Norm(BaseModel):
    """Its distance to the origin."""

    norm: float


def scale(values: list[float], factor: float = 2.0, mode: Literal["mul", "div"] = "mul") -> list[float]:
    """Scale numbers by a factor.

    Longer explanation that stays in the description.

    Args:
        values: the numbers to scale
        factor: what to multiply
            (or divide) by
        mode: multiply or divide
    """
    return [v * factor if mode == "mul" else v / factor for v in values]


def norm(point: Point) -> Norm:
    """Euclidean norm of a point."""
    return Norm(norm=(point.x**2 + point.y**2) ** 0.5)


def test_input_schema_is_derived_from_signature_and_docstring() -> None:
    t = Tool.from_function(scale, family="demo", tags=["math"])
    schema = t.input_schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["values"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["values"]["type"] == "array" and props["values"]["items"]["type"] == "number"
    assert props["factor"]["default"] == 2.0
    assert props["factor"]["description"] == "what to multiply (or divide) by"
    assert props["mode"]["enum"] == ["mul", "div"]
    assert t.description.startswith("Scale numbers by a factor.")
    assert "Longer explanation" in t.description and "Args:" not in t.description
    assert t.output_schema()["properties"]["result"]["type"] == "array"
    assert t.metadata.family == "demo" and t.metadata.tags == ("math",)


def test_openai_function_calling_format() -> None:
    t = Tool.from_function(scale)
    rendered = t.openai_schema()
    assert rendered["type"] == "function"
    assert set(rendered["function"]) == {"name", "description", "parameters"}
    assert rendered["function"]["name"] == "scale"
    assert rendered["function"]["parameters"] == t.input_schema()
    assert "title" not in rendered["function"]["parameters"]


def test_explicit_input_and_output_models() -> None:
    t = Tool.from_function(norm)
    assert t.explicit_input and t.input_model is Point and t.output_model is Norm
    out = t.invoke({"x": 3, "y": 4})
    assert isinstance(out, Norm) and out.norm == 5.0
    assert t.invoke('{"x": 6, "y": 8}') == Norm(norm=10.0)


def test_explicit_input_model_with_keyword_parameters() -> None:
    class Args(BaseModel):
        a: int = Field(description="first")
        b: int = 0

    def add(a: int, b: int = 0) -> int:
        """Add."""
        return a + b

    t = Tool.from_function(add, input_model=Args)
    assert t.input_schema()["properties"]["a"]["description"] == "first"
    assert t.invoke({"a": 2, "b": 3}).model_dump() == {"result": 5}


def test_validation_errors_name_every_bad_argument() -> None:
    t = Tool.from_function(scale)
    with pytest.raises(ToolError) as info:
        t.validate_arguments({"factor": "big", "colour": "red"})
    message = str(info.value)
    assert "missing required argument 'values'" in message
    assert "argument 'factor'" in message and "'big'" in message
    assert "unknown argument 'colour'" in message
    assert "malot tools show scale" in message
    with pytest.raises(ToolError, match="argument 'mode'"):
        t.validate_arguments({"values": [1], "mode": "pow"})
    with pytest.raises(ToolError, match="invalid arguments"):
        t.validate_arguments("{not json")


def test_bad_tool_definitions_are_reported() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        """No annotations."""
        return x

    with pytest.raises(ToolError, match="no type annotation"):
        Tool.from_function(untyped)
    with pytest.raises(ToolError, match="invalid tool name"):
        Tool.from_function(scale, name="has space")


def test_decorator_registers_and_returns_the_function() -> None:
    reg = ToolRegistry()

    @tool(registry=reg, family="demo", heavy=True)
    def double(x: int) -> int:
        """Double it."""
        return 2 * x

    assert double(4) == 8  # still a plain function
    found = tool_of(double)
    assert found is not None and reg.get("double") is found
    assert found.metadata.heavy

    @tool(registry=reg)
    def bare(x: int) -> int:
        """Bare decorator with options omitted."""
        return x

    assert "bare" in reg


def test_wrong_return_value_is_a_tool_error() -> None:
    def liar(x: int) -> int:
        """Claims an int."""
        return "not an int"  # type: ignore[return-value]

    with pytest.raises(ToolError, match="does not match its output model"):
        Tool.from_function(liar).invoke({"x": 1})
