"""Plug-in points: a toy dataset kind, a toy backend and a toy filter, each one new module
that registers itself and nothing else, run through ``sublearn run`` and ``sublearn filter``
as a user would (the config's ``plugins:`` names them; an installed distribution's entry
points are the other way in)."""

from __future__ import annotations

import json
import textwrap

import polars as pl
import pytest
import yaml

TOY_KIND = '''
"""A toy kind: prompts asking to repeat a word, no filter of its own."""
from typing import Literal

import polars as pl

from sublearn.core.config import DatasetCommon
from sublearn.core.registry import KINDS
from sublearn.flows.kinds import Kind


class ToyDataset(DatasetCommon):
    kind: Literal["toy"]
    n_prompts: int = 8
    word: str = "ping"


@KINDS.register("toy", settings=ToyDataset)
class Toy(Kind):
    def prompts(self, config):
        n, word = config.dataset.n_prompts, config.dataset.word
        frame = pl.DataFrame(
            {
                "prompt_index": pl.Series(range(n), dtype=pl.Int64),
                "prompt": [f"Say {word} {i} times." for i in range(n)],
            }
        )
        return frame, {"source": "toy_kind", "revision": "1"}
'''

TOY_BACKEND = '''
"""A toy backend: repeats the word of each prompt as many times as it asks; no weights."""
from sublearn.core.registry import BACKENDS, Capabilities


@BACKENDS.register("echo", capabilities=Capabilities())
class EchoTeacher:
    def __init__(self, cfg):
        self.cfg = cfg

    def generate(self, prompts, seed):
        out = []
        for p in prompts:
            _, word, times, _ = p.user.split(" ")
            out.append(" ".join([word] * int(times)))
        return out

    def lineage(self):
        return {"backend": "echo"}

    def completion_tokens(self, completions):
        return sum(len(c.split()) for c in completions)
'''

TOY_FILTER = '''
"""A toy filter: drops completions longer than ``max_chars``, counted per reason."""
import polars as pl

from sublearn.core.config import Frozen
from sublearn.core.registry import FILTERS


class ShortSettings(Frozen):
    max_chars: int = 20


class Short:
    name = "short"
    reasons = ("too_long",)

    def __init__(self, settings):
        self.settings = settings

    def params(self):
        return self.settings.model_dump()

    def judge(self, frame):
        long = pl.col("completion").str.len_chars() > self.settings.max_chars
        return frame.select(
            pl.when(long).then(pl.lit("too_long")).otherwise(None).alias("reject_reason")
        )


@FILTERS.register("short", settings=ShortSettings)
def short(settings, config):
    return Short(settings)
'''


@pytest.fixture
def toy_project(tmp_path):
    """A folder with the three plug-in modules and a config that uses them."""
    for name, source in (
        ("toy_kind", TOY_KIND),
        ("toy_backend", TOY_BACKEND),
        ("toy_filter", TOY_FILTER),
    ):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    config = {
        "name": "toy",
        "plugins": ["toy_kind", "toy_backend", "toy_filter"],
        "teacher": {"backend": "echo"},
        "dataset": {"kind": "toy", "n_prompts": 8, "word": "ping"},
        "filters": {"short": {"max_chars": 20}},
    }
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_a_toy_kind_backend_and_filter_run_through_run_and_filter(toy_project, run_cli):
    env = {"PYTHONPATH": str(toy_project)}
    ran = run_cli(["run", str(toy_project / "toy.yaml")], cwd=toy_project, **env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (run_dir,) = (toy_project / "runs").glob("toy-*")
    raw = pl.read_parquet(run_dir / "raw.parquet")
    kept = pl.read_parquet(run_dir / "kept.parquet")
    stats = json.loads((run_dir / "stats.json").read_text())
    # the kind's prompts, the backend's completions ("ping" i times), the filter's verdicts
    assert raw.sort("prompt_index")["completion"].to_list() == [
        " ".join(["ping"] * i) for i in range(8)
    ]
    assert kept["completion"].str.len_chars().max() <= 20
    short = [f for f in stats["filters"] if f["filter"] == "short"][0]
    assert short["dropped"] == {"too_long": 3}  # 5, 6 and 7 x "ping": 24+ characters
    assert stats["kept"] == kept.height == 5
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert {"filter": "short", "params": {"max_chars": 20}} in [
        {"filter": f["name"], "params": f["params"]} for f in lineage["filters"]
    ]

    # the same rows through `sublearn filter`, with the plug-ins the config names
    out = toy_project / "refiltered"
    refiltered = run_cli(
        [
            "filter",
            "toy",
            str(run_dir / "raw.parquet"),
            "--out",
            str(out),
            "--config",
            str(toy_project / "toy.yaml"),
        ],
        cwd=toy_project,
        **env,
    )
    assert refiltered.returncode == 0, refiltered.stderr[-3000:]
    again = pl.read_parquet(out / "kept.parquet").sort("prompt_index")
    assert again["completion"].to_list() == kept.sort("prompt_index")["completion"].to_list()


def test_plug_in_names_and_settings_are_checked_like_built_in_ones(toy_project, monkeypatch):
    from sublearn.core.config import ConfigError, parse_config
    from sublearn.core.registry import BACKENDS, FILTERS, KINDS

    monkeypatch.syspath_prepend(str(toy_project))
    base = yaml.safe_load((toy_project / "toy.yaml").read_text())
    config = parse_config(base)
    assert "toy" in KINDS and "echo" in BACKENDS and "short" in FILTERS
    assert config.filters.chosen()[0][0] == "short"
    bad_filter = {**base, "filters": {"short": {"max_chars": "many"}}}
    with pytest.raises(ConfigError, match="filters.short.max_chars"):
        parse_config(bad_filter)
    with pytest.raises(ConfigError, match="unknown filter 'long'"):
        parse_config({**base, "filters": {"long": {}}})
    with pytest.raises(ConfigError, match="field 'teacher.backend': one of torch"):
        parse_config({**base, "teacher": {"backend": "telepathy"}})
    with pytest.raises(ConfigError, match="cannot import plug-in 'no_such_module'"):
        parse_config({**base, "plugins": ["no_such_module"]})
    # a backend without local weights cannot make students
    experiment = {"evaluation": {"target": "owl"}}
    with pytest.raises(ConfigError, match="teacher.backend echo makes datasets"):
        parse_config({**base, "experiment": experiment})
