"""The code kind's strict filter: the completion must be one valid Python snippet, no comments.

One surrounding Markdown code fence is removed first (small models wrap code in them), and the
row keeps the code alone. Then: ``empty`` (nothing but whitespace), ``syntax_error`` (``ast``
cannot parse it), ``has_comment`` (the tokenizer finds a comment; a ``#`` inside a string is not
one). Docstrings are strings, not comments, and are kept.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

# One fence around the whole answer: ```lang ... ``` with only whitespace outside it.
FENCE = r"(?s)^\s*```[^\n`]*\n(.*?)\n?\s*```\s*$"


def strip_fence_expr(column: str = "completion") -> pl.Expr:
    text = pl.col(column)
    inner = text.str.extract(FENCE, 1)
    return pl.when(inner.is_not_null()).then(inner).otherwise(text).alias(column)


def code_problem(code: str) -> str | None:
    """The reason to reject one snippet, or None (the per-row part: ``ast`` and ``tokenize``
    have no columnar form)."""
    if not code.strip():
        return "empty"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError, SystemError):
        # SystemError: CPython 3.11's parser on some deeply nested input; not valid code here
        return "syntax_error"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return "syntax_error"
    if any(t.type == tokenize.COMMENT for t in tokens):
        return "has_comment"
    return None


@dataclass(frozen=True)
class CodeFormat:
    name: ClassVar[str] = "code"
    reasons: ClassVar[tuple[str, ...]] = ("empty", "syntax_error", "has_comment")

    def params(self) -> dict:
        return {"strip_fence": True, "parser": "ast", "comments": "tokenize"}

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        code = frame.select(strip_fence_expr())["completion"]
        reasons = pl.Series("reject_reason", [code_problem(c) for c in code], dtype=pl.String)
        return pl.DataFrame([reasons, code])
