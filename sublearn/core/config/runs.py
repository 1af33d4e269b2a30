"""Where a run's work happens and where its results go: scale-out, schedule, Hub."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, ValidationError, model_validator

from sublearn.core.config.base import Frozen


class StepResources(Frozen):
    """What one step of a kind asks the Ray cluster for (Ray's ``num_cpus``/``num_gpus``)."""

    cpus: Annotated[float, Field(ge=0)] = 1
    gpus: Annotated[float, Field(ge=0)] = 0


class ScaleOut(Frozen):
    """Where the heavy steps run: in this process, or as Prefect tasks on a Ray cluster
    (``prefect-ray``'s ``RayTaskRunner``): trait teachers, generation shards, students and
    evaluations, each with its resource request, independent ones at once. ``gpus_per_shard``
    pins each generation shard to its own GPUs (data parallelism across a node or a cluster).
    On a cluster the output directory (its step store) and ``SUBLEARN_CACHE`` must lie on a
    path every node shares."""

    runner: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(
        None, description="ray://HEAD:10001, HEAD:6379 or auto; none starts a local Ray instance."
    )
    shards: Annotated[StrictInt, Field(ge=1)] = 1
    gpus_per_shard: Annotated[float, Field(ge=0)] = 0
    trait_teacher: StepResources = StepResources()
    finetune: StepResources = StepResources()
    evaluate: StepResources = StepResources()


class Schedule(Frozen):
    """When a deployment of this config produces its dataset (Prefect cron schedule)."""

    cron: Annotated[str, Field(min_length=9)]
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=self.cron, timezone=self.timezone)
        except ValidationError as err:
            raise ValueError(err.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self


class Publish(Frozen):
    """Where the dataset goes on the Hub (``HF_ENDPOINT`` picks a self-hosted one)."""

    repo_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    private: bool = True
    tag: str | None = None
    include_rejected: bool = False
