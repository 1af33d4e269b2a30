"""Publishing run directories to a Hugging Face Hub and reading them back, by revision.

The token comes from ``HF_TOKEN`` or the huggingface credential file (huggingface_hub reads
both); ``HF_ENDPOINT`` picks a self-hosted hub. Data, card, lineage and config go up in one
commit, so a failure leaves nothing half-published; the commit is then tagged.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sublearn.core.card import DATA_FILE, REJECTED_FILE, render_card
from sublearn.core.errors import DataError, UserError, printable
from sublearn.core.lineage import check_lineage, public_lineage, without_local_paths
from sublearn.core.runio import json_writer, read_parquet, write_outputs

LINEAGE_FILE = "lineage.json"
CONFIG_FILE = "config.yaml"
TRANSIENT = {408, 429, 500, 502, 503, 504}


class HubError(UserError, RuntimeError):
    """A Hub failure, phrased as one line that names the repo and what went wrong."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def explain(err: Exception, repo_id: str, action: str, revision: str | None = None) -> HubError:
    """Turn a huggingface_hub/HTTP error into one clear line (never including the token)."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cause = err.__cause__ if isinstance(err, ValueError) and err.__cause__ else err
    if isinstance(cause, RevisionNotFoundError):
        return HubError(f"{repo_id}: revision '{revision}' not found")
    status = getattr(getattr(cause, "response", None), "status_code", None)
    if isinstance(cause, RepositoryNotFoundError) or status == 404:
        return HubError(
            f"{repo_id}: dataset not found, or private and not readable with your token"
        )
    if status == 401:
        return HubError(f"{repo_id}: authentication failed (HF_TOKEN or stored token invalid)")
    if status == 403:
        return HubError(f"{repo_id}: your token may not {action} this repo (needs write access)")
    if status in TRANSIENT:
        return HubError(f"{repo_id}: hub busy or failing ({status}) during {action}", True)
    if "Timeout" in type(cause).__name__:
        return HubError(
            f"{repo_id}: the hub gave no answer within {hub_timeout_s():g} s during {action} "
            "(SUBLEARN_HUB_TIMEOUT_S)",
            True,
        )
    if isinstance(cause, HfHubHTTPError):
        return HubError(f"{repo_id}: hub error {status} during {action}")
    return HubError(f"{repo_id}: {action} failed ({type(cause).__name__}: {printable(cause)})")


@dataclass(frozen=True)
class Published:
    repo_id: str
    commit: str
    tag: str
    created: bool  # False when the same data was already there


def read_retry_delays_s() -> tuple[float, ...]:
    """Waits before each retry of a Hub read: 2, 8, 30 s as publishing's Prefect retries, or
    ``SUBLEARN_HUB_RETRY_DELAYS_S`` (comma-separated seconds; empty: no retries)."""
    import os

    given = os.environ.get("SUBLEARN_HUB_RETRY_DELAYS_S")
    if given is None:
        return (2.0, 8.0, 30.0)
    return tuple(float(s) for s in given.split(",") if s.strip())


def hub_timeout_s() -> float:
    """How long one Hub request may wait for an answer (``SUBLEARN_HUB_TIMEOUT_S``)."""
    import os

    return float(os.environ.get("SUBLEARN_HUB_TIMEOUT_S", "60"))


@functools.cache
def bounded_hub_requests() -> None:
    """huggingface_hub's HTTP client waits forever for an answer by default (and most of its
    calls pass ``timeout=None`` per request): a Hub that accepts connections and never answers
    hangs ``download`` silently. Every request without a bound gets one, as it is sent."""
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    seconds = hub_timeout_s()
    bound = httpx2.Timeout(seconds, connect=min(seconds, 10.0)).as_dict()

    def bounded(request: httpx2.Request) -> None:
        timeout = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            k: bound[k] if timeout.get(k) is None else timeout[k] for k in bound
        }

    def client() -> httpx2.Client:
        return httpx2.Client(
            event_hooks={"request": [hf_request_event_hook, bounded]},
            follow_redirects=True,
            timeout=httpx2.Timeout(seconds, connect=min(seconds, 10.0)),
        )

    set_client_factory(client)


def _api():
    from huggingface_hub import HfApi

    bounded_hub_requests()
    return HfApi()


def with_read_retries(read, *args, on_retry=None):
    """``read(*args)``, retried (``read_retry_delays_s``) where the Hub's failure is transient
    (408/429/5xx, a timeout), as publishing is; ``on_retry(error, delay)`` hears each wait."""
    import time

    for delay in (*read_retry_delays_s(), None):
        try:
            return read(*args)
        except HubError as err:
            if not err.transient or delay is None:
                raise
            if on_retry:
                on_retry(err, delay)
            time.sleep(delay)


def _remote_lineage(api, repo_id: str, revision: str) -> dict | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        path = hf_hub_download(repo_id, LINEAGE_FILE, repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RevisionNotFoundError):
        return None
    return _read_lineage(Path(path), f"{repo_id}@{revision}")


MAX_LINEAGE_BYTES = 1_000_000  # a sublearn lineage is a few KB


def _read_lineage(path: Path, where: str) -> dict:
    size = path.stat().st_size
    if size > MAX_LINEAGE_BYTES:
        raise HubError(
            f"{where}: {LINEAGE_FILE} is {size / 1e6:.1f} MB; a sublearn lineage is a few KB"
        )
    try:
        lineage = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise HubError(f"{where}: {LINEAGE_FILE} is not valid JSON") from None
    if not isinstance(lineage, dict):
        raise HubError(f"{where}: {LINEAGE_FILE} is not a JSON object")
    return lineage


def tag_for_hash(config_hash: str) -> str:
    """The tag a run is published under unless the config names one."""
    return f"run-{config_hash[:12]}"


def default_tag(config) -> str:
    return tag_for_hash(config.config_hash())


def publish_run(
    run_dir: Path,
    repo_id: str,
    tag: str | None = None,
    private: bool = True,
    include_rejected: bool = False,
) -> Published:
    """Push a run's kept rows with card, lineage and config as one commit, then tag it.
    Publishing the same data again changes nothing and says so."""
    from huggingface_hub import CommitOperationAdd

    run_dir = Path(run_dir)
    lineage_path = run_dir / LINEAGE_FILE
    if not lineage_path.is_file():
        raise HubError(f"{run_dir}: no {LINEAGE_FILE}; is this a finished sublearn run?")
    # everything checked here, before the Hub is touched: a bad run creates no empty repo
    lineage = _read_lineage(lineage_path, str(lineage_path))
    check_lineage(lineage, str(lineage_path))
    for key in ("config_hash", "data_sha256", "run_name"):
        if not isinstance(lineage.get(key), str):
            raise HubError(f"{lineage_path}: no '{key}'; is this a finished sublearn run?")
    lineage = public_lineage(lineage)
    if not (run_dir / CONFIG_FILE).is_file():
        raise HubError(f"{run_dir}: no {CONFIG_FILE}; is this a finished sublearn run?")
    config = portable_config(run_dir / CONFIG_FILE)
    kept = read_parquet(run_dir / "kept.parquet", ("prompt", "completion"))
    if kept.height == 0:
        raise HubError(f"{run_dir}: no rows passed the filter; nothing to publish")
    tag = tag or tag_for_hash(lineage["config_hash"])
    api = _api()
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if private and not api.repo_info(repo_id, repo_type="dataset").private:
            raise HubError(
                f"{repo_id}: the repo exists and is public; publishing would make this data "
                "readable by anyone (pass --public / publish.private: false to mean it)"
            )
        tags = {
            t.name: t.target_commit for t in api.list_repo_refs(repo_id, repo_type="dataset").tags
        }
        if tag in tags:
            remote = _remote_lineage(api, repo_id, tags[tag])
            if remote and remote.get("data_sha256") == lineage["data_sha256"]:
                return Published(repo_id, tags[tag], tag, created=False)
            raise HubError(f"{repo_id}: tag '{tag}' already names different data; pick --tag")
        main = api.repo_info(repo_id, repo_type="dataset", revision="main").sha
        remote = _remote_lineage(api, repo_id, main)
        if remote and remote.get("data_sha256") == lineage["data_sha256"]:
            api.create_tag(repo_id, repo_type="dataset", tag=tag, revision=main)
            return Published(repo_id, main, tag, created=False)
        card = render_card(lineage, repo_id, include_rejected)
        ops = [
            CommitOperationAdd(DATA_FILE, _parquet_bytes(kept)),
            CommitOperationAdd("README.md", str(card).encode()),
            CommitOperationAdd(LINEAGE_FILE, json.dumps(lineage, indent=2).encode()),
            CommitOperationAdd(CONFIG_FILE, config),
        ]
        if include_rejected:
            rejected = read_parquet(run_dir / "rejected.parquet", ("reject_reason",))
            ops.append(CommitOperationAdd(REJECTED_FILE, _parquet_bytes(rejected)))
        info = api.create_commit(
            repo_id,
            repo_type="dataset",
            operations=ops,
            commit_message=f"sublearn: publish {lineage['run_name']} ({tag})",
        )
        api.create_tag(repo_id, repo_type="dataset", tag=tag, revision=info.oid)
    except HubError:
        raise
    except Exception as err:
        raise explain(err, repo_id, "publish to") from None
    return Published(repo_id, info.oid, tag, created=True)


def portable_config(path: Path) -> bytes:
    """The run's config as published: every path in it (``output_dir``, an adapter or model
    folder, a prompt set) relative, to the working folder when it lies inside it, else its
    last part, so no local path such as a home folder is shared."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise HubError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise HubError(f"{path}: not a sublearn config (a YAML mapping)")
    data = without_local_paths(data, _relative)
    return yaml.safe_dump(data, sort_keys=False).encode()


def _relative(path: str) -> str:
    import os

    local = Path(path).expanduser()
    try:
        return os.fspath(local.relative_to(Path.cwd()))
    except ValueError:
        return local.name


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


@dataclass(frozen=True)
class Downloaded:
    repo_id: str
    revision: str
    commit: str
    data: pl.DataFrame
    lineage: dict
    card_rows: int


def fetch_dataset(repo_id: str, revision: str = "main") -> Downloaded:
    """The dataset and its lineage at a revision (tag, branch or commit), checked against
    the row count its card records."""
    from huggingface_hub import DatasetCard, snapshot_download

    try:
        api = _api()
        commit = api.repo_info(repo_id, repo_type="dataset", revision=revision).sha
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=commit,
                allow_patterns=[DATA_FILE, LINEAGE_FILE, "README.md"],
            )
        )
    except Exception as err:
        raise explain(err, repo_id, "read", revision) from None
    where = f"{repo_id}@{revision}"
    data_path = folder / DATA_FILE
    if not data_path.is_file():
        raise HubError(f"{where}: no {DATA_FILE}; not a sublearn dataset")
    try:
        data = read_parquet(data_path, ("prompt", "completion"))
    except DataError as err:
        raise HubError(f"{where}: {DATA_FILE}: {str(err).split(': ', 1)[-1]}") from None
    if not (folder / "README.md").is_file():
        raise HubError(f"{where}: no dataset card (README.md); not a sublearn dataset")
    try:
        card_meta = DatasetCard.load(folder / "README.md").data.to_dict().get("sublearn") or {}
        card_rows = int(card_meta["rows"]["published"])
    except Exception:  # no metadata block, bad YAML, no row count: all one answer
        raise HubError(f"{where}: the dataset card records no sublearn row count") from None
    lineage = card_meta
    if (folder / LINEAGE_FILE).is_file():
        lineage = _read_lineage(folder / LINEAGE_FILE, where)
    check_lineage(lineage, where)
    if card_rows != data.height:
        raise HubError(
            f"{repo_id}@{revision}: card says {card_rows} rows but the data has {data.height}"
        )
    return Downloaded(repo_id, revision, commit, data, lineage, card_rows)


def save_download(downloaded: Downloaded, out_dir: Path) -> Path:
    """Data, lineage and where they came from, written as one set."""
    source = {
        "repo_id": downloaded.repo_id,
        "revision": downloaded.revision,
        "commit": downloaded.commit,
    }
    return write_outputs(
        out_dir,
        {
            "data.parquet": downloaded.data.write_parquet,
            LINEAGE_FILE: json_writer(downloaded.lineage),
            "source.json": json_writer(source),
        },
    )


def fetch_lineage(repo_id: str, revision: str = "main") -> dict:
    try:
        lineage = _remote_lineage(_api(), repo_id, revision)
    except HubError:
        raise
    except Exception as err:
        raise explain(err, repo_id, "read", revision) from None
    if lineage is None:
        raise HubError(f"{repo_id}@{revision}: no {LINEAGE_FILE}; not a sublearn dataset")
    check_lineage(lineage, f"{repo_id}@{revision}")
    return lineage
