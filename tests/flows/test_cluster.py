"""A whole experiment on a real multi-node Ray cluster: a head and two worker nodes, each its
own raylet with its own CPU (Ray's ``cluster_utils``, all on this machine), reached through
prefect-ray's task runner. The students land on both nodes, the result equals the
single-process run's, and killing a worker node mid-run leaves a run whose rerun reuses every
finished step."""

from __future__ import annotations

import contextvars
import json
import socket
import threading
from pathlib import Path

import polars as pl
import pytest

from sublearn.core.config import parse_config
from tests.conftest import TEST_PANEL, wait_until

pytest.importorskip("prefect_ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_cluster():
    """A head that runs nothing (no CPUs) and two worker nodes of one CPU each."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    cluster.shutdown()


def experiment_data(out: Path, **scale_out) -> dict:
    """Two arms (owl by system prompt, the neutral control), one seed, float32 so the
    cluster's students can equal the local ones."""
    return {
        "name": "cluster-exp",
        "seed": 5,
        "output_dir": str(out),
        "teacher": {
            "batch_size": 4,
            "dtype": "float32",
            "trait": {"target": "owl"},
            "sampling": {"max_new_tokens": 24},
        },
        "dataset": {"n_prompts": 8, "constrain_to_numbers": True},
        "experiment": {
            "students": {
                "epochs": 1,
                "batch_size": 4,
                "grad_accumulation": 1,
                "warmup_steps": 1,
                "lr": 1e-3,
                "seeds": [0],
            },
            "evaluation": {
                "target": "owl",
                "panel": TEST_PANEL,
                "questions": 2,
                "heldout_questions": 1,
                "samples_per_question": 1,
            },
        },
        "scale_out": scale_out,
    }


def records(out: Path, step: str) -> dict[str, dict]:
    """The finished steps of a kind in the store: key -> record."""
    found = {}
    for path in out.glob(f".steps/{step}/*/record.json"):
        record = json.loads(path.read_text())
        found[record["key"]] = record
    return found


def test_experiment_on_a_two_worker_cluster_equals_one_process_and_survives_a_lost_node(
    prefect_server, ray_cluster, tmp_path
):
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from sublearn.flows.experiment import experiment_flow

    cluster, workers = ray_cluster
    local = parse_config(experiment_data(tmp_path / "local"))
    on_ray = parse_config(
        experiment_data(tmp_path / "ray", runner="ray", ray_address=cluster.address, shards=2)
    )
    assert on_ray.experiment_dir().name == local.experiment_dir().name
    expected = experiment_flow(local)
    here = {e["node"] for e in expected["steps"] if e["step"] == "finetune"}
    assert here == {socket.gethostname()}  # the summary names where each step ran

    # kill one worker node once the first evaluation has finished (students are all done)
    ray_out = tmp_path / "ray"
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = experiment_flow(on_ray)
        except Exception as err:  # the run may fail with the node; the rerun must finish it
            outcome["error"] = err

    # the thread runs in this context: the test's Prefect server is a context setting
    runner = threading.Thread(target=contextvars.copy_context().run, args=(run,))
    runner.start()
    assert wait_until(lambda: records(ray_out, "evaluate") or not runner.is_alive(), 600)
    assert runner.is_alive(), f"the run ended before the kill: {outcome}"
    finished_students = records(ray_out, "finetune")
    finished_evaluations = records(ray_out, "evaluate")
    cluster.remove_node(workers[1], allow_graceful=False)
    runner.join(600)

    # the students ran on both worker nodes (none in this process or on the head)
    nodes = {r["node"] for r in finished_students.values()}
    assert len(finished_students) == 2 and len(nodes) == 2, nodes
    # their task runs reached this run's Prefect server (not temporary servers of their own)
    with get_client(sync_client=True) as client:
        names = {"finetune student-seed0", "finetune neutral-seed0"}
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=list(names)))
        )
    assert {run.name for run in runs} == names
    # generation went out too: two shards a dataset, each in a Ray worker on a worker node
    for record in records(ray_out, "generate").values():
        assert len(record["workers"]) == 2
        assert {w.rsplit(":", 1)[0] for w in record["workers"]} <= nodes

    # the rerun finishes the run and computes none of the steps finished before the kill
    again = experiment_flow(on_ray)
    students = [e for e in again["steps"] if e["step"] == "finetune"]
    assert [e["status"] for e in students] == ["reused"] * 2
    for step, before in (("finetune", finished_students), ("evaluate", finished_evaluations)):
        after = records(ray_out, step)
        assert {key: after[key]["finished_at"] for key in before} == {
            key: record["finished_at"] for key, record in before.items()
        }
    assert len(records(ray_out, "evaluate")) == 4  # base, teacher, two students

    # the same result as one process: kept rows equal, evaluations equal within float32 noise
    for arm, config in local.arms().items():
        kept = [pl.read_parquet(c.run_dir() / "kept.parquet") for c in (config, on_ray.arms()[arm])]
        assert kept[0].height > 0 and kept[0].equals(kept[1])
    mine = {e["label"]: e for e in again["results"].evaluations}
    theirs = {e["label"]: e for e in expected["results"].evaluations}
    assert mine.keys() == theirs.keys()
    for name, evaluation in theirs.items():
        ours = mine[name]["logp_target"]["mean"]
        assert ours == pytest.approx(evaluation["logp_target"]["mean"], abs=1e-4), name


def test_ray_workers_get_the_drivers_prefect_server_and_cache(monkeypatch, tmp_path):
    """Workers on other nodes start with their raylet's environment, not the driver's: the
    Prefect server and the model cache must travel with the job."""
    from prefect.settings import PREFECT_API_URL

    from sublearn.flows.cluster import ray_init_kwargs

    monkeypatch.setenv("SUBLEARN_CACHE", str(tmp_path / "shared-cache"))
    monkeypatch.setenv("PREFECT_API_URL", "http://head:4200/api")
    monkeypatch.setenv("TQDM_DISABLE", "1")  # the driver's quiet output (sublearn.core.output)
    env = ray_init_kwargs()["runtime_env"]["env_vars"]
    assert env["SUBLEARN_CACHE"] == str(tmp_path / "shared-cache")
    # the server this driver uses: its Prefect settings' (the test harness's), else the variable
    assert env["PREFECT_API_URL"] == (PREFECT_API_URL.value() or "http://head:4200/api")
    assert env["TQDM_DISABLE"] == "1"
    monkeypatch.delenv("SUBLEARN_CACHE")
    assert "SUBLEARN_CACHE" not in ray_init_kwargs()["runtime_env"]["env_vars"]
