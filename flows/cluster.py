"""Heavy steps on a Ray cluster (``scale_out.runner: ray``): trait teachers, students and
evaluations go out as Prefect tasks through prefect-ray's task runner, each with its kind's
resource request (``scale_out.trait_teacher``/``finetune``/``evaluate``), every independent step
of a phase at once; Ray's scheduler places them on the nodes. The step store stays the single
truth: the driver reuses what it holds, and a task checks it sees the same store before it
computes, so a node with another file system at that path fails in one line instead of
filling a second store. Without Ray the same steps run one after another in this process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from sublearn.core.config import ExperimentConfig, ScaleOut
from sublearn.core.config import Teacher as TeacherConfig
from sublearn.core.output import QUIET_ENV
from sublearn.core.steps import Step, StepPlan, step_store
from sublearn.flows.board import StepsBoard
from sublearn.flows.summary import finish_step, node_name, on_node, run_step


@dataclass(frozen=True)
class Job:
    """One step to run or reuse: where its store is, its label in the run summary, and the
    folder its files are linked into."""

    step: Step
    output_dir: Path
    label: str
    link_to: Path | None = None


# What Ray workers must see as the driver does: its Prefect server (several temporary servers
# at once fight over SQLite), its model and adapter cache (a worker with a cache of its own
# would convert and train them again, or use adapters of another run) and its quiet output.
DRIVER_ENV = ("PREFECT_API_URL", "SUBLEARN_CACHE", *QUIET_ENV)


def ray_init_kwargs() -> dict:
    """Ray workers report their task runs to this run's Prefect server (with no
    ``PREFECT_API_URL``, the temporary one this process started: reachable from nodes on this
    host), read this run's ``SUBLEARN_CACHE`` and print no more than the driver does."""
    from prefect.settings import PREFECT_API_URL

    env = {name: os.environ[name] for name in DRIVER_ENV if os.environ.get(name)}
    server = PREFECT_API_URL.value() or temporary_server_url()
    if server:
        env["PREFECT_API_URL"] = server
    return {"include_dashboard": False, "runtime_env": {"env_vars": env}}


def temporary_server_url() -> str | None:
    """The API address of the temporary Prefect server this process runs, if it runs one."""
    from prefect.server.api.server import SubprocessASGIServer

    running = [s for s in SubprocessASGIServer._instances.values() if s.running]
    return running[0].api_url if running else None


@contextmanager
def cluster(scale: ScaleOut) -> Iterator[None]:
    """One Ray connection for the whole run, so every phase's task runner (and the generation
    shards') reuses it instead of starting a Ray instance of its own each time."""
    if scale.runner != "ray":
        yield
        return
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address=scale.ray_address, **ray_init_kwargs())
    try:
        yield
    finally:
        ray.shutdown()


def task_runner(scale: ScaleOut):
    from prefect_ray import RayTaskRunner

    return RayTaskRunner(address=scale.ray_address, init_kwargs=ray_init_kwargs())


@task(cache_policy=NO_CACHE, task_run_name="{label}")
def cluster_step(job: Job, plan: StepPlan, label: str, store_id: str) -> tuple[dict, str]:
    """Run one step on the node Ray chose, after checking the node sees the driver's store."""
    store = step_store(job.output_dir)
    store.check_identity(store_id)
    return store.run(plan, job.step.name, job.step.key(), on_node(job.step))


@flow(name="cluster-steps")
def cluster_flow(jobs: list[Job], plan: StepPlan, resources: list[dict]) -> list:
    """Every job at once, each with its resource request; waits for all of them (a failed
    step does not cancel the others, whose results the store keeps) and raises the first
    failure."""
    from prefect_ray.context import remote_options

    futures = []
    for job, request in zip(jobs, resources, strict=True):
        store_id = step_store(job.output_dir).identity()
        label = f"{job.step.name} {job.label}"
        with remote_options(**request):
            futures.append(cluster_step.submit(job, plan, label, store_id))
    wait(futures)
    return [future.result() for future in futures]


def run_logger():
    """The flow run's logger inside a run (the lines reach the Prefect UI), else ours."""
    from prefect.context import FlowRunContext

    return get_run_logger() if FlowRunContext.get() is not None else logging.getLogger("sublearn")


def resource_request(scale: ScaleOut, step: str) -> dict:
    """Ray's request for a step of this kind (``scale_out.finetune``/``evaluate``)."""
    kind = getattr(scale, step)
    return {"num_cpus": kind.cpus, "num_gpus": kind.gpus}


def run_steps(
    scale: ScaleOut, jobs: list[Job], plan: StepPlan, log: list[dict]
) -> list[tuple[dict, Path]]:
    """Run or reuse independent steps; returns each one's record and store folder, in order.
    Locally one after another; on Ray what the store lacks goes out at once, the rest is
    reused here."""
    if scale.runner != "ray":
        return [run_step(j.step, j.output_dir, plan, j.label, log, j.link_to) for j in jobs]
    keys = {id(j): j.step.key() for j in jobs}  # hashing a step's inputs and code: once
    remote = [j for j in jobs if not reusable(j, keys[id(j)], plan)]
    outcomes = {}
    if remote:
        requests = [resource_request(scale, j.step.name) for j in remote]
        runner = task_runner(scale)
        watched = [
            (f"{j.step.name} {j.label}", step_store(j.output_dir).folder(j.step.name, keys[id(j)]))
            for j in remote
        ]
        known = len(log) + len(jobs) - len(remote)  # every step logged or reused is done
        with StepsBoard(watched, known, known, run_logger()):
            results = cluster_flow.with_options(task_runner=runner)(remote, plan, requests)
        outcomes = {id(j): result for j, result in zip(remote, results, strict=True)}
    done = []
    for job in jobs:
        if id(job) in outcomes:
            record, status = outcomes[id(job)]
            folder = step_store(job.output_dir).folder(job.step.name, record["key"])
            finish_step(job.step, record, status, folder, job.label, log, job.link_to)
            done.append((record, folder))
        else:
            done.append(run_step(job.step, job.output_dir, plan, job.label, log, job.link_to))
    return done


def reusable(job: Job, key: str, plan: StepPlan) -> bool:
    """The store already holds this step (under ``key``) and the plan does not force it."""
    if plan.forced(job.step.name):
        return False
    return step_store(job.output_dir).record(job.step.name, key) is not None


@task(cache_policy=NO_CACHE, task_run_name="trait-teacher {target}")
def cluster_trait_adapter(teacher_cfg: TeacherConfig, target: str) -> dict:
    from sublearn.generators.trait_teacher import ensure_trait_adapter

    started = time.perf_counter()
    adapter = ensure_trait_adapter(teacher_cfg)
    seconds = round(time.perf_counter() - started, 2)
    return {"target": target, "adapter": str(adapter), "node": node_name(), "seconds": seconds}


@flow(name="trait-teachers")
def trait_teachers_flow(teachers: list[TeacherConfig], cpus: float, gpus: float) -> list[dict]:
    from prefect_ray.context import remote_options

    with remote_options(num_cpus=cpus, num_gpus=gpus):
        futures = [cluster_trait_adapter.submit(t, t.trait_finetune.target) for t in teachers]
    wait(futures)
    return [future.result() for future in futures]


def train_trait_teachers(config: ExperimentConfig) -> list[dict]:
    """On Ray, every arm's trait teacher that is not cached yet, at once, before the arms'
    datasets need them (their generation then finds them in ``SUBLEARN_CACHE``)."""
    from sublearn.generators.trait_teacher import cached_trait_adapter, trait_adapter_dir

    scale = config.scale_out
    if scale.runner != "ray":
        return []
    teachers = {}
    for arm in config.arms().values():
        teacher = arm.teacher
        if teacher.trait_finetune and cached_trait_adapter(teacher) is None:
            teachers[str(trait_adapter_dir(teacher))] = teacher
    if not teachers:
        return []
    flow_ = trait_teachers_flow.with_options(task_runner=task_runner(scale))
    return flow_(list(teachers.values()), scale.trait_teacher.cpus, scale.trait_teacher.gpus)
