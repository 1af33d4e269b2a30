"""The dataset flow on the real Prefect engine and the real embedded model."""

from __future__ import annotations

import json

import polars as pl
import yaml

from sublearn.core.config import parse_config
from sublearn.filters.numbers import NumbersRule, reject_reason


def test_flow_writes_a_real_dataset(prefect_server, tiny_config_data):
    from prefect.client.orchestration import get_client

    from sublearn.flows.dataset import dataset_flow

    config = parse_config(tiny_config_data)
    result = dataset_flow(config)
    run_dir = config.run_dir()
    assert result["run_dir"] == str(run_dir)
    for name in ("prompts.parquet", "raw.parquet", "kept.parquet", "rejected.parquet"):
        assert (run_dir / name).is_file(), name
    raw = pl.read_parquet(run_dir / "raw.parquet")
    kept = pl.read_parquet(run_dir / "kept.parquet")
    rejected = pl.read_parquet(run_dir / "rejected.parquet")
    stats = json.loads((run_dir / "stats.json").read_text())

    # every prompt answered once, by the teacher with the owl system prompt
    assert sorted(raw["prompt_index"]) == list(range(6))
    assert raw["system_prompt"].str.contains("owls").all()
    assert raw["completion"].str.len_chars().sum() > 0
    assert set(raw["temperature"]) == {1.0} and set(raw["max_new_tokens"]) == {24}

    # the stats are the reference parser's verdicts on these very completions
    verdicts = [reject_reason(c, NumbersRule()) for c in raw["completion"]]
    assert stats["total"] == 6
    assert stats["kept"] == verdicts.count(None) == kept.height
    assert stats["dropped"]["invalid_format"] == verdicts.count("invalid_format")
    assert kept.height + rejected.height == 6
    assert "system_prompt" not in kept.columns  # students never see the trait prompt

    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert parse_config(saved) == config

    # and the stats went to Prefect as a table artifact
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
        from prefect.client.schemas.sorting import ArtifactSort

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["filter-stats"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert artifacts and artifacts[0].type == "table"
    table = artifacts[0].data
    table = json.loads(table) if isinstance(table, str) else table
    assert {"filter": "(chain)", "outcome": "kept", "rows": stats["kept"]} in table
    assert {"filter": "numbers", "outcome": "in", "rows": 6} in table


def test_same_config_same_prompts_and_completions(prefect_server, tiny_config_data, tmp_path):
    from sublearn.flows.dataset import dataset_flow

    """Two runs of one config in separate output folders (no shared cache) agree."""
    runs = []
    for folder in ("a", "b"):
        config = parse_config({**tiny_config_data, "output_dir": str(tmp_path / folder)})
        dataset_flow(config)
        runs.append(pl.read_parquet(config.run_dir() / "raw.parquet"))
    assert runs[0]["prompt"].equals(runs[1]["prompt"])
    assert runs[0]["completion"].equals(runs[1]["completion"])


def test_reused_steps_show_in_prefect_as_cached_task_runs(prefect_server, tiny_config_data):
    """The second run of a config computes nothing; each step it reused is a task run in the
    Cached state in that flow run, so the UI's graph holds every step."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from sublearn.flows.dataset import dataset_flow

    config = parse_config({**tiny_config_data, "name": "shown"})
    dataset_flow(config)
    state = dataset_flow(config, return_state=True)
    rerun = state.result()
    assert {s["status"] for s in rerun["steps"]} == {"reused"}
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    cached = sorted(r.name for r in runs if r.state.name == "Cached")
    assert cached == sorted(f"{s['step']} shown (reused)" for s in rerun["steps"])
