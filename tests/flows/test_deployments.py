"""Deployments, schedules and event chaining against the session's real Prefect server:
what ``prefect.yaml`` and ``sublearn serve`` would create (without waiting for a tick),
``prefect deploy --all`` itself, the published-dataset trigger, and one served deployment run
end to end on the embedded model."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from sublearn.flows.deployments import deployment_specs, prefect_yaml, runner_deployments

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ["examples/owl-numbers-dataset.yaml", "examples/owl-numbers-nightly.yaml"]
SERVED_PROMPTS = 4


def test_deployments_follow_the_configs():
    specs = {(s["flow_name"], s["name"]): s for p in PRODUCTION for s in deployment_specs(p)}
    assert set(specs) == {
        ("sublearn-run", "owl-numbers-dataset"),
        ("sublearn-generate", "owl-numbers-dataset"),
        ("sublearn-filter", "owl-numbers-dataset"),
        ("sublearn-run", "owl-numbers-nightly"),
        ("sublearn-generate", "owl-numbers-nightly"),
        ("sublearn-filter", "owl-numbers-nightly"),
        ("sublearn-publish", "owl-numbers-nightly"),
        ("sublearn-finetune", "owl-numbers-nightly"),
        ("sublearn-evaluate", "owl-numbers-nightly"),
    }
    nightly = specs[("sublearn-run", "owl-numbers-nightly")]
    assert nightly["schedules"] == [{"cron": "0 2 * * *", "timezone": "Europe/London"}]
    assert nightly["parameters"] == {
        "config": "examples/owl-numbers-nightly.yaml",
        "stop": "publish",
    }
    finetune = specs[("sublearn-finetune", "owl-numbers-nightly")]["triggers"][0]
    assert finetune["expect"] == ["sublearn.dataset.published"]
    assert finetune["match"] == {"prefect.resource.id": "hf.dataset.sublearn-demo/owl-numbers"}

    served = {(d.flow_name, d.name): d for d in runner_deployments(PRODUCTION)}
    schedule = served[("sublearn-run", "owl-numbers-dataset")].schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "UTC")
    assert served[("sublearn-evaluate", "owl-numbers-nightly")].triggers[0].expect == {
        "sublearn.student.trained"
    }
    trial = runner_deployments(PRODUCTION[:1], cron="* * * * *")[0]
    assert trial.schedules[0].schedule.cron == "* * * * *"


def test_overrides_reach_every_deployment_and_trigger():
    """A scheduled variant is the file plus ``--set``: its deployments carry the overrides as
    a parameter, the triggered ones too, and take the variant's name."""
    sets = ["name=owl-numbers-30k", "dataset.n_prompts=30000"]
    specs = deployment_specs(PRODUCTION[1], sets)
    assert {s["name"] for s in specs} == {"owl-numbers-30k"}
    for spec in specs:
        assert spec["parameters"]["overrides"] == sets
        for trigger in spec.get("triggers", []):
            assert trigger["parameters"]["overrides"] == sets
    assert "overrides" not in deployment_specs(PRODUCTION[1])[0]["parameters"]
    exported = prefect_yaml(PRODUCTION[:1], sets)["deployments"]
    assert all(d["parameters"]["overrides"] == sets for d in exported)


def test_prefect_yaml_is_the_export_of_the_production_configs():
    committed = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert committed["deployments"] == prefect_yaml(PRODUCTION)["deployments"]


def test_schedule_list_shows_next_runs(run_cli):
    proc = run_cli(["schedule", "list", *PRODUCTION], COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    assert "0 2 * * * (Europe/London)" in proc.stdout
    assert "sublearn.dataset.published" in proc.stdout


def test_prefect_deploy_all_and_the_published_trigger(cli_env, tmp_path):
    """``prefect deploy --all`` reads prefect.yaml; publishing's event starts the students."""
    from prefect.client.orchestration import get_client

    from sublearn.flows.publish import announce

    for command in (
        ["prefect", "work-pool", "create", "sublearn-process", "--type", "process"],
        ["prefect", "--no-prompt", "deploy", "--all"],
    ):
        proc = subprocess.run(command, cwd=ROOT, env=cli_env, capture_output=True, text=True)
        assert proc.returncode == 0 or "already exists" in proc.stdout, proc.stdout[-2000:]
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("sublearn-run/owl-numbers-nightly")
        finetune = client.read_deployment_by_name("sublearn-finetune/owl-numbers-nightly")
        evaluate = client.read_deployment_by_name("sublearn-evaluate/owl-numbers-nightly")
    assert nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert nightly.schedules[0].schedule.timezone == "Europe/London"
    assert nightly.work_pool_name == "sublearn-process"

    announce(
        {
            "repo_id": "sublearn-demo/owl-numbers",
            "tag": "run-test",
            "commit": "c0ffee",
            "rows": 3,
            "created": True,
        }
    )
    runs = triggered_runs(finetune.id)
    assert runs, "the published event did not trigger the finetune deployment"
    assert runs[0].parameters == {
        "config": "examples/owl-numbers-nightly.yaml",
        "dataset": "sublearn-demo/owl-numbers@run-test",
    }

    from prefect.events import emit_event

    from sublearn.flows.students import STUDENT_TRAINED

    emit_event(
        event=STUDENT_TRAINED,
        resource={"prefect.resource.id": "sublearn.student.owl-numbers-nightly.student-seed0"},
        payload={"student": "student-seed0"},
    )
    runs = triggered_runs(evaluate.id)
    assert runs, "the trained event did not trigger the evaluate deployment"
    assert runs[0].parameters == {
        "config": "examples/owl-numbers-nightly.yaml",
        "student": "student-seed0",
    }


def triggered_runs(deployment_id) -> list:
    """Flow runs of a deployment, waiting up to 90 s for the trigger to fire."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
        if runs:
            return runs
        time.sleep(1)
    return []


@pytest.fixture()
def served(spawn_cli, tiny_config_data, tmp_path):
    """``sublearn serve`` on a variant of a tiny config (``--set``: another name and fewer
    prompts), in its own process, until the test ends."""
    config = tmp_path / "served.yaml"
    data = {**tiny_config_data, "name": "tiny", "output_dir": str(tmp_path / "runs")}
    config.write_text(yaml.safe_dump(data))
    variant = ["--set", "name=served-owl", "--set", f"dataset.n_prompts={SERVED_PROMPTS}"]
    proc = spawn_cli(
        ["serve", str(config), *variant], tmp_path / "serve.log", PREFECT_RUNNER_POLL_FREQUENCY="1"
    )
    yield config, tmp_path / "runs"
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_served_deployment_runs_end_to_end(prefect_server, served):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    config, runs = served
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name("sublearn-run/served-owl")
                break
            except Exception:
                time.sleep(1)
    flow_run = run_deployment("sublearn-run/served-owl", timeout=600)
    assert flow_run.state.is_completed(), flow_run.state
    run_dir = next(p for p in runs.iterdir() if not p.name.startswith("."))
    assert run_dir.name.startswith("served-owl-")  # the variant's name and hash
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["total"] == SERVED_PROMPTS < tiny_total(config)
    steps = json.loads((run_dir / "steps.json").read_text())
    assert [e["step"] for e in steps] == ["prompts", "generate", "filter"]


def tiny_total(config: Path) -> int:
    return yaml.safe_load(config.read_text())["dataset"]["n_prompts"]
