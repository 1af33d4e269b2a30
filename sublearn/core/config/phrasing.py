"""Validation errors as the one line a user reads: the file, the field's dotted path (without
pydantic's union-branch names), what is wrong and what was given."""

from __future__ import annotations

from pydantic import ValidationError


def _union_branch(part: str) -> bool:
    return part.startswith(("literal[", "function-after[")) or part in ("PromptSet",)


def format_error(source: str, err: ValidationError) -> str:
    errors = err.errors()
    first = errors[0]
    # A "name or mapping" union given a mapping: the mapping branch's error is the one to show.
    literal = any(str(p).startswith("literal[") for p in first["loc"])
    if literal and len(errors) > 1 and not isinstance(first.get("input"), str):
        first = errors[1]
    parts = [str(p) for p in first["loc"] if not _union_branch(str(p))]
    loc = ".".join(parts) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{loc}'"
    if kind == "missing":
        return f"{source}: missing required field '{loc}'"
    if kind == "value_error" and not parts:
        return f"{source}: {first['msg'].removeprefix('Value error, ')}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{source}: field '{loc}': {msg} (got {first.get('input')!r})"


def under(err: ValidationError, *prefix: str | int) -> ValidationError:
    """``err`` with its fields placed under ``prefix``: a section validated by a model picked
    at run time (a plug-in's) reports the path the user wrote."""
    return ValidationError.from_exception_data(
        err.title,
        [
            {"type": e["type"], "loc": (*prefix, *e["loc"]), "input": e["input"], **_ctx(e)}
            for e in err.errors()
        ],
    )


def _ctx(error: dict) -> dict:
    return {"ctx": error["ctx"]} if "ctx" in error else {}
