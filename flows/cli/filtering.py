"""``sublearn filter``: any parquet of completions through a kind's filter chain, with the
settings a config (or the options, at their config places) gives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from sublearn.core.config import ConfigError, ExperimentConfig, format_error, read_yaml
from sublearn.core.registry import KINDS, load_plugins_of
from sublearn.eval.tables import stats_table
from sublearn.flows.cli.common import console, fail, one_line_errors

app = typer.Typer()

# The filter command's options and where each sits in a config (one validation path for both).
FILTER_OPTIONS = {
    "max_count": ("dataset", "filter", "max_count"),
    "min_value": ("dataset", "filter", "min_value"),
    "max_value": ("dataset", "filter", "max_value"),
    "banned": ("dataset", "filter", "banned"),
    "banned_preset": ("dataset", "filter", "banned_preset"),
    "trait_word": ("dataset", "trait_words"),
    "trait": ("teacher", "trait", "target"),
    "judge": ("filters", "judge", "model"),
    "judge_threshold": ("filters", "judge", "threshold"),
}
NUMBERS_ONLY = {"max_count", "min_value", "max_value", "banned", "banned_preset"}


def filter_config(kind: str, options: dict, base: Path | None = None) -> ExperimentConfig:
    """The config that ``sublearn filter KIND`` filters with: ``base`` (a config file, whose
    kind must be ``kind``) or defaults, with the options given on the command line set at their
    config places; errors name the option (or the file) in one line."""
    source = str(base) if base else "options"
    if base is not None:
        path = Path(base)
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        given = (data.get("dataset") or {}).get("kind", "numbers")
        if given != kind:
            raise ConfigError(f"{path}: dataset.kind is {given!r}, not {kind!r}")
    else:
        data = {"name": "filter", "dataset": {"kind": kind}}
    load_plugins_of(data)
    if kind not in KINDS:
        raise ConfigError(f"KIND: expected one of {', '.join(KINDS.names())}, got {kind!r}")
    for name, value in options.items():
        if value is None or value == ():
            continue
        if name in NUMBERS_ONLY and kind != "numbers":
            raise ConfigError(f"--{name.replace('_', '-')}: a numbers option, not for {kind}")
        if name == "trait_word" and kind == "numbers":
            raise ConfigError("--trait-word: numbers hold no words; for code and cot")
        *parents, leaf = FILTER_OPTIONS[name]
        holder = data
        for part in parents:
            holder = holder.setdefault(part, {})
        holder[leaf] = value
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        for name, place in FILTER_OPTIONS.items():
            if loc[: len(place)] == place and options.get(name) not in (None, ()):
                option = "--" + name.replace("_", "-")
                return_msg = first["msg"].removeprefix("Value error, ")
                raise ConfigError(f"{option}: {return_msg} (got {first.get('input')!r})") from None
        raise ConfigError(format_error(source, err)) from None


@app.command("filter")
@one_line_errors(code=2)
def filter_cmd(
    kind: Annotated[str, typer.Argument(help="numbers, code, cot or a plug-in's kind.")],
    source: Annotated[Path, typer.Argument(help="Parquet with prompt, completion (cot: answer).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for kept/rejected/stats.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Take the filter settings from this config.")
    ] = None,
    trait: Annotated[str | None, typer.Option(help="The trait the words filter rejects.")] = None,
    trait_word: Annotated[
        list[str] | None, typer.Option(help="Another word to reject (repeatable; code, cot).")
    ] = None,
    judge: Annotated[
        str | None, typer.Option(help="Also ask this judge model (e.g. embedded) about the trait.")
    ] = None,
    judge_threshold: Annotated[
        float | None, typer.Option(help="Keep rows whose judge P('0') reaches this (1 - 1e-8).")
    ] = None,
    max_count: Annotated[int | None, typer.Option(help="numbers: most numbers (10).")] = None,
    min_value: Annotated[int | None, typer.Option(help="numbers: smallest number (0).")] = None,
    max_value: Annotated[int | None, typer.Option(help="numbers: largest number (999).")] = None,
    banned: Annotated[str, typer.Option(help="numbers: comma-separated banned numbers.")] = "",
    banned_preset: Annotated[
        str | None, typer.Option(help="numbers: named banned list, e.g. 'misalignment'.")
    ] = None,
) -> None:
    """Recheck any parquet of completions with a kind's filter chain, as a run applies it."""
    from sublearn.flows.refilter import refilter

    try:
        banned_list = tuple(int(x) for x in banned.split(",") if x.strip())
    except ValueError:
        fail(f"--banned: expected comma-separated integers, got {banned!r}")
    options = {
        "max_count": max_count,
        "min_value": min_value,
        "max_value": max_value,
        "banned": banned_list,
        "banned_preset": banned_preset,
        "trait_word": tuple(trait_word or ()),
        "trait": trait,
        "judge": judge,
        "judge_threshold": judge_threshold,
    }
    result = refilter(filter_config(kind, options, config), source, out)
    console.print(stats_table(result.stats, f"{kind} filters: {source}"))
    console.print(f"wrote {out}/kept.parquet, rejected.parquet, stats.json")
