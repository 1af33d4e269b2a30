"""Publishing a run directory to the Hub as a Prefect task, retried on transient failures."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from sublearn.core.config import Publish
from sublearn.core.runio import read_parquet, write_json

PUBLISHED = "published.json"
DATASET_PUBLISHED = "sublearn.dataset.published"


def _transient(task, task_run, state) -> bool:
    """Retry only what waiting can fix: rate limits and server errors, not auth or bad ids."""
    from sublearn.core.hub import HubError

    try:
        state.result()
    except HubError as err:
        return err.transient
    except Exception:
        return False
    return False


HUB_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 8, 30], "retry_condition_fn": _transient}


@task(cache_policy=NO_CACHE, **HUB_RETRIES)
def read_published(repo_id: str, revision: str):
    """A published dataset at a revision, retried like publishing on 408/429/5xx."""
    from sublearn.core.hub import fetch_dataset

    return fetch_dataset(repo_id, revision)


@task(cache_policy=NO_CACHE, **HUB_RETRIES)
def publish_dataset(run_dir: Path, spec: Publish) -> dict:
    """One commit with data, card, lineage and config, tagged; then read back by that tag,
    as the next step (a student, another team) will, and checked row for row."""
    from sublearn.core.hub import HubError, fetch_dataset, publish_run

    published = publish_run(run_dir, spec.repo_id, spec.tag, spec.private, spec.include_rejected)
    back = fetch_dataset(published.repo_id, published.tag)
    if not back.data.equals(read_parquet(Path(run_dir) / "kept.parquet")):
        raise HubError(f"{spec.repo_id}@{published.tag}: rows read back differ from the run")
    record = {
        "repo_id": published.repo_id,
        "commit": published.commit,
        "tag": published.tag,
        "created": published.created,
        "rows": back.data.height,
    }
    write_json(record, Path(run_dir) / PUBLISHED)
    announce(record)
    verb = "published" if published.created else "already published, unchanged:"
    get_run_logger().info("%s %s@%s (%s)", verb, published.repo_id, published.tag, published.commit)
    return record


def announce(record: dict) -> None:
    """The ``sublearn.dataset.published`` event: a deployment trigger starts the students."""
    emit_event(
        event=DATASET_PUBLISHED,
        resource={
            "prefect.resource.id": f"hf.dataset.{record['repo_id']}",
            "hf.repo_id": record["repo_id"],
            "hf.revision": record["tag"],
            "hf.commit": record["commit"],
        },
        payload={"rows": record["rows"], "created": record["created"]},
    )


@flow(name="publish-dataset")
def publish_flow(run_dir: Path, spec: Publish) -> dict:
    return publish_dataset(run_dir, spec)
