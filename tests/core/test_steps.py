"""Step caching and reruns on the real flow and model: a filter change reuses the completions,
``--only``/``--force`` recompute exactly the steps named, ``sublearn step`` works on a run
directory, and an uncached upstream step under ``--only`` is one clear line."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from sublearn.core.config import parse_config
from sublearn.core.runio import write_text
from sublearn.core.steps import (
    STEPS,
    Step,
    StepError,
    StepPlan,
    StepStore,
    code_closure,
    link_into,
)
from sublearn.generators.batches import pending_batches, split_shards


def statuses(result: dict) -> dict[str, str]:
    return {e["step"]: e["status"] for e in result["steps"]}


@pytest.fixture()
def config(tiny_config_data, tmp_path):
    return parse_config({**tiny_config_data, "output_dir": str(tmp_path / "runs")})


def verdicts(stats: dict) -> dict:
    """Filter stats without their timings."""
    filters = [{k: v for k, v in f.items() if k != "seconds"} for f in stats["filters"]]
    return {**stats, "filters": filters}


def test_a_filter_change_reuses_prompts_and_completions(prefect_server, config):
    from sublearn.flows.dataset import dataset_flow

    first = dataset_flow(config)
    assert statuses(first) == {"prompts": "ran", "generate": "ran", "filter": "ran"}
    again = dataset_flow(config)
    assert statuses(again) == {"prompts": "reused", "generate": "reused", "filter": "reused"}

    stricter = config.model_copy(
        update={
            "dataset": config.dataset.model_copy(
                update={"filter": config.dataset.filter.model_copy(update={"max_count": 2})}
            )
        }
    )
    changed = dataset_flow(stricter)
    assert changed["run_dir"] != first["run_dir"]
    assert statuses(changed) == {"prompts": "reused", "generate": "reused", "filter": "ran"}
    assert changed["stats"]["total"] == first["stats"]["total"]
    assert changed["stats"]["kept"] <= first["stats"]["kept"]

    only = dataset_flow(config, StepPlan(only="filter"))
    assert statuses(only) == {"prompts": "reused", "generate": "reused", "filter": "ran"}
    assert verdicts(only["stats"]) == verdicts(first["stats"])

    forced = dataset_flow(config, StepPlan(force=frozenset({"generate"})))
    assert statuses(forced)["generate"] == "ran"
    generate = next(e for e in forced["steps"] if e["step"] == "generate")
    assert generate["batches_generated"] == 2 and generate["batches_reused"] == 0

    upto = dataset_flow(config, StepPlan(only="prompts"))
    assert statuses(upto) == {"prompts": "ran"} and upto["stats"] is None


def newest_artifact(**where):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, ArtifactFilterType
    from prefect.client.schemas.sorting import ArtifactSort

    key = ArtifactFilterKey(any_=[where["key"]]) if "key" in where else None
    kind = ArtifactFilterType(any_=[where["type"]]) if "type" in where else None
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=key, type=kind),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else data


def test_runs_record_a_summary_and_progress_in_prefect(prefect_server, config):
    from sublearn.flows.dataset import dataset_flow

    result = dataset_flow(config)
    summary = newest_artifact(key="run-summary")
    assert [(r["step"], r["status"], r["rows"]) for r in summary] == [
        (e["step"], e["status"], e["rows"]) for e in result["steps"]
    ]
    assert json.loads((config.run_dir() / "steps.json").read_text()) == result["steps"]
    assert newest_artifact(type="progress") == 100.0  # generation's bar reached the end


def test_only_without_cached_upstream_is_one_line(prefect_server, config):
    from sublearn.flows.dataset import dataset_flow

    with pytest.raises(StepError, match="--only filter: step 'prompts' has no cached output"):
        dataset_flow(config, StepPlan(only="filter"))


def test_step_command_on_a_run_directory(run_cli, config, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    first = run_cli(["run", str(path)])
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = config.run_dir()
    stats = json.loads((run_dir / "stats.json").read_text())
    (run_dir / "kept.parquet").unlink()

    again = run_cli(["step", "filter", "--run-dir", str(run_dir)])
    assert again.returncode == 0, again.stderr[-2000:]
    assert "│ filter   │ tiny-owl │    ran │" in again.stdout
    assert "│ generate │ tiny-owl │ reused │" in again.stdout
    assert verdicts(json.loads((run_dir / "stats.json").read_text())) == verdicts(stats)
    assert (run_dir / "kept.parquet").is_file()

    bad = run_cli(["run", str(path), "--only", "filtre"])
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --only: unknown step 'filtre' (steps: prompts, teacher, generate, filter, "
        "publish, rescore, finetune, evaluate, report)"
    ]


def test_pending_batches_sit_on_a_fixed_grid():
    assert pending_batches(range(10), 4, set()) == [(0, 4), (4, 8), (8, 10)]
    assert pending_batches(range(10), 4, {0, 1, 2, 3, 8, 9}) == [(4, 8)]
    assert pending_batches(range(10), 4, {0, 1}) == [(0, 4), (4, 8), (8, 10)]
    assert pending_batches(range(10), 4, set(range(10))) == []
    assert split_shards([(0, 4), (4, 8), (8, 10)], 2) == [[(0, 4), (8, 10)], [(4, 8)]]
    assert split_shards([(0, 4)], 3) == [[(0, 4)]]


def test_step_plan_semantics():
    plan = StepPlan(only="filter")
    assert plan.forced("filter") and not plan.forced("generate")
    assert plan.upstream_only("generate") and not plan.upstream_only("filter")
    assert plan.runs("filter") and not plan.runs("publish")
    start = StepPlan(start="finetune")
    assert start.forced("evaluate") and start.runs("report") and start.upstream_only("publish")
    assert not StepPlan(stop="publish").runs("finetune")
    with pytest.raises(StepError, match="--force: unknown step 'x'"):
        StepPlan(force=frozenset({"x"}))
    with pytest.raises(StepError, match="give one of them"):
        StepPlan(only="filter", start="generate")


def test_step_store_reuses_forces_and_resumes(tmp_path):
    store, calls = StepStore(tmp_path), []

    def compute(folder, fresh):
        calls.append(fresh)
        write_text(str(len(calls)), folder / "out.txt")
        return {"files": ["out.txt"], "rows": len(calls)}

    assert store.run(StepPlan(), "filter", "k1", compute)[1] == "ran"
    assert store.run(StepPlan(), "filter", "k1", compute)[1] == "reused"
    forced = StepPlan(force=frozenset({"filter"}))
    record, status = store.run(forced, "filter", "k1", compute)
    assert status == "ran" and calls == [False, True] and record["rows"] == 2
    (store.folder("filter", "k1") / "record.json").unlink()  # killed before it finished
    store.run(forced, "filter", "k1", compute)
    assert calls == [False, True, False]  # unfinished work resumes even when forced
    (store.folder("filter", "k1") / "out.txt").unlink()  # an output went missing
    assert store.run(StepPlan(), "filter", "k1", compute)[1] == "ran"
    with pytest.raises(StepError, match="--only report: step 'filter' has no cached output"):
        store.run(StepPlan(only="report"), "filter", "k2", compute)


def counting_compute(calls: list, text: str = "payload"):
    def compute(folder, fresh):
        calls.append(fresh)
        write_text(text, folder / "out.txt")
        return {"files": ["out.txt"], "rows": 1}

    return compute


def test_a_changed_cached_file_is_recomputed_not_served(tmp_path, caplog):
    store, calls = StepStore(tmp_path / "store"), []
    compute = counting_compute(calls)
    store.run(StepPlan(), "generate", "k", compute)
    stored = store.folder("generate", "k") / "out.txt"
    assert not stored.stat().st_mode & 0o222  # read-only in the store

    linked = link_into(stored, tmp_path / "run" / "out.txt")
    os.utime(linked)  # touched, same content: still reused, without recomputing
    assert store.run(StepPlan(), "generate", "k", compute)[1] == "reused" and len(calls) == 1

    linked.chmod(0o644)  # a tool rewrites the run directory's file in place (a hard link)
    with open(linked, "r+") as fh:
        fh.write("PAY")
    assert stored.read_text() == "PAYload"
    with caplog.at_level("WARNING", logger="sublearn"):
        record, status = store.run(StepPlan(), "generate", "k", compute)
    assert status == "ran" and len(calls) == 2 and stored.read_text() == "payload"
    assert "step generate: cached out.txt changed since it was recorded; recomputing" in (
        caplog.text
    )

    with open(stored, "r+b") as fh:  # truncated, same modification time
        fh.truncate(3)
    assert store.run(StepPlan(), "generate", "k", compute)[1] == "ran" and len(calls) == 3


def test_two_runs_of_one_step_compute_it_once(tmp_path):
    """The second run waits for the first one's lock, then reuses its output."""
    store, calls = StepStore(tmp_path), []
    started = threading.Event()
    inner = counting_compute(calls)

    def slow(folder, fresh):
        started.set()
        time.sleep(0.5)
        return inner(folder, fresh)

    results = []
    first = threading.Thread(target=lambda: results.append(store.run(StepPlan(), "g", "k", slow)))
    first.start()
    started.wait(5)
    second = store.run(StepPlan(), "g", "k", slow)
    first.join()
    assert len(calls) == 1 and results[0][1] == "ran" and second[1] == "reused"


def test_code_keys_cover_the_helpers_a_step_imports():
    closure = code_closure(["sublearn.generators.hf_teacher"])
    assert {
        "sublearn.generators.teacher",
        "sublearn.core.model_source",
        "sublearn.core.precision",
    } <= set(closure)
    assert "sublearn.flows.dataset" not in closure
    assert "sublearn.generators.trait_prompt" in code_closure(["sublearn.flows.dataset"])


def test_truncated_run_outputs_are_rebuilt_and_the_lineage_hashes_the_real_data(
    prefect_server, config
):
    from sublearn.core.model_source import file_sha256
    from sublearn.flows.dataset import dataset_flow

    first = dataset_flow(config)
    run_dir = config.run_dir()
    kept_sha = file_sha256(run_dir / "kept.parquet")
    for name in ("raw.parquet", "kept.parquet"):
        (run_dir / name).chmod(0o644)
        with open(run_dir / name, "r+b") as fh:
            fh.truncate(100)
    again = dataset_flow(config)
    assert statuses(again) == {"prompts": "reused", "generate": "ran", "filter": "ran"}
    generate = next(e for e in again["steps"] if e["step"] == "generate")
    assert generate["batches_generated"] == 0  # rebuilt from the finished shards
    assert file_sha256(run_dir / "kept.parquet") == kept_sha
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert lineage["data_sha256"] == kept_sha
    assert verdicts(again["stats"]) == verdicts(first["stats"])


def test_every_step_declares_its_name_inputs_and_real_code():
    """Each cached step is one declaration (name, inputs, code, compute) whose code names
    modules that exist, and whose key follows its inputs and nothing else."""
    from sublearn.flows import dataset, evaluation, paired, students

    declared = {cls.name: cls for cls in Step.__subclasses__()}
    assert set(declared) == {"prompts", "generate", "filter", "rescore", "finetune", "evaluate"}
    assert {dataset, evaluation, paired, students}  # imported: their steps registered above
    for cls in declared.values():
        assert cls.name in STEPS and dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen

    config = parse_config({"name": "x", "dataset": {"n_prompts": 8}})
    step = dataset.PromptsStep(config)
    assert all(importlib.util.find_spec(m) for m in step.modules())
    json.dumps(step.inputs())
    kept = parse_config({"name": "x", "dataset": {"n_prompts": 8, "n_keep": 3}})
    assert dataset.PromptsStep(kept).key() == step.key()  # n_keep decides what is kept only
    other = dataset.PromptsStep(parse_config({"name": "x", "dataset": {"n_prompts": 9}}))
    assert other.key() != step.key()


def test_across_file_systems_the_run_copies_and_says_so_once(tmp_path, caplog):
    import tempfile

    other = Path(tempfile.mkdtemp(dir="/dev/shm")) if Path("/dev/shm").is_dir() else None
    if other is None or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system here (/dev/shm)")
    store = StepStore(tmp_path / "store")
    store.run(StepPlan(), "generate", "k", counting_compute([]))
    stored = store.folder("generate", "k") / "out.txt"
    try:
        with caplog.at_level("WARNING", logger="sublearn"):
            first = link_into(stored, other / "run" / "out.txt")
            second = link_into(stored, other / "run" / "again.txt")
        assert first.read_text() == second.read_text() == stored.read_text()
        assert not os.path.samefile(first, stored)  # a copy
        assert caplog.text.count("cannot hard-link the step store's files here") == 1
    finally:
        shutil.rmtree(other)


def test_a_worker_that_sees_another_store_fails_in_one_line(tmp_path):
    """The store's id is drawn once; a shard sent to a process (a Ray worker on another node)
    that sees no store, or another one, at the run's path stops before it computes anything."""
    from sublearn.core.steps import StepError, StepStore
    from sublearn.flows.dataset import generate_shard

    shared = StepStore(tmp_path / "shared" / ".steps")
    identity = shared.identity()
    assert shared.identity() == identity and len(identity) == 32
    shared.check_identity(identity)
    local = StepStore(tmp_path / "node-local" / ".steps")
    with pytest.raises(StepError, match="sees no step store here, not the run's"):
        local.check_identity(identity)
    local.identity()
    shard_dir = local.root / "generate" / "k" / "shards"
    with pytest.raises(StepError, match="sees another step store .* every node shares"):
        generate_shard.fn(None, tmp_path / "none.parquet", [], 0, 0, shard_dir, 0, identity)
