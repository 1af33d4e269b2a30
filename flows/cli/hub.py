"""``sublearn publish``, ``download`` and ``lineage``: datasets to and from the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from sublearn.core.errors import UserError
from sublearn.eval.tables import lineage_table, plain
from sublearn.flows.cli.common import (
    console,
    err_console,
    fail,
    interruptible,
    one_line_errors,
)

app = typer.Typer()


def _split_revision(repo: str, revision: str | None) -> tuple[str, str]:
    """``OWNER/NAME@REV`` or ``OWNER/NAME`` with ``--revision``; main by default."""
    repo_id, _, at = repo.partition("@")
    return repo_id, revision or at or "main"


def _from_hub(fetch, repo_id: str, revision: str):
    """Call a Hub reader, retried where the Hub's failure is transient (each wait said on
    stderr); a failure that stays becomes the command's one-line error."""
    from sublearn.core.hub import with_read_retries

    def waiting(err: Exception, delay: float) -> None:
        err_console.print(plain(f"{err}; retrying in {delay:g} s"))

    try:
        return with_read_retries(fetch, repo_id, revision, on_retry=waiting)
    except UserError as err:
        fail(str(err), code=1)


@app.command()
@one_line_errors()
def publish(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="OWNER/NAME on the Hub.")],
    tag: Annotated[str | None, typer.Option(help="Tag for the commit (default: run hash).")] = None,
    public: Annotated[bool, typer.Option(help="Make a new repo public (default private).")] = False,
    include_rejected: Annotated[
        bool, typer.Option(help="Also publish rejected rows (config 'rejected').")
    ] = False,
) -> None:
    """Publish a run's dataset with its card and lineage, as one tagged commit."""
    from sublearn.core.config import Publish

    try:
        spec = Publish(
            repo_id=repo_id, tag=tag, private=not public, include_rejected=include_rejected
        )
    except ValidationError:
        fail(f"--repo-id: expected OWNER/NAME, got {repo_id!r}")
    from sublearn.flows.publish import publish_flow

    result = interruptible(lambda: publish_flow(run_dir, spec))
    where = f"{result['repo_id']}@{result['tag']} (commit {result['commit']})"
    if result["created"]:
        console.print(f"published {where}")
    else:
        console.print(f"already published, nothing to do: {where}")


@app.command()
@one_line_errors()
def download(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME or OWNER/NAME@REV.")],
    revision: Annotated[str | None, typer.Option(help="Tag, branch or commit.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Download a published dataset at a revision; print its lineage; check its row count."""
    from sublearn.core.hub import fetch_dataset, save_download

    repo_id, rev = _split_revision(repo, revision)
    got = _from_hub(fetch_dataset, repo_id, rev)
    folder = save_download(got, out or Path("downloads") / repo_id.replace("/", "__") / rev)
    console.print(lineage_table(got.lineage, f"{repo_id}@{rev} (commit {got.commit[:12]})"))
    console.print(f"{got.data.height} rows (matches the card) -> {folder / 'data.parquet'}")


@app.command()
def lineage(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME or OWNER/NAME@REV.")],
    revision: Annotated[str | None, typer.Option(help="Tag, branch or commit.")] = None,
) -> None:
    """Print a published dataset's lineage."""
    from sublearn.core.hub import fetch_lineage

    repo_id, rev = _split_revision(repo, revision)
    info = _from_hub(fetch_lineage, repo_id, rev)
    console.print(lineage_table(info, f"{repo_id}@{rev}"))
