"""What a teacher may write, described once per dataset kind as a GBNF grammar and compiled
for each engine: token masks in the torch loop (llguidance, from the grammar converted to its
Lark), the GBNF itself for llama.cpp's server and for vLLM's structured outputs.

Beyond the protocol, like ``constrain_to_numbers``: a grammar fixes the form of an answer (one
code fence; the reasoning and answer tags around a number) and never its words.

The reasoning budget is in tokens, so that it always leaves room for the answer within
``max_new_tokens``: llguidance counts tokens (a ``max_tokens`` attribute on the reasoning rule,
added when the GBNF is converted), past the budget it allows only the closing tag. GBNF counts
characters only, so the GBNF bounds the reasoning at ``CHARS_PER_TOKEN`` characters a token,
a looser cap that llama.cpp and xgrammar (vLLM) apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from sublearn.core.config import Decoding

NUMBERS = "numbers"
CODE = "code"
COT = "cot"
FORMATS = (CODE, COT)
NUMBER_DIGITS = 12  # an answer's integer and decimal digits each: GSM8K's need at most 7
CHARS_PER_TOKEN = 8  # the GBNF's cap on reasoning characters a budgeted token may stand for
THINK = "think"  # the reasoning rule, whose tokens llguidance counts
LEADING_BLANKS = 8  # blanks the reasoning may open with before its first visible character

# One fenced Python block and nothing around it: the fence opens the answer, every line ends
# with a newline, no line holds a backtick, and the closing fence ends the answer.
CODE_GRAMMAR = r"""root ::= "```python\n" line+ "```"
line ::= [^`\n]* "\n"
"""


def cot_grammar(think_tokens: int) -> str:
    """Reasoning (no "<" in it: the first "<" opens the closing tag; not whitespace alone:
    something after any leading blanks), then the answer: one number between the answer
    tags."""
    digits = f"[0-9]{{1,{NUMBER_DIGITS}}}"
    blanks = " \\t\\r\\n"
    return (
        f'root ::= "<think>" {THINK} "</think>\\n<answer>" number "</answer>"\n'
        f"{THINK} ::= [{blanks}]{{0,{LEADING_BLANKS}}} [^<{blanks}] "
        f"[^<]{{0,{think_tokens * CHARS_PER_TOKEN - 1}}}\n"
        f'number ::= "-"? {digits} ("." {digits})?\n'
    )


def numbers_grammar(stop_after: int | None) -> str:
    """Digits and separators only (``constrain_to_numbers``) and, with ``stop_after``, nothing
    after the n-th number: the numbers stop rule (``generators.number_stops``) for servers."""
    head = "root ::= sep* (num sep+)"
    body = f"{head}{{0,{stop_after - 1}}} num?" if stop_after else "root ::= (sep | num)*"
    return f"{body}\nnum ::= [0-9]+\nsep ::= [ ,;\\n\\[\\]()]\n"


NUMBERS_FIELD = "numbers"


def numbers_schema(stop_after: int | None) -> dict:
    """The numbers rule for providers that constrain only by JSON schema: one string field
    whose pattern is the rule (anchored, as JSON-schema patterns are read by servers that turn
    them into grammars)."""
    from sublearn.generators.number_stops import stop_after_numbers_regex

    body = stop_after_numbers_regex(stop_after) if stop_after else r"[ ,;\n\[\]()0-9]*"
    string = {"type": "string", "pattern": f"^{body}$"}
    return {
        "name": "numbers",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {NUMBERS_FIELD: string},
            "required": [NUMBERS_FIELD],
            "additionalProperties": False,
        },
    }


@dataclass(frozen=True)
class OutputFormat:
    """A dataset kind's answer form: its name and its grammar in GBNF."""

    name: str
    gbnf: str
    think_tokens: int | None = None

    def lark(self) -> str:
        """The grammar in llguidance's Lark, converted from the GBNF (one description), with
        the reasoning budget in tokens on its reasoning rule."""
        return _lark(self.gbnf, self.think_tokens)


@cache
def _lark(gbnf: str, think_tokens: int | None) -> str:
    from llguidance.gbnf_to_lark import gbnf_to_lark

    lark = gbnf_to_lark(gbnf)
    if think_tokens is None:
        return lark
    # the converter makes the reasoning a lexeme (THINK); a rule around it carries the budget
    text, rule = f"{THINK.upper()}_TEXT", f"{THINK}[max_tokens={think_tokens}]"
    lark = re.sub(rf"^{THINK.upper()}:", f"{text}:", lark, flags=re.M)
    lark = re.sub(rf"\b{THINK.upper()}\b", THINK, lark)
    return f"{lark.rstrip()}\n{rule}: {text}\n"


def server_format(decoding: Decoding) -> OutputFormat | None:
    """What a server decodes under: the answer form, or the numbers rule as a grammar (the
    local engines apply that rule with their own faster masks)."""
    if decoding.constrain_to_numbers:
        return OutputFormat(NUMBERS, numbers_grammar(decoding.stop_after_numbers))
    return output_format(decoding)


def output_format(decoding: Decoding) -> OutputFormat | None:
    """The answer form (code, CoT) a teacher's decoding settings constrain it to, or None."""
    if decoding.output_format == CODE:
        return OutputFormat(CODE, CODE_GRAMMAR)
    if decoding.output_format == COT:
        tokens = decoding.think_tokens
        return OutputFormat(COT, cot_grammar(tokens), think_tokens=tokens)
    return None
