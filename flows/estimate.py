"""``sublearn run CONFIG --dry-run``: what a run would send and cost, before anything is sent.

For every dataset whose teacher generates in the run (the trait dataset, the study's control
arm, the leak filter's control teacher), the prompts are built exactly as the run builds them
and their input tokens counted with the best tokenizer there is here: tiktoken for OpenAI's
models (when it is installed and has its encoding), the model's own tokenizer and chat template
for local weights or a server serving a local folder or GGUF file, else characters / 4. Output
tokens are bounded by ``max_new_tokens`` a request, and estimated from the mean of an earlier
run of the same config where its rows are on disk. Cost uses the server's prices per million
tokens, live and at the batch discount providers give (half). Nothing is generated or sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import ExperimentConfig
from sublearn.generators.rate_limits import CHARACTERS_PER_TOKEN, estimated_prompt_tokens
from sublearn.generators.spend_cap import BATCH_DISCOUNT

RAW = "raw.parquet"


@dataclass(frozen=True)
class Counter:
    """How tokens are counted: its name (said in the table) and the two counts."""

    name: str
    prompt: Callable[[list[dict]], int]
    text: Callable[[str], int]


@dataclass(frozen=True)
class Estimate:
    """One generating dataset's requests, tokens and cost: at most (the output bound) and, where
    an earlier run gives a mean, expected (None: no prices, or a local teacher)."""

    dataset: str
    teacher: str
    requests: int
    tokens_in: int
    tokens_out_bound: int
    tokens_out_expected: int | None
    counted_by: str
    usd_live_bound: float | None
    usd_live_expected: float | None

    @property
    def usd_batch_bound(self) -> float | None:
        return None if self.usd_live_bound is None else self.usd_live_bound * BATCH_DISCOUNT


def generating_datasets(cfg: ExperimentConfig) -> list[ExperimentConfig]:
    """The dataset configs whose teachers generate when ``cfg`` runs, each once."""
    from sublearn.core.config.filters import LEAK_CONTROL_TEACHER

    if cfg.grid is not None:
        from sublearn.core.errors import UserError

        raise UserError(f"{cfg.name}: --dry-run takes one experiment, not a grid; run a cell")
    configs = list(cfg.arms().values()) if cfg.experiment is not None else [cfg]
    leak = cfg.filters.leak
    if leak is not None and leak.control == LEAK_CONTROL_TEACHER:
        configs.append(cfg.leak_control())
    unique: dict[str, ExperimentConfig] = {}
    for config in configs:  # the same teacher on the same prompts generates once
        what = [
            config.generating_teacher().model_dump(mode="json"),
            config.dataset.model_dump(mode="json"),
            config.seed,
        ]
        unique.setdefault(json.dumps(what, sort_keys=True, default=str), config)
    return list(unique.values())


def chat_prompts(cfg: ExperimentConfig) -> list[ChatPrompt]:
    """The run's prompts, built by the kind as the prompts step builds them."""
    from sublearn.flows.kinds import kind_of
    from sublearn.generators.trait_prompt import trait_system_prompt

    prompts, _ = kind_of(cfg).prompts(cfg)
    system = trait_system_prompt(cfg.teacher.trait)
    return [ChatPrompt(system, p) for p in prompts["prompt"].to_list()]


def counter_for(teacher) -> Counter:
    """The best token counter here for this teacher's model (see the module's docstring)."""
    if teacher.capabilities.needs_server:
        counter = _tiktoken(teacher.model) or _local(teacher.model, None)
    else:
        counter = _local(teacher.model, teacher.revision)
    return counter or Counter(
        f"characters / {CHARACTERS_PER_TOKEN} (no tokenizer for {teacher.model} here)",
        estimated_prompt_tokens,
        lambda text: len(text) // CHARACTERS_PER_TOKEN,
    )


def _tiktoken(model: str) -> Counter | None:
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model(model)
    except Exception:  # not installed, not an OpenAI model, or its encoding not on this machine
        return None

    def prompt(messages: list[dict]) -> int:  # OpenAI's count for chat: 3 a message, 3 a reply
        return sum(len(encoding.encode(m["content"])) + 3 for m in messages) + 3

    return Counter(f"tiktoken {encoding.name}", prompt, lambda text: len(encoding.encode(text)))


def _local(model: str, revision: str | None) -> Counter | None:
    """The model's own tokenizer and chat template, where its files are on this machine."""
    try:
        from transformers import AutoTokenizer

        from sublearn.core.model_source import resolve_model

        local = Path(model).expanduser()
        if local.is_file() and local.suffix == ".gguf":  # llama.cpp serving a GGUF file
            tokenizer = AutoTokenizer.from_pretrained(str(local.parent), gguf_file=local.name)
        elif local.exists() or model.startswith("embedded"):
            source = resolve_model(model, revision)
            tokenizer = AutoTokenizer.from_pretrained(source.load_path, **source.load_kwargs())
        else:
            tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision, local_files_only=True
            )
    except Exception:  # no files here (a Hub id not downloaded, a server's own name)
        return None
    from sublearn.core.chat import prompt_ids

    return Counter(
        f"{model}'s tokenizer and chat template",
        lambda messages: len(prompt_ids(tokenizer, messages)),
        lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
    )


def earlier_mean(cfg: ExperimentConfig, counter: Counter) -> float | None:
    """Mean output tokens of an earlier run of this same dataset config, where its rows are."""
    import polars as pl

    raw = cfg.run_dir() / RAW
    if not raw.is_file():
        return None
    completions = pl.read_parquet(raw, columns=["completion"])["completion"].to_list()
    if not completions:
        return None
    return sum(counter.text(c or "") for c in completions) / len(completions)


def cost(server, tokens_in: int, tokens_out: int) -> float | None:
    """Dollars at the server's prices per million tokens; None when the config gives none."""
    if server is None or None in (server.usd_per_million_input, server.usd_per_million_output):
        return None
    return (
        tokens_in * server.usd_per_million_input + tokens_out * server.usd_per_million_output
    ) / 1e6


def prices(server) -> str:
    """The config's prices per million tokens, as the table's caption says them."""
    if server is None or None in (server.usd_per_million_input, server.usd_per_million_output):
        return ""
    return f" at ${server.usd_per_million_input:g}/M in, ${server.usd_per_million_output:g}/M out"


def estimate_dataset(cfg: ExperimentConfig) -> Estimate:
    teacher = cfg.generating_teacher()
    counter = counter_for(teacher)
    prompts = chat_prompts(cfg)
    tokens_in = sum(counter.prompt(p.messages()) for p in prompts)
    bound = len(prompts) * teacher.sampling.max_new_tokens
    mean = earlier_mean(cfg, counter)
    expected = None if mean is None else round(mean * len(prompts))
    return Estimate(
        dataset=cfg.name,
        teacher=f"{teacher.backend} {teacher.model}{prices(teacher.server)}",
        requests=len(prompts),
        tokens_in=tokens_in,
        tokens_out_bound=bound,
        tokens_out_expected=expected,
        counted_by=counter.name,
        usd_live_bound=cost(teacher.server, tokens_in, bound),
        usd_live_expected=None if expected is None else cost(teacher.server, tokens_in, expected),
    )


def estimate_run(cfg: ExperimentConfig) -> list[Estimate]:
    """Every generating dataset's estimate, the trait dataset first."""
    return [estimate_dataset(config) for config in generating_datasets(cfg)]
