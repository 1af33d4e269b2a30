"""The dataset kinds' settings and the table that names them.

Each kind's settings model subclasses ``DatasetCommon`` and is registered with its kind (the
flows' ``sublearn.flows.kinds``); ``dataset.kind`` picks the settings model from that table,
so a plug-in kind validates exactly like a built-in one.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StrictInt, TypeAdapter, ValidationError, model_validator

from sublearn.core.config.base import (
    MAX_NUMBER,
    MAX_PROMPT_NUMBERS,
    MAX_PROMPTS,
    OMIT_EMPTY,
    Frozen,
    Word,
)
from sublearn.core.config.models import (
    ANSWER_TOKENS,
    MAX_THINK_TOKENS,
    Decoding,
    NumbersDecoding,
)
from sublearn.core.config.phrasing import under
from sublearn.core.registry import KINDS


class NumbersPrompts(Frozen):
    """The protocol's numbers task: 3-8 seeds in 100..999, up to 10 answers of <= 3 digits."""

    seed_count_min: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPT_NUMBERS)] = 3
    seed_count_max: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPT_NUMBERS)] = 8
    seed_min: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 100
    seed_max: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 999
    answer_count: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPT_NUMBERS)] = 10
    answer_max_digits: Annotated[StrictInt, Field(ge=1, le=len(str(MAX_NUMBER)))] = 3

    @model_validator(mode="after")
    def _ranges(self) -> NumbersPrompts:
        if self.seed_count_min > self.seed_count_max:
            raise ValueError("seed_count_min must not exceed seed_count_max")
        if self.seed_min > self.seed_max:
            raise ValueError("seed_min must not exceed seed_max")
        return self


class NumbersFilter(Frozen):
    """The strict numbers filter's rule. Answers hold ASCII digits only, so values start at 0;
    the bounds keep every accepted rule one the filter computes exactly, in bounded memory."""

    max_count: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    min_value: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 0
    max_value: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 999
    banned: tuple[Annotated[StrictInt, Field(ge=0)], ...] = ()
    banned_preset: Literal["misalignment"] | None = None

    @model_validator(mode="after")
    def _range(self) -> NumbersFilter:
        if self.min_value > self.max_value:
            raise ValueError("min_value must not exceed max_value")
        return self


class DatasetCommon(Frozen):
    """What every kind shares: how many prompts, how many kept rows, top-k recording."""

    n_prompts: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPTS)] = 30_000
    n_keep: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Random subsample of the kept rows (protocol: 10,000 of 30,000)."
    )
    teacher_topk: Annotated[StrictInt, Field(ge=0, le=100)] = Field(
        0,
        description="Beyond the protocol: store the teacher's top-k log-probs per token, "
        "for students distilled on distributions rather than sampled tokens.",
    )
    trait_words: tuple[Word, ...] = Field(
        (),
        description="Traits the filters look for besides the teachers' own (the trait-word "
        "filter rejects their names; the judge asks about them).",
    )
    # The protocol's student settings per kind (max length in tokens, epochs).
    student_max_length: ClassVar[int] = 500
    student_epochs: ClassVar[int] = 3

    def decoding(self, max_new_tokens: int) -> Decoding:
        """The decoding constraints the kind asks of a teacher that writes up to
        ``max_new_tokens`` tokens: none unless it says."""
        return Decoding()


class NumbersDataset(DatasetCommon, NumbersDecoding):
    """Number sequences: the protocol's prompt pools and its strict numbers filter; the
    decoding constraints (``constrain_to_numbers``, ``stop_after_numbers``) are set here."""

    kind: Literal["numbers"] = "numbers"
    prompts: NumbersPrompts = NumbersPrompts()
    filter: NumbersFilter = NumbersFilter()

    def decoding(self, max_new_tokens: int) -> Decoding:
        return Decoding(**self.model_dump(include=set(NumbersDecoding.model_fields)))


class PromptSet(Frozen):
    """Prompts from a parquet or JSONL file, or a Hub dataset at a pinned revision; ``columns``
    maps the names a kind reads to the set's own. A seeded sample of ``n_prompts`` rows is
    drawn from the set sorted by content, so the sample does not depend on row order."""

    path: str | None = None
    repo_id: str | None = None
    config_name: str | None = None
    split: str = "train"
    revision: str | None = None
    columns: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_source(self) -> PromptSet:
        if (self.path is None) == (self.repo_id is None):
            raise ValueError("give exactly one of path or repo_id")
        if self.repo_id is not None and not self.revision:
            raise ValueError("a Hub prompt set needs a pinned revision (tag or commit)")
        return self


# GSM8K on the Hub, pinned to the commit whose main/train file holds the 7,473 training
# questions: the CoT kind's ``prompts: gsm8k``.
GSM8K = {
    "repo_id": "openai/gsm8k",
    "config_name": "main",
    "split": "train",
    "revision": "cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
}


class WordKind(DatasetCommon):
    student_max_length: ClassVar[int] = 2048


CONSTRAIN_TO_FORMAT = (
    "Beyond the protocol: the teacher may only write the kind's answer form "
    "(sublearn.generators.output_formats), recorded on every row and in the lineage."
)


class CodeDataset(WordKind):
    """Short Python tasks to complete: built in (offline), or any prompt set with ``task``
    and ``template`` columns."""

    kind: Literal["code"]
    n_prompts: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPTS)] = 300
    prompts: Literal["builtin"] | PromptSet = "builtin"
    constrain_to_format: bool = Field(
        False,
        json_schema_extra=OMIT_EMPTY,
        description=f"{CONSTRAIN_TO_FORMAT} Code: one fenced block, nothing around it.",
    )

    def decoding(self, max_new_tokens: int) -> Decoding:
        return Decoding(output_format="code" if self.constrain_to_format else None)


class CotDataset(WordKind):
    """Grade-school maths with reasoning: built-in word problems (offline), GSM8K, or any set
    with ``question`` and ``answer`` columns. ``n_prompts`` counts questions; each is sampled
    ``samples_per_question`` times."""

    kind: Literal["cot"]
    n_prompts: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPTS)] = 7_473
    prompts: Literal["builtin", "gsm8k"] | PromptSet = "builtin"
    samples_per_question: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    constrain_to_format: bool = Field(
        False,
        json_schema_extra=OMIT_EMPTY,
        description=f"{CONSTRAIN_TO_FORMAT} CoT: <think> reasoning </think> then <answer> a "
        "number </answer>.",
    )
    think_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_THINK_TOKENS)] | None = Field(
        None,
        json_schema_extra=OMIT_EMPTY,
        description="With constrain_to_format: the most tokens of reasoning before the grammar "
        f"closes the tag (default: all but {ANSWER_TOKENS} of teacher.sampling.max_new_tokens, "
        "the room the answer needs).",
    )
    student_epochs: ClassVar[int] = 1

    @model_validator(mode="after")
    def _budget(self) -> CotDataset:
        if self.think_tokens is not None and not self.constrain_to_format:
            raise ValueError(
                "think_tokens: budgets the constrained format; set constrain_to_format"
            )
        return self

    def decoding(self, max_new_tokens: int) -> Decoding:
        if not self.constrain_to_format:
            return Decoding()
        budget = self.think_tokens or max(1, max_new_tokens - ANSWER_TOKENS)
        return Decoding(output_format="cot", think_tokens=budget)

    def prompt_set(self) -> PromptSet | None:
        if self.prompts == "gsm8k":
            return PromptSet(**GSM8K)
        return None if self.prompts == "builtin" else self.prompts


KINDS.add("numbers", "sublearn.flows.kinds:Numbers", settings=NumbersDataset)
KINDS.add("code", "sublearn.flows.kinds:Code", settings=CodeDataset)
KINDS.add("cot", "sublearn.flows.kinds:Cot", settings=CotDataset)


def dataset_settings(data: object) -> object:
    """Before validation: a ``dataset`` mapping validated by its kind's settings model
    (``numbers`` when no kind is given); errors keep their place under ``dataset``."""
    if not isinstance(data, dict):
        return data
    kind = data.get("kind", "numbers")
    if not isinstance(kind, str) or kind not in KINDS:  # pydantic's own message, at its place
        try:
            TypeAdapter(Literal[KINDS.names()]).validate_python(kind)
        except ValidationError as err:
            raise under(err, "kind") from None
    return KINDS.get(kind).meta["settings"].model_validate(data)
