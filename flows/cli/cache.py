"""``sublearn cache ls|prune|verify``: the step store under a run folder, managed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sublearn.flows.cli.common import console, fail, one_line_errors

app = typer.Typer()
cache_app = typer.Typer(no_args_is_help=True, help="The step store: list, prune, verify.")
app.add_typer(cache_app, name="cache")

STORE_OPTION = typer.Option("--runs", help="The runs folder (a config's output_dir).")


def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _store(runs: Path) -> Path:
    if not (runs / ".steps").is_dir():
        fail(f"{runs}: no step store here (.steps); pass the config's output_dir with --runs")
    return runs


@cache_app.command("ls")
@one_line_errors()
def cache_ls(runs: Annotated[Path, STORE_OPTION] = Path("runs")) -> None:
    """Entries per step kind: size, last use, the run directories that link them."""
    from sublearn.core.cache import entries

    found = entries(_store(runs))
    table = Table(title=f"step store: {runs / '.steps'}")
    for column in ("step", "key", "size", "last used", "used by"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for e in found:
        users = ", ".join(e.users) if e.users else "[dim]unused[/]"
        state = "" if e.finished else " [yellow](unfinished)[/]"
        table.add_row(e.step, e.key + state, size(e.size), when(e.last_used), users)
    steps = sorted({e.step for e in found})
    counts = {s: [e for e in found if e.step == s] for s in steps}
    per_step = "; ".join(
        f"{s}: {len(group)} ({size(sum(e.size for e in group))})" for s, group in counts.items()
    )
    table.caption = f"{len(found)} entries, {size(sum(e.size for e in found))}. {per_step}"
    console.print(table)


@cache_app.command("prune")
@one_line_errors()
def cache_prune(
    runs: Annotated[Path, STORE_OPTION] = Path("runs"),
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only entries unused this long (30d, 12h).")
    ] = None,
    unused: Annotated[
        bool, typer.Option("--unused", help="Every entry no run directory links.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go.")] = False,
) -> None:
    """Remove entries no run directory links (never one a running run holds)."""
    from sublearn.core.cache import parse_age, prune

    if older_than is None and not unused:
        fail("cache prune: say which entries: --unused, --older-than 30d, or both")
    age = parse_age(older_than) if older_than else None
    removed, held = prune(_store(runs), age, dry_run)
    verb = "would remove" if dry_run else "removed"
    for e in removed:
        console.print(f"{verb} {e.step}/{e.key} ({size(e.size)}, last used {when(e.last_used)})")
    for e in held:
        console.print(f"kept {e.step}/{e.key}: a running run holds it")
    freed = size(sum(e.size for e in removed))
    console.print(f"{verb} {len(removed)} entries ({freed}); {len(held)} held by running runs")


@cache_app.command("verify")
@one_line_errors()
def cache_verify(runs: Annotated[Path, STORE_OPTION] = Path("runs")) -> None:
    """Re-hash every finished entry; move the damaged ones into .steps/.quarantine."""
    from sublearn.core.cache import verify

    checked, damage = verify(_store(runs))
    for d in damage:
        what = ", ".join(d.files) if d.files else "its record is unreadable"
        console.print(f"damaged {d.entry.step}/{d.entry.key}: {what}; moved to {d.moved_to}")
    console.print(f"verified {checked} entries: {len(damage)} damaged")
    if damage:
        raise typer.Exit(1)
