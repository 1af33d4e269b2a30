"""Generation shards as Prefect tasks on a local Ray instance (prefect-ray's RayTaskRunner),
with the embedded model: two shards in two Ray worker processes give the same dataset as one
shard in this process."""

from __future__ import annotations

import os

import polars as pl
import pytest

from sublearn.core.config import parse_config

pytest.importorskip("prefect_ray")


def test_two_ray_shards_match_one_local_shard(prefect_server, tiny_config_data, tmp_path):
    from sublearn.flows.dataset import dataset_flow

    data = {**tiny_config_data, "teacher": {**tiny_config_data["teacher"], "batch_size": 2}}
    local = parse_config({**data, "output_dir": str(tmp_path / "local")})
    on_ray = parse_config(
        {
            **data,
            "output_dir": str(tmp_path / "ray"),
            "scale_out": {"runner": "ray", "shards": 2},
        }
    )
    assert on_ray.run_dir().name == local.run_dir().name  # scale-out is a throughput knob

    ray_run = dataset_flow(on_ray)
    generate = next(e for e in ray_run["steps"] if e["step"] == "generate")
    assert generate["status"] == "ran" and generate["batches_generated"] == 3
    record = next((tmp_path / "ray").glob(".steps/generate/*/record.json"))
    workers = pl.read_json(record)["workers"][0].to_list()
    assert len(workers) == 2
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)  # not this process

    dataset_flow(local)
    raw_ray = pl.read_parquet(on_ray.run_dir() / "raw.parquet")
    raw_local = pl.read_parquet(local.run_dir() / "raw.parquet")
    assert raw_ray["prompt_index"].to_list() == list(range(6))
    assert raw_ray.equals(raw_local)
