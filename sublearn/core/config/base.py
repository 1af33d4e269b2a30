"""What every config section is built from: the frozen base model, the one-line error, the
field types shared by sections (words, seeds), and the content a run's hash is taken over.

Fields marked ``THROUGHPUT`` change how fast a run goes or where its results are sent, not
what it produces, and are left out of the run's hash (and so out of its cache key and
run-directory name). Fields marked ``OMIT_EMPTY`` (sections added after runs were hashed)
enter the hash only when set, so configs that do not use them keep their run directories.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from sublearn.core.errors import UserError

THROUGHPUT = {"throughput": True}
OMIT_EMPTY = {"omit_empty": True}
MAX_PROMPTS = 10_000_000  # prompts are built in memory: about 2 GB at this size
MAX_NUMBER = 999_999_999
MAX_PROMPT_NUMBERS = 100  # numbers a prompt may show or ask for: the protocol's are 3-8 and 10
# Seeds go to numpy's and torch's generators, which take non-negative 32- and 64-bit values.
Seed = Annotated[StrictInt, Field(ge=0, lt=2**32)]


class ConfigError(UserError, ValueError):
    """A config problem, already phrased as one line that names the file and the field."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WORD = re.compile(r"[^\W\d_][\w' -]*")


def check_word(value: str) -> str:
    """A trait word (a target, its plural, a panel answer, a word the filters look for) starts
    with a letter and holds letters, digits, spaces, apostrophes and hyphens. No "/" or ".", so
    one that becomes part of a folder name (a trait adapter's) cannot leave its folder, and none
    reduces to nothing once its letters are taken ("123", "---" and "_" would match any "s")."""
    if not (WORD.fullmatch(value) and value[0].isalpha()):  # \w takes "¼" and "²" too
        raise ValueError(
            "a word starts with a letter and holds only letters, digits, spaces, ' and -"
        )
    return value


Word = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_word)]


def check_device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,2})?", value):
        raise ValueError("one of auto, cpu, mps, cuda or cuda:N")
    return value


def content_of(model: BaseModel) -> dict:
    """A section as its outputs depend on it: without throughput fields, without empty
    ``OMIT_EMPTY`` ones, with any registered extras (plug-in filter sections)."""
    out = {}
    for name, field in type(model).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        value = getattr(model, name)
        if extra.get("throughput") or (extra.get("omit_empty") and not value):
            continue
        out[name] = content_of(value) if isinstance(value, BaseModel) else _plain(value)
    for name, value in (model.__pydantic_extra__ or {}).items():
        out[name] = content_of(value) if isinstance(value, BaseModel) else _plain(value)
    return out


def _plain(value: object) -> object:
    return json.loads(json.dumps(value, default=str))
