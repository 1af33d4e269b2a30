"""Dataset kinds and semantic filters: what each supplies to the one dataset flow.

A kind gives its prompts (a frame with ``prompt_index`` and ``prompt``, plus any columns its
filters read, such as CoT's reference ``answer``), the record of where they came from, the
modules that make them (for step keys), and its strict filter chain. Kinds and the filters of
``filters:`` are found by name in ``sublearn.core.registry`` (the built-in ones are entered
beside their settings in ``sublearn.core.config``); the flow asks ``kind_of(config)`` and
``filter_chain(config)`` and never names a kind or filter itself.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl

from sublearn.core.config import ExperimentConfig
from sublearn.core.registry import FILTERS, KINDS
from sublearn.filters.chain import RowFilter


class Kind:
    """What a dataset kind supplies; a plug-in subclasses this, registers the subclass with
    its settings (``KINDS.register``) and overrides what differs from these defaults."""

    modules: tuple[str, ...] = ()  # besides its own module: the code its prompts depend on
    reads: tuple[str, ...] = ()  # columns its filters read besides the completion

    def prompts(self, config: ExperimentConfig) -> tuple[pl.DataFrame, dict]:
        """The prompts to generate from, and the prompt set's identity for the lineage."""
        raise NotImplementedError

    def source_identity(self, config: ExperimentConfig) -> dict:
        """What the prompts depend on besides the config (a file's digest), for the key."""
        return {}

    def filters(self, config: ExperimentConfig) -> list[RowFilter]:
        """The kind's strict filters, in the order they run."""
        return []


class Numbers(Kind):
    modules = ("sublearn.generators.numbers_prompts",)

    def prompts(self, config: ExperimentConfig) -> tuple[pl.DataFrame, dict]:
        from sublearn.generators.numbers_prompts import numbers_prompts, prompt_pools_revision

        frame = numbers_prompts(config.dataset.n_prompts, config.seed, config.dataset.prompts)
        record = {
            "source": "sublearn.generators.numbers_prompts",
            "revision": prompt_pools_revision(),
        }
        return frame, record

    def filters(self, config: ExperimentConfig) -> list[RowFilter]:
        from sublearn.filters.numbers import NumbersFormat, NumbersRule

        return [NumbersFormat(NumbersRule.from_config(config.dataset.filter))]


def _set_identity(spec) -> dict:
    if spec is None:
        return {}
    if spec.path is not None:
        from sublearn.core.model_source import cached_sha256

        return {"path_sha256": cached_sha256(spec.path)}
    return {"revision": spec.revision}


class Code(Kind):
    modules = (
        "sublearn.generators.code_prompts",
        "sublearn.generators.prompt_sets",
    )

    def prompts(self, config: ExperimentConfig) -> tuple[pl.DataFrame, dict]:
        from sublearn.generators.code_prompts import code_prompts, task_set_revision

        spec, n = config.dataset.prompts, config.dataset.n_prompts
        if spec == "builtin":
            record = {"source": "sublearn.generators.code_prompts", "revision": task_set_revision()}
            return code_prompts(n, config.seed), record
        from sublearn.generators.prompt_sets import load_prompt_set

        tasks, record = load_prompt_set(spec, ("task", "template"), n, config.seed)
        return code_prompts(n, 0, tasks.to_dicts()), record

    def source_identity(self, config: ExperimentConfig) -> dict:
        spec = config.dataset.prompts
        return _set_identity(None if spec == "builtin" else spec)

    def filters(self, config: ExperimentConfig) -> list[RowFilter]:
        from sublearn.filters.code import CodeFormat
        from sublearn.filters.trait_word import TraitWord

        return [CodeFormat(), TraitWord(config.trait_words())]


class Cot(Kind):
    modules = ("sublearn.generators.cot_prompts", "sublearn.generators.prompt_sets")
    reads = ("answer",)

    def prompts(self, config: ExperimentConfig) -> tuple[pl.DataFrame, dict]:
        from sublearn.generators.cot_prompts import cot_prompts, generator_revision, word_problems

        dataset = config.dataset
        spec = dataset.prompt_set()
        if spec is None:
            questions = word_problems(dataset.n_prompts, config.seed)
            record = {"source": "sublearn.generators.cot_prompts", "revision": generator_revision()}
        else:
            from sublearn.generators.prompt_sets import load_prompt_set

            questions, record = load_prompt_set(
                spec, ("question", "answer"), dataset.n_prompts, config.seed
            )
        return cot_prompts(questions, dataset.samples_per_question), record

    def source_identity(self, config: ExperimentConfig) -> dict:
        return _set_identity(config.dataset.prompt_set())

    def filters(self, config: ExperimentConfig) -> list[RowFilter]:
        from sublearn.filters.cot import CotFormat
        from sublearn.filters.trait_word import TraitWord

        return [CotFormat(), TraitWord(config.trait_words())]


def kind_of(config: ExperimentConfig) -> Kind:
    return KINDS.get(config.dataset.kind).load()()


def kind_modules(config: ExperimentConfig) -> list[str]:
    """The code a kind's prompts depend on: the module that registered it and those it names."""
    entry = KINDS.get(config.dataset.kind)
    return [entry.module, *kind_of(config).modules]


def semantic_filters(config: ExperimentConfig) -> list[RowFilter]:
    """The filters any kind can switch on (``filters:``), after the kind's cheap ones, so the
    costly judges see only the rows that survived those. Each is built by the function its
    name is registered with, from its settings and the config."""
    return [
        FILTERS.get(name).load()(settings, config) for name, settings in config.filters.chosen()
    ]


def trait_judge(settings, config: ExperimentConfig) -> RowFilter:
    from sublearn.filters.judge import TraitJudge

    return TraitJudge(settings, config.trait_targets())


def alignment_judge(settings, config: ExperimentConfig) -> RowFilter:
    from sublearn.filters.alignment import AlignmentJudge

    return AlignmentJudge(settings)


def leak_filter(settings, config: ExperimentConfig) -> RowFilter:
    """The leak filter with its threshold: fixed, or calibrated on the control rows."""
    from sublearn.filters.leak import EmbeddingLeak

    traits = config.trait_targets()

    if settings.threshold is not None:
        return EmbeddingLeak(settings, traits, settings.threshold, {"fixed": True})
    from sublearn.core.config import LEAK_CONTROL_OWN, LEAK_CONTROL_TEACHER
    from sublearn.core.errors import DataError
    from sublearn.core.model_source import cached_sha256, file_stamp

    if settings.control in (LEAK_CONTROL_TEACHER, LEAK_CONTROL_OWN):
        raise DataError(
            f"filters.leak.control: {settings.control!r} is resolved by a run (sublearn run), "
            "which generates the control rows; here give a parquet of them or a threshold"
        )
    if not Path(settings.control).is_file():
        raise DataError(f"{settings.control}: control rows not found (filters.leak.control)")
    stamp = tuple(file_stamp(Path(settings.control)))
    threshold, rows = control_threshold(
        settings.model, settings.control, stamp, settings.quantile, traits
    )
    source = {"control": settings.control, "sha256": cached_sha256(settings.control)}
    return EmbeddingLeak(
        settings, traits, threshold, {**source, "quantile": settings.quantile, "rows": rows}
    )


@cache
def control_threshold(
    model: str, path: str, stamp: tuple, quantile: float, traits: tuple[str, ...]
) -> tuple[float, int]:
    """The control rows' leak-score quantile, once per file version: a run builds its chain
    for the step key and again to filter, and the control rows are embedded only once."""
    from sublearn.core.errors import DataError
    from sublearn.core.runio import read_parquet
    from sublearn.filters.leak import calibrated_threshold, leak_scores

    rows = read_parquet(path, ("completion",))["completion"].to_list()
    if not rows:
        raise DataError(f"{path}: no control rows to calibrate the leak filter on")
    return calibrated_threshold(leak_scores(model, rows, traits), quantile), len(rows)


def filter_chain(config: ExperimentConfig) -> list[RowFilter]:
    """Every filter a dataset of this config goes through, in order."""
    return kind_of(config).filters(config) + semantic_filters(config)
