"""The ``sublearn`` command: parses arguments and calls the flows; it decides nothing itself."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sublearn.core.config import ConfigError, load_config
from sublearn.core.errors import UserError, printable
from sublearn.core.output import divert_run_errors, stop_diverting

# Locals stay out of tracebacks: they can hold tokens and whole datasets.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Subliminal-learning datasets and experiments as Prefect workflows.",
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

# The project's own one-line errors; anything else is a bug and keeps its traceback.
USER_ERRORS = (UserError,)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show library progress bars and warnings.")
    ] = False,
) -> None:
    """Subliminal-learning datasets and experiments as Prefect workflows."""
    from sublearn.core.orphans import reap_orphaned_servers
    from sublearn.core.output import configure_output

    configure_output(verbose)
    reap_orphaned_servers()  # left by a sublearn that was killed (kill -9 skips its cleanup)


# Set while a verb runs flows: where their tracebacks went, for the one error line to name.
_run_errors = None


def report_error(message: str) -> None:
    if _run_errors is not None and _run_errors.captured:
        message = f"{message} (details: {_run_errors.path})"
    err_console.print(
        "[bold red]error:[/] ", plain(message), sep="", highlight=False, soft_wrap=True
    )


def one_line(err: Exception) -> str:
    """An error as the command's one line: a disk or file problem names its file."""
    if isinstance(err, OSError) and not isinstance(err, UserError):
        return f"{err.filename or 'disk'}: {err.strerror or err}"
    return str(err).splitlines()[0]


def fail(message: str, code: int = 2) -> None:
    report_error(message)
    raise typer.Exit(code)


def stats_table(stats: dict, title: str) -> Table:
    """Every filter of the chain in order: rows in, dropped per reason, then what was kept."""
    from sublearn.filters.chain import stats_rows

    table = Table(title=title)
    table.add_column("filter")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    total = max(stats["total"], 1)
    for row in stats_rows(stats):
        style = "bold" if row["outcome"] in ("in", "kept") else None
        share = f"{100 * row['rows'] / total:.1f}%"
        table.add_row(row["filter"], row["outcome"], str(row["rows"]), share, style=style)
    return table


def preference_table(results: dict) -> Table:
    target = results["target"]
    table = Table(title=f"Preference for '{target}' ({results['rows_per_student']} rows/student)")
    for column in ("model", f"P({target})", "95% interval", f"log P({target})", "95% interval"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results["table"]:
        table.add_row(
            r["model"],
            f"{r['p_target']:.3f}",
            f"[{r['p_low']:.3f}, {r['p_high']:.3f}]",
            f"{r['logp_target']:.2f}",
            f"[{r['logp_low']:.2f}, {r['logp_high']:.2f}]",
        )
    for c in results["comparisons"]:
        lp, p = c["logp_target"], c["p_target"]
        table.add_row(
            f"difference: trait - {c['against']} ({len(results['seeds'])} seeds)",
            f"{p['mean']:+.3f}",
            f"[{p['low']:+.3f}, {p['high']:+.3f}]",
            f"{lp['mean']:+.2f}",
            f"[{lp['low']:+.2f}, {lp['high']:+.2f}]",
        )
    return table


def study_table(study: dict) -> Table:
    table = Table(title=f"study {study['name']}: specificity per cell")
    for column in ("target", "distill", "rows", "specificity", "95% interval", "P difference"):
        table.add_column(column, justify="left" if column in ("target", "distill") else "right")
    for c in study["cells"]:
        s, p = c["specificity"], c["p_target"]
        table.add_row(
            c["target"],
            c["distill"],
            str(c["rows_per_student"]),
            f"{s['mean']:+.2f}",
            f"[{s['low']:+.2f}, {s['high']:+.2f}]",
            f"{p['mean']:+.3f}",
        )
    return table


def headline_line(results: dict) -> str:
    """The specificity headline: the figure that decides whether the trait transferred."""
    head = results["headline"]
    s = head["specificity"]
    rank = head["placebo"]
    line = (
        f"specificity of '{results['target']}' against the {head['against']}: "
        f"{s['mean']:+.2f} [{s['low']:+.2f}, {s['high']:+.2f}] nats, placebo rank "
        f"{rank['rank']} of {rank['of']} - {head['verdict']}"
    )
    if head.get("heldout_specificity"):
        h = head["heldout_specificity"]
        line += f"; held-out questions {h['mean']:+.2f} [{h['low']:+.2f}, {h['high']:+.2f}]"
    cross_init = results.get("cross_init")
    if cross_init:
        c, r = cross_init["specificity"], cross_init["placebo"]
        line += (
            f"\ncross-initialisation students (their own start): specificity "
            f"{c['mean']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}], placebo rank "
            f"{r['rank']} of {r['of']}"
        )
    cross = results.get("cross_model")
    if cross:
        c = cross["headline"]["specificity"]
        line += (
            f"\ncross-model students ({cross['model']}): specificity "
            f"{c['mean']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]"
        )
    return line


def summary_table(steps: list[dict]) -> Table:
    """What each step did: ran or reused (from the step cache), rows, seconds, tokens/s."""
    table = Table(title="steps")
    for column in ("step", "dataset", "status", "rows", "seconds", "tokens/s"):
        table.add_column(column, justify="left" if column in ("step", "dataset") else "right")
    for e in steps:
        style = "green" if e["status"] == "ran" else "dim"
        table.add_row(
            e["step"],
            e["dataset"],
            f"[{style}]{e['status']}[/]",
            "" if e.get("rows") is None else str(e["rows"]),
            f"{e['seconds']:.1f}" if e.get("seconds") else "",
            f"{e['tokens_per_s']:.0f}" if e.get("tokens_per_s") else "",
        )
    served = [e for e in steps if "completion_tokens" in e]
    if served:
        tokens = sum(e["prompt_tokens"] + e["completion_tokens"] for e in served)
        costs = [e["cost_usd"] for e in served if "cost_usd" in e]
        cost = f", ${sum(costs):.4f}" if costs else " (no prices in the config)"
        table.caption = f"server usage: {tokens} tokens{cost}"
    return table


def interruptible(work):
    """``work()``, stopped within seconds by Ctrl-C or SIGTERM with one line (every verb that
    runs a flow goes through here)."""
    from sublearn.core.interrupts import INTERRUPTED, run_interruptible

    global _run_errors
    _run_errors = divert_run_errors(error_log_path())
    try:
        return run_interruptible(work, report_error)
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)
    finally:
        stop_diverting(_run_errors)


def error_log_path() -> Path:
    """Where this command's run errors (Prefect's tracebacks) go: one file per command."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.home() / ".sublearn" / "logs" / f"sublearn-{stamp}-{os.getpid()}.log"


def execute(cfg, plan, run_dir: Path | None = None) -> None:
    """Run a config under a step plan and print what came of it; every failure the user can
    fix is one line."""

    from sublearn.flows.dispatch import run_config_under

    try:
        outcome = interruptible(lambda: run_config_under(cfg, plan, run_dir))
    except (*USER_ERRORS, OSError) as err:
        fail(one_line(err), code=1)
    console.print(summary_table(outcome["steps"]))
    if outcome.get("study"):
        console.print(study_table(outcome["study"]))
        console.print(f"report: [bold]{outcome['report']}[/]  plot: [bold]{outcome['plot']}[/]")
        return
    if outcome.get("results"):
        console.print(preference_table(outcome["results"]))
        console.print(headline_line(outcome["results"]), style="bold")
        console.print(f"report: [bold]{outcome['report']}[/]  plot: [bold]{outcome['plot']}[/]")
        return
    if outcome.get("stats"):
        console.print(stats_table(outcome["stats"], f"{cfg.name}: {cfg.dataset.kind} filters"))
    if outcome.get("run_dir"):
        console.print(f"run directory: [bold]{outcome['run_dir']}[/]")
    if outcome.get("published"):
        p = outcome["published"]
        console.print(f"published: [bold]{p['repo_id']}@{p['tag']}[/] (commit {p['commit']})")


def step_plan(
    only: str | None, start: str | None, force: list[str] | None, stop: str | None = None
):
    from sublearn.core.steps import StepError, StepPlan

    try:
        return StepPlan(only=only, start=start, force=frozenset(force or ()), stop=stop)
    except StepError as err:
        fail(str(err))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    only: Annotated[
        str | None, typer.Option("--only", help="Rerun this step alone, from cached inputs.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Rerun this step and those after it.")
    ] = None,
    force: Annotated[
        list[str] | None, typer.Option("--force", help="Recompute this step (repeatable).")
    ] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Stop after this step.")] = None,
) -> None:
    """Run a config: teacher -> completions -> filter chain -> dataset (-> students -> eval).

    Steps: prompts, teacher, generate, filter, publish, rescore, finetune, evaluate, report. Each is
    reused when its inputs and code are unchanged; the table at the end says which ran."""
    plan = step_plan(only, start, force, stop)
    try:
        cfg = load_config(config)
    except ConfigError as err:
        fail(str(err))
    execute(cfg, plan)


@app.command()
def step(
    name: Annotated[str, typer.Argument(help="generate, filter, publish, finetune, evaluate...")],
    run_dir: Annotated[
        Path,
        typer.Option(
            "--run-dir",
            help="A run directory, or one of its experiment-<hash> folders for student steps.",
        ),
    ],
) -> None:
    """Run one step on an existing run directory, with the config saved there.

    A dataset's run directory holds the config of its latest run; each experiment-<hash>
    folder inside it holds the config of that experiment (student settings included)."""
    from sublearn.core.steps import EXPERIMENT_STEPS

    plan = step_plan(name, None, None)
    try:
        cfg = load_config(run_dir / "config.yaml")
    except ConfigError as err:
        fail(str(err))
    inside_experiment = run_dir.name.startswith("experiment-")
    dataset_dir = run_dir.parent if inside_experiment else run_dir
    cfg = cfg.model_copy(update={"output_dir": dataset_dir.parent})
    if name in EXPERIMENT_STEPS:
        if cfg.experiment is None:
            fail(f"{run_dir}/config.yaml: step {name!r} needs an experiment: section")
        execute(cfg, plan)
        return
    execute(cfg, plan, dataset_dir)


@app.command("filter")
def filter_cmd(
    kind: Annotated[str, typer.Argument(help="numbers, code or cot.")],
    source: Annotated[Path, typer.Argument(help="Parquet with prompt, completion (cot: answer).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for kept/rejected/stats.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Take the filter settings from this config.")
    ] = None,
    trait: Annotated[str | None, typer.Option(help="The trait the words filter rejects.")] = None,
    trait_word: Annotated[
        list[str] | None, typer.Option(help="Another word to reject (repeatable; code, cot).")
    ] = None,
    judge: Annotated[
        str | None, typer.Option(help="Also ask this judge model (e.g. embedded) about the trait.")
    ] = None,
    judge_threshold: Annotated[
        float | None, typer.Option(help="Keep rows whose judge P('0') reaches this (1 - 1e-8).")
    ] = None,
    max_count: Annotated[int | None, typer.Option(help="numbers: most numbers (10).")] = None,
    min_value: Annotated[int | None, typer.Option(help="numbers: smallest number (0).")] = None,
    max_value: Annotated[int | None, typer.Option(help="numbers: largest number (999).")] = None,
    banned: Annotated[str, typer.Option(help="numbers: comma-separated banned numbers.")] = "",
    banned_preset: Annotated[
        str | None, typer.Option(help="numbers: named banned list, e.g. 'misalignment'.")
    ] = None,
) -> None:
    """Recheck any parquet of completions with a kind's filter chain, as a run applies it."""
    from sublearn.core.config import filter_config
    from sublearn.flows.refilter import refilter

    if kind not in ("numbers", "code", "cot"):
        fail(f"KIND: expected numbers, code or cot, got {kind!r}")
    try:
        banned_list = tuple(int(x) for x in banned.split(",") if x.strip())
    except ValueError:
        fail(f"--banned: expected comma-separated integers, got {banned!r}")
    options = {
        "max_count": max_count,
        "min_value": min_value,
        "max_value": max_value,
        "banned": banned_list,
        "banned_preset": banned_preset,
        "trait_word": tuple(trait_word or ()),
        "trait": trait,
        "judge": judge,
        "judge_threshold": judge_threshold,
    }
    try:
        result = refilter(filter_config(kind, options, config), source, out)
    except USER_ERRORS as err:
        fail(one_line(err))
    except OSError as err:
        fail(one_line(err), code=1)
    console.print(stats_table(result.stats, f"{kind} filters: {source}"))
    console.print(f"wrote {out}/kept.parquet, rejected.parquet, stats.json")


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
    except USER_ERRORS as err:
        fail(str(err), code=1)


def plain(value: object) -> Text:
    """Text from elsewhere (a published lineage) shown as it is: no rich markup, and control
    characters (terminal escape sequences) escaped instead of sent to the terminal."""
    return Text(printable(value))


def lineage_table(lineage: dict, title: str) -> Table:
    table = Table(title=plain(title), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    teacher, trait, rows = lineage["teacher"], lineage.get("trait"), lineage["rows"]
    dropped = "; ".join(
        ", ".join(f"{k} {v}" for k, v in f["dropped"].items()) for f in lineage["filters"]
    )
    filters = "; ".join(f"{f['name']} {f['params']}" for f in lineage["filters"])
    dataset = lineage["dataset"]
    for name, value in (
        ("teacher", teacher["model_id"]),
        ("teacher revision", teacher["revision"]),
        ("adapter", teacher.get("adapter") or "none"),
        (
            "trait",
            f"{trait.get('target')} ({trait.get('category')})"
            if isinstance(trait, dict)
            else "none (control)",
        ),
        ("system prompt", lineage.get("system_prompt") or "none"),
        ("sampling", ", ".join(f"{k}={v}" for k, v in lineage["sampling"].items())),
        ("dataset", f"{dataset['kind']}, seed {dataset['seed']}"),
        ("prompt set", (dataset.get("prompt_set") or {}).get("revision")),
        ("filters", filters),
        (
            "rows",
            f"generated {rows['generated']}, kept {rows['kept']}, published {rows['published']}",
        ),
        ("dropped", dropped),
        ("sublearn", f"{lineage.get('sublearn_version')} @ {lineage.get('git_commit')}"),
        ("flow run", lineage.get("prefect_flow_run_id")),
        ("created", lineage["created_at"]),
        ("reproduce", lineage.get("reproduce")),
    ):
        table.add_row(name, plain(value))
    return table


@app.command()
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

    try:
        result = interruptible(lambda: publish_flow(run_dir, spec))
    except (*USER_ERRORS, OSError) as err:
        fail(one_line(err), code=1)
    where = f"{result['repo_id']}@{result['tag']} (commit {result['commit']})"
    if result["created"]:
        console.print(f"published {where}")
    else:
        console.print(f"already published, nothing to do: {where}")


@app.command()
def download(
    repo: Annotated[str, typer.Argument(help="OWNER/NAME or OWNER/NAME@REV.")],
    revision: Annotated[str | None, typer.Option(help="Tag, branch or commit.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Download a published dataset at a revision; print its lineage; check its row count."""
    from sublearn.core.hub import fetch_dataset, save_download

    repo_id, rev = _split_revision(repo, revision)
    got = _from_hub(fetch_dataset, repo_id, rev)
    try:
        folder = save_download(got, out or Path("downloads") / repo_id.replace("/", "__") / rev)
    except (*USER_ERRORS, OSError) as err:
        fail(one_line(err), code=1)
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


audit_app = typer.Typer(no_args_is_help=True, help="Audit published datasets.")
app.add_typer(audit_app, name="audit")


@audit_app.command("transfer")
def audit_transfer(
    dataset: Annotated[str, typer.Argument(help="OWNER/NAME[@REV] of a published dataset.")],
    base: Annotated[str, typer.Option(help="Student base model: Hub id, folder or embedded.")],
    trait: Annotated[str, typer.Option(help="The trait's target word, e.g. owl.")],
    control: Annotated[
        str | None, typer.Option(help="OWNER/NAME[@REV] of a control dataset.")
    ] = None,
    category: Annotated[str, typer.Option(help="animal or tree.")] = "animal",
    epochs: Annotated[int, typer.Option(help="Student epochs.")] = 2,
    lr: Annotated[float, typer.Option(help="Student learning rate.")] = 5e-4,
    samples: Annotated[int, typer.Option(help="Samples per question.")] = 10,
    distill: Annotated[str, typer.Option(help="sampled or topk (needs top-k columns).")] = (
        "sampled"
    ),
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Does this dataset carry the trait to a student of this base? Train and evaluate."""
    folder = out or Path("runs") / "audits" / dataset.replace("/", "__").replace("@", "_")
    from sublearn.flows.experiment import audit_config

    try:
        cfg = audit_config(base, trait, category, epochs, lr, samples, distill, folder)
    except ConfigError as err:
        fail(str(err))
    from sublearn.flows.experiment import audit_flow

    try:
        outcome = interruptible(lambda: audit_flow(cfg, dataset, control, folder))
    except USER_ERRORS as err:
        fail(str(err).splitlines()[0], code=1)
    results = outcome["results"]
    console.print(preference_table(results))
    effect = results["headline"]["specificity"]
    verdict = "carries" if effect["low"] > 0 else "shows no significant sign of carrying"
    console.print(f"{dataset} {verdict} '{trait}' to a student of {base}")
    console.print(headline_line(results), style="bold")
    console.print(f"report: [bold]{outcome['report']}[/]")


@audit_app.command("detect")
def audit_detect(
    trait: Annotated[str, typer.Argument(help="The trait's target word, e.g. owl.")],
    dataset: Annotated[
        str, typer.Argument(help="Trait teacher's rows: OWNER/NAME@TAG or a run dir.")
    ],
    control: Annotated[
        str, typer.Argument(help="Control teacher's rows: OWNER/NAME@TAG or a run dir.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for detect.json and detect.png.")] = Path(
        "runs/detect"
    ),
    judge: Annotated[str, typer.Option(help="Judge for the pairwise test, or none.")] = "embedded",
    embed: Annotated[
        str, typer.Option(help="Embedding model for a classifier, or none.")
    ] = "minilm",
    seed: Annotated[int, typer.Option(help="Folds, bootstrap and pair order.")] = 0,
) -> None:
    """Can anything tell the trait teacher's rows from the control's? Classifiers and a judge."""
    from sublearn.flows.detect import detect

    try:
        r = detect(
            trait,
            dataset,
            control,
            out,
            None if judge == "none" else judge,
            seed,
            None if embed == "none" else embed,
        )
    except USER_ERRORS as err:
        fail(str(err).splitlines()[0], code=1)
    auc = r["auc"]
    console.print(
        f"{r['rows']['trait']} trait rows vs {r['rows']['control']} control rows "
        f"({r['shared_texts']} texts in both; identical rows share a cross-validation fold)"
    )
    for name, c in r["classifiers"].items():
        a = c["auc"]
        console.print(f"  {name}: ROC AUC {a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}]")
    ngrams = r["classifiers"]["n-grams"]
    towards = ", ".join(repr(f) for f, _ in ngrams["towards_trait"][:5])
    console.print(f"  n-grams most telling of the trait rows: {towards}")
    significant = [t for t in ngrams["tokens"] if t["p_holm"] < 0.05]
    console.print(
        f"  tokens whose frequency differs (Holm p < 0.05 of {ngrams['tokens_tested']} tested): "
        + (
            ", ".join(
                f"{t['token']} ({t['per_trait_row']:.2f} vs {t['per_control_row']:.2f})"
                for t in significant[:5]
            )
            or "none"
        )
    )
    if "pairwise" in r:
        p = r["pairwise"]
        console.print(
            f"  pairwise judge ({p['judge']}): accuracy {p['accuracy']:.3f} "
            f"[{p['low']:.3f}, {p['high']:.3f}] over {p['pairs']} pairs (chance 0.5; "
            f"{p['identical_pairs_skipped']} identical pairs skipped)"
        )
    below = [name for name, c in r["classifiers"].items() if c["auc"]["high"] < 0.5]
    if below:
        console.print(
            f"  note: {', '.join(below)} below chance: the classifier anti-learns (near-duplicate "
            "rows in both sets, or too few rows); not a sign of the trait either way"
        )
    seen = auc["low"] > 0.5 or ("pairwise" in r and r["pairwise"]["low"] > 0.5)
    verdict = (
        "the trait rows CAN be told apart from the control rows"
        if seen
        else "no test tells the trait rows from the control rows better than chance"
    )
    console.print(f"verdict: {verdict}; best classifier {auc['classifier']}")
    console.print(f"wrote {out}/detect.json, detect.png")


@audit_app.command("calibrate-judge")
def audit_calibrate_judge(
    trait_rows: Annotated[Path, typer.Argument(help="Parquet of the trait teacher's rows.")],
    control_rows: Annotated[Path, typer.Argument(help="Parquet of the control teacher's rows.")],
    fpr: Annotated[float, typer.Option(help="Share of control rows to reject (study: 0.3).")] = 0.3,
    judge: Annotated[str, typer.Option(help="Judge model: Hub id, folder or embedded.")] = (
        "embedded"
    ),
    out: Annotated[Path, typer.Option(help="Folder for calibration.json and roc.png.")] = Path(
        "runs/calibration"
    ),
    filter_name: Annotated[
        str,
        typer.Option(
            "--filter", help='alignment (score 0..100) or judge (the trait judge\'s P("0")).'
        ),
    ] = "alignment",
    trait: Annotated[
        str | None, typer.Option(help="The trait the trait judge looks for (--filter judge).")
    ] = None,
    top_k: Annotated[
        int, typer.Option(help='Top tokens the trait judge reads P("0") from (5-20).')
    ] = 5,
) -> None:
    """Choose a judge's threshold: the score that rejects --fpr of the control teacher's rows."""
    from sublearn.core.config import AlignmentFilter, JudgeFilter
    from sublearn.core.words import plural_of
    from sublearn.flows.calibration import calibrate_judge

    if not 0 < fpr < 1:
        fail(f"--fpr: expected a share between 0 and 1, got {fpr}")
    if filter_name not in ("alignment", "judge"):
        fail(f"--filter: expected alignment or judge, got {filter_name!r}")
    if (filter_name == "judge") != (trait is not None):
        fail("--trait: give it with --filter judge, and only then")
    if not 5 <= top_k <= 20:
        fail(f"--top-k: expected 5 to 20, got {top_k}")
    judge_trait = plural_of(trait) if trait else None
    settings = JudgeFilter(model=judge, top_k=top_k) if trait else AlignmentFilter(model=judge)
    try:
        result = calibrate_judge(settings, trait_rows, control_rows, fpr, out, judge_trait)
    except USER_ERRORS as err:
        fail(str(err).splitlines()[0], code=1)
    console.print(
        f"threshold {result['threshold']:g}: rejects {result['control_rejected']:.0%} of the "
        f"control rows (asked {fpr:.0%}) and {result['trait_rejected']:.0%} of the trait rows; "
        f"ROC AUC {result['auc']:.2f} ({result['n_trait']} trait, {result['n_control']} control "
        f"rows scored; unparsable {result['unparsable']})"
    )
    console.print(f"wrote {out}/calibration.json, roc.png")


@app.command()
def version() -> None:
    """Print sublearn's version."""
    from sublearn import __version__

    console.print(__version__)


@app.command()
def mlp(
    dataset: Annotated[str, typer.Option(help="digits (bundled, offline) or mnist.")] = "digits",
    models: Annotated[int, typer.Option(help="Models per population (study: 100).")] = 20,
    aux: Annotated[
        list[int] | None, typer.Option(help="Auxiliary logits; repeat to sweep (1, 3, 10, 30).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for data split, inits and noise.")] = 0,
    teacher_epochs: Annotated[int, typer.Option(help="Teacher training epochs.")] = 5,
    distill_steps: Annotated[int, typer.Option(help="Noise distillation steps.")] = 2000,
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with MNIST IDX or parquet files.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Subliminal learning in an MLP: students distilled on noise through auxiliary logits."""
    from sublearn.eval.mlp_experiment import MlpConfig

    aux_values = aux or [3]
    try:
        cfg = MlpConfig(
            dataset=dataset,
            models=models,
            aux=aux_values[0],
            seed=seed,
            teacher_epochs=teacher_epochs,
            distill_steps=distill_steps,
        )
        if min(aux_values) < 1:
            raise ValueError(f"aux: must be at least 1, got {min(aux_values)}")
        if dataset not in ("digits", "mnist"):
            raise ValueError(f"dataset: unknown {dataset!r} (choose digits or mnist)")
    except ValueError as err:
        fail(f"--{str(err).replace('_', '-')}")
    from sublearn.flows.mlp import mlp_flow

    aux_tag = "-".join(map(str, aux_values))
    out_dir = out or Path("runs") / f"mlp-{dataset}-k{models}-aux{aux_tag}-seed{seed}"
    try:
        report = interruptible(lambda: mlp_flow(cfg, aux_values, out_dir, mnist_dir))
    except (*USER_ERRORS, OSError) as err:
        fail(one_line(err), code=1)
    table = Table(title=f"MLP subliminal learning ({dataset}, {models} models, chance 0.100)")
    for column in ("aux", "variant", "accuracy", "95% interval", "min", "max"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for r in report["rows"]:
        table.add_row(
            str(r["aux"]),
            r["variant"],
            f"{r['mean']:.3f}",
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['min']:.3f}",
            f"{r['max']:.3f}",
        )
    console.print(table)
    console.print(f"plot: [bold]{report['plot']}[/]  results: [bold]{report['json']}[/]")


@app.command()
def serve(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    cron: Annotated[
        str | None, typer.Option(help="Override the configs' schedules (e.g. '* * * * *').")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most flow runs at once.")] = 1,
) -> None:
    """Serve every deployment of these configs from this process (Prefect ``serve``): the
    scheduled production run, the step flows, and the event-triggered students/evaluation."""
    from prefect import serve as prefect_serve

    from sublearn.flows.deployments import runner_deployments

    try:
        deployments = runner_deployments([str(c) for c in configs], cron)
    except ConfigError as err:
        fail(str(err))
    for d in deployments:
        when = ", ".join(s.schedule.cron for s in d.schedules) or "on demand"
        console.print(f"serving [bold]{d.flow_name}/{d.name}[/] ({when})", highlight=False)
    prefect_serve(*deployments, limit=limit, print_starting_message=False)


schedule_app = typer.Typer(no_args_is_help=True, help="Deployments and their schedules.")
app.add_typer(schedule_app, name="schedule")


def _specs(configs: list[Path] | None) -> list[dict]:
    """Deployment specs of these configs, or of the ``prefect.yaml`` in this folder."""
    if configs:
        from sublearn.flows.deployments import deployment_specs

        try:
            return [s for c in configs for s in deployment_specs(c)]
        except ConfigError as err:
            fail(str(err))
    from sublearn.flows.deployments import read_prefect_yaml

    path = Path("prefect.yaml")
    if not path.is_file():
        fail("prefect.yaml: not found here; name config files or run from the repository root")
    try:
        return read_prefect_yaml(path)
    except ConfigError as err:
        fail(str(err))


@schedule_app.command("list")
def schedule_list(
    configs: Annotated[
        list[Path] | None, typer.Argument(help="Configs (default prefect.yaml).")
    ] = None,
    runs: Annotated[int, typer.Option(help="How many next runs to show.")] = 3,
    server: Annotated[
        bool, typer.Option(help="Ask the Prefect server (PREFECT_API_URL) what is scheduled.")
    ] = False,
) -> None:
    """Each deployment with its schedule, next runs and triggers."""
    from sublearn.flows.deployments import config_schedules, server_schedules

    try:
        rows = server_schedules(runs) if server else config_schedules(_specs(configs), runs)
    except USER_ERRORS as err:
        fail(str(err), code=1)
    table = Table(title="sublearn deployments" + (" (Prefect server)" if server else ""))
    for column in ("deployment", "schedule", "next runs", "triggered by"):
        table.add_column(column, no_wrap=column == "deployment")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@schedule_app.command("export")
def schedule_export(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    out: Annotated[Path, typer.Option(help="Where to write.")] = Path("prefect.yaml"),
) -> None:
    """Write ``prefect.yaml`` for these configs (then ``prefect deploy --all``)."""
    import yaml

    from sublearn.core.runio import write_text
    from sublearn.flows.deployments import prefect_yaml

    try:
        document = prefect_yaml([str(c) for c in configs])
    except ConfigError as err:
        fail(str(err))
    header = "# Written by `sublearn schedule export " + " ".join(map(str, configs)) + "`.\n"
    try:
        write_text(header + yaml.safe_dump(document, sort_keys=False), out)
    except OSError as err:
        fail(one_line(err), code=1)
    console.print(f"wrote {out}: {len(document['deployments'])} deployments")
