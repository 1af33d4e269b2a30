"""Deployable flows and the deployments a config asks for.

Deployment parameters must be JSON, so these flows take a config *path* and load it in the
flow run. One function, ``deployment_specs``, decides every deployment of a config (name,
entry point, parameters, cron schedule, event triggers); ``sublearn serve`` turns the specs into
Prefect ``RunnerDeployment`` objects and serves them, and ``sublearn schedule export`` writes
the same specs as ``prefect.yaml`` for ``prefect deploy --all`` and a process worker.

Chaining: publishing emits ``sublearn.dataset.published`` and the finetune deployment is
triggered by it; finetuning emits ``sublearn.student.trained`` and evaluation follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sublearn.core.config import ConfigError, ExperimentConfig, load_config
from sublearn.core.errors import UserError
from sublearn.core.steps import StepPlan

WORK_POOL = "sublearn-process"
ENTRY = "flows/deployments.py"


def run_plan(config: str, plan: StepPlan, overrides: list[str] | None = None) -> dict:
    """Load the config (with its ``--set`` overrides) and run it under ``plan`` as
    ``sublearn run`` does (a grid's every cell included); the result without bulky
    evaluation data."""
    from sublearn.flows.dispatch import run_config_under

    outcome = run_config_under(load_config(config, overrides or ()), plan)
    return {k: v for k, v in outcome.items() if k != "results"}


@flow(name="sublearn-run")
def run_config(
    config: str,
    only: str | None = None,
    start: str | None = None,
    force: list[str] | None = None,
    stop: str | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """The whole config (dataset production, or the full experiment), reusing cached steps;
    ``stop="publish"`` produces the datasets only and leaves the students to the triggers."""
    plan = StepPlan(only=only, start=start, force=frozenset(force or ()), stop=stop)
    return run_plan(config, plan, overrides)


@flow(name="sublearn-generate")
def generate_step_flow(config: str, overrides: list[str] | None = None) -> dict:
    return run_plan(config, StepPlan(only="generate"), overrides)


@flow(name="sublearn-filter")
def filter_step_flow(config: str, overrides: list[str] | None = None) -> dict:
    return run_plan(config, StepPlan(only="filter"), overrides)


@flow(name="sublearn-publish")
def publish_step_flow(config: str, overrides: list[str] | None = None) -> dict:
    return run_plan(config, StepPlan(only="publish"), overrides)


@flow(name="sublearn-finetune")
def finetune_step_flow(
    config: str, dataset: str | None = None, overrides: list[str] | None = None
) -> dict:
    """Students on the config's published datasets; ``dataset`` is the event's repo@revision,
    checked against the config so a trigger never trains on someone else's data."""
    cfg = load_config(config, overrides or ())
    if dataset and cfg.publish and dataset.partition("@")[0] != cfg.publish.repo_id:
        raise ConfigError(f"dataset: {dataset} is not this config's ({cfg.publish.repo_id})")
    return run_plan(config, StepPlan(only="finetune"), overrides)


@flow(name="sublearn-evaluate")
def evaluate_step_flow(
    config: str, student: str | None = None, overrides: list[str] | None = None
) -> dict:
    """Evaluate the models and write the report (after new students were trained)."""
    return run_plan(config, StepPlan(start="evaluate"), overrides)


FLOWS = {
    "run": run_config,
    "generate": generate_step_flow,
    "filter": filter_step_flow,
    "publish": publish_step_flow,
    "finetune": finetune_step_flow,
    "evaluate": evaluate_step_flow,
}


def deployment_specs(config_path: str | Path, overrides: Sequence[str] = ()) -> list[dict]:
    """Every deployment of one config, as plain data (the form ``prefect.yaml`` takes);
    ``overrides`` (``--set`` strings) are validated now and passed to every flow run, triggered
    ones included, so a variant's deployments all run the variant."""
    path = str(config_path)
    cfg: ExperimentConfig = load_config(path, overrides)
    base = {"config": path} | ({"overrides": list(overrides)} if overrides else {})
    specs = []
    for kind, fn in FLOWS.items():
        if kind in ("finetune", "evaluate") and cfg.experiment is None:
            continue
        if kind == "publish" and cfg.publish is None:
            continue
        spec = {
            "name": cfg.name,
            "flow_name": fn.name,
            "entrypoint": f"{ENTRY}:{fn.fn.__name__}",
            "description": f"{kind} for {path}",
            "parameters": dict(base),
            "tags": ["sublearn", kind],
            "work_pool": {"name": WORK_POOL},
        }
        if kind == "run" and cfg.schedule is not None:
            spec["schedules"] = [{"cron": cfg.schedule.cron, "timezone": cfg.schedule.timezone}]
        if kind == "run" and cfg.experiment is not None and cfg.publish is not None:
            spec["parameters"]["stop"] = "publish"
            spec["description"] += " (datasets; students follow the published event)"
        if kind == "finetune" and cfg.publish is not None:
            spec["triggers"] = [published_trigger(cfg, base)]
        if kind == "evaluate":
            spec["triggers"] = [trained_trigger(cfg, base)]
        specs.append(spec)
    return specs


def event_trigger(event: str, resource_id: str, parameters: dict) -> dict:
    """A deployment trigger: run when ``event`` happens to a matching resource."""
    return {
        "type": "event",
        "enabled": True,
        "expect": [event],
        "match": {"prefect.resource.id": resource_id},
        "parameters": parameters,
    }


def published_trigger(cfg: ExperimentConfig, base: dict) -> dict:
    from sublearn.flows.publish import DATASET_PUBLISHED

    dataset = "{{ event.resource['hf.repo_id'] }}@{{ event.resource['hf.revision'] }}"
    resource = f"hf.dataset.{cfg.publish.repo_id}"
    return event_trigger(DATASET_PUBLISHED, resource, base | {"dataset": dataset})


def trained_trigger(cfg: ExperimentConfig, base: dict) -> dict:
    from sublearn.flows.students import STUDENT_TRAINED

    student = "{{ event.payload.student }}"
    resource = f"sublearn.student.{cfg.name}.*"
    return event_trigger(STUDENT_TRAINED, resource, base | {"student": student})


def runner_deployments(
    config_paths: list[str | Path], cron: str | None = None, overrides: Sequence[str] = ()
) -> list:
    """The specs as ``RunnerDeployment`` objects for ``serve`` (``cron`` overrides the
    configs' schedules, e.g. every minute for a trial; ``overrides`` every config's fields)."""
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    deployments = []
    for path in config_paths:
        for spec in deployment_specs(path, overrides):
            fn = next(f for f in FLOWS.values() if f.name == spec["flow_name"])
            schedules = spec.get("schedules", [])
            if cron and fn is run_config:
                timezone = schedules[0]["timezone"] if schedules else "UTC"
                schedules = [{"cron": cron, "timezone": timezone}]
            deployments.append(
                fn.to_deployment(
                    name=spec["name"],
                    schedules=[Cron(s["cron"], timezone=s["timezone"]) for s in schedules],
                    parameters=spec["parameters"],
                    description=spec["description"],
                    tags=spec["tags"],
                    triggers=[
                        DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"})
                        for t in spec.get("triggers", [])
                    ]
                    or None,
                )
            )
    return deployments


def prefect_yaml(config_paths: list[str | Path], overrides: Sequence[str] = ()) -> dict:
    """The ``prefect.yaml`` for these configs: run ``prefect deploy --all`` from the repo root."""
    from prefect import __version__

    deployments = []
    for path in config_paths:
        for spec in deployment_specs(path, overrides):
            entry = {k: v for k, v in spec.items() if k != "flow_name"}
            deployments.append(entry)
    return {
        "name": "sublearn",
        "prefect-version": __version__,
        "build": None,
        "push": None,
        "deployments": deployments,
    }


class _Schedule(BaseModel):
    cron: str
    timezone: str = "UTC"


class _Trigger(BaseModel):
    expect: list[str]


class _Deployment(BaseModel):
    """What ``schedule list`` reads of a deployment in prefect.yaml (the rest is Prefect's)."""

    model_config = ConfigDict(extra="allow")
    name: str
    tags: list[str] = Field(min_length=1)
    schedules: list[_Schedule] | None = None
    triggers: list[_Trigger] | None = None

    @field_validator("tags")
    @classmethod
    def _names_a_step(cls, tags: list[str]) -> list[str]:
        if tags[-1] not in FLOWS:
            raise ValueError(f"the last tag names the step ({', '.join(FLOWS)}), not {tags[-1]!r}")
        return tags


def read_prefect_yaml(path: Path) -> list[dict]:
    """The deployments of a prefect.yaml, checked for what sublearn reads of them: a malformed
    file is one line naming the file and the field."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("deployments", []), list):
        raise ConfigError(f"{path}: expected a mapping with a 'deployments' list")
    specs = []
    for i, spec in enumerate(document.get("deployments") or []):
        try:
            specs.append(_Deployment.model_validate(spec).model_dump(exclude_none=True))
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            at = f"deployments[{i}]" + (f".{field}" if field else "")
            raise ConfigError(f"{path}: {at}: {first['msg']}") from None
    return specs


def config_schedules(specs: list[dict], runs: int) -> list[tuple[str, ...]]:
    """Next runs computed from the cron schedules of deployment specs."""
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    rows = []
    for spec in specs:
        schedule, upcoming = "", ""
        for s in spec.get("schedules") or []:
            try:
                cron_schedule = CronSchedule(cron=s["cron"], timezone=s["timezone"])
            except ValueError as err:
                reason = str(err).splitlines()[-1]
                raise ConfigError(
                    f"deployment {spec['name']}: schedule {s['cron']!r}: {reason}"
                ) from None
            dates = asyncio.run(cron_schedule.get_dates(runs))
            schedule = f"{s['cron']} ({s['timezone']})"
            upcoming = "\n".join(d.strftime("%Y-%m-%d %H:%M %Z") for d in dates)
        triggers = ", ".join(e for t in spec.get("triggers") or [] for e in t["expect"])
        rows.append(
            (f"{FLOWS[spec['tags'][-1]].name}/{spec['name']}", schedule, upcoming, triggers)
        )
    return rows


def server_schedules(runs: int) -> list[tuple[str, ...]]:
    """The deployments tagged sublearn on the server, with their scheduled flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        DeploymentFilterTags,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    rows = []
    try:
        with get_client(sync_client=True) as client:
            deployments = client.read_deployments(
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["sublearn"]))
            )
            flows = {f.id: f.name for f in client.read_flows()}
            expected = {
                getattr(action, "deployment_id", None): ", ".join(a.trigger.expect or ())
                for a in client.read_automations()
                for action in a.actions
            }
            for d in sorted(deployments, key=lambda d: (d.name, flows.get(d.flow_id, ""))):
                scheduled = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                        )
                    ),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=runs,
                )
                schedule = ", ".join(
                    f"{s.schedule.cron} ({s.schedule.timezone})"
                    for s in d.schedules
                    if getattr(s.schedule, "cron", None)
                )
                upcoming = "\n".join(
                    r.expected_start_time.strftime("%Y-%m-%d %H:%M %Z") for r in scheduled
                )
                name = f"{flows.get(d.flow_id, '?')}/{d.name}"
                rows.append((name, schedule, upcoming, expected.get(d.id, "")))
    except Exception as err:  # no server, unreachable: one line
        raise UserError(
            f"PREFECT_API_URL: cannot list deployments ({type(err).__name__}: {err})"
        ) from None
    return rows
