"""What the terminal shows of each result: rich tables and the verdict lines, beside the
markdown reports (``preference_report``, ``study_report``) that say the same in files."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from sublearn.core.errors import printable
from sublearn.eval.results import ExperimentResults


def plain(value: object) -> Text:
    """Text from elsewhere (a published lineage) shown as it is: no rich markup, and control
    characters (terminal escape sequences) escaped instead of sent to the terminal."""
    return Text(printable(value))


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


def preference_table(results: ExperimentResults) -> Table:
    target = results.target
    table = Table(title=f"Preference for '{target}' ({results.rows_per_student} rows/student)")
    for column in ("model", f"P({target})", "95% interval", f"log P({target})", "95% interval"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results.table:
        table.add_row(
            r.model,
            f"{r.p_target:.3f}",
            f"[{r.p_low:.3f}, {r.p_high:.3f}]",
            f"{r.logp_target:.2f}",
            f"[{r.logp_low:.2f}, {r.logp_high:.2f}]",
        )
    for c in results.comparisons:
        lp, p = c.logp_target, c.p_target
        table.add_row(
            f"difference: trait - {c.against} ({len(results.seeds)} seeds)",
            f"{p.mean:+.3f}",
            f"[{p.low:+.3f}, {p.high:+.3f}]",
            f"{lp.mean:+.2f}",
            f"[{lp.low:+.2f}, {lp.high:+.2f}]",
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


def headline_line(results: ExperimentResults) -> str:
    """The specificity headline: the figure that decides whether the trait transferred."""
    head = results.headline
    s, rank = head.specificity, head.placebo
    line = (
        f"specificity of '{results.target}' against the {head.against}: "
        f"{s.mean:+.2f} [{s.low:+.2f}, {s.high:+.2f}] nats, placebo rank "
        f"{rank.rank} of {rank.of} - {head.verdict}"
    )
    if head.heldout_specificity:
        h = head.heldout_specificity
        line += f"; held-out questions {h.mean:+.2f} [{h.low:+.2f}, {h.high:+.2f}]"
    if results.cross_init:
        c, r = results.cross_init.specificity, results.cross_init.placebo
        line += (
            f"\ncross-initialisation students (their own start): specificity "
            f"{c.mean:+.2f} [{c.low:+.2f}, {c.high:+.2f}], placebo rank {r.rank} of {r.of}"
        )
    if results.cross_model:
        c = results.cross_model.headline.specificity
        line += (
            f"\ncross-model students ({results.cross_model.model}): specificity "
            f"{c.mean:+.2f} [{c.low:+.2f}, {c.high:+.2f}]"
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


def estimate_table(estimates: list) -> Table:
    """``run --dry-run``: each generating dataset's requests, tokens and cost, nothing sent;
    the cost columns where the config gives prices, the earlier-run column where there is one."""

    def usd(value: float | None) -> str:
        return "" if value is None else f"${value:,.2f}"

    columns = {
        "dataset": lambda e: plain(e.dataset),
        "requests": lambda e: f"{e.requests:,}",
        "tokens in": lambda e: f"{e.tokens_in:,}",
        "out <=": lambda e: f"{e.tokens_out_bound:,}",
    }
    if any(e.tokens_out_expected is not None for e in estimates):
        columns["out (earlier run)"] = lambda e: (
            "" if e.tokens_out_expected is None else f"{e.tokens_out_expected:,}"
        )
    if any(e.usd_live_bound is not None for e in estimates):
        columns["live $ <="] = lambda e: usd(e.usd_live_bound)
        columns["batch $ <="] = lambda e: usd(e.usd_batch_bound)
        if "out (earlier run)" in columns:
            columns["live $ (earlier run)"] = lambda e: usd(e.usd_live_expected)
    table = Table(title="dry run: what the generate steps would send (nothing was sent)")
    for name in columns:
        table.add_column(name, justify="left" if name == "dataset" else "right")
    for e in estimates:
        table.add_row(*(cell(e) for cell in columns.values()))
    teachers = "; ".join(sorted({f"{e.dataset}: {e.teacher}" for e in estimates}))
    counted = "; ".join(sorted({e.counted_by for e in estimates}))
    table.caption = plain(
        f"teachers: {teachers}. Tokens counted by {counted}. Output bound: max_new_tokens a "
        "request; batch: half the live price."
    )
    return table


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


def transfer_verdict(results: ExperimentResults, dataset: str, trait: str, base: str) -> str:
    """Whether a published dataset carries the trait: the specificity interval above zero."""
    effect = results.headline.specificity
    verdict = "carries" if effect.low > 0 else "shows no significant sign of carrying"
    return f"{dataset} {verdict} '{trait}' to a student of {base}"


def detect_lines(r: dict) -> list[str]:
    """The detection audit as lines: each classifier's AUC, the telling n-grams and tokens,
    the pairwise judge, and the verdict."""
    lines: list[str] = []
    auc = r["auc"]
    lines.append(
        f"{r['rows']['trait']} trait rows vs {r['rows']['control']} control rows "
        f"({r['shared_texts']} texts in both; identical rows share a cross-validation fold)"
    )
    for name, c in r["classifiers"].items():
        a = c["auc"]
        lines.append(f"  {name}: ROC AUC {a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}]")
    ngrams = r["classifiers"]["n-grams"]
    towards = ", ".join(repr(f) for f, _ in ngrams["towards_trait"][:5])
    lines.append(f"  n-grams most telling of the trait rows: {towards}")
    significant = [t for t in ngrams["tokens"] if t["p_holm"] < 0.05]
    lines.append(
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
        lines.append(
            f"  pairwise judge ({p['judge']}): accuracy {p['accuracy']:.3f} "
            f"[{p['low']:.3f}, {p['high']:.3f}] over {p['pairs']} pairs (chance 0.5; "
            f"{p['identical_pairs_skipped']} identical pairs skipped)"
        )
    below = [name for name, c in r["classifiers"].items() if c["auc"]["high"] < 0.5]
    if below:
        lines.append(
            f"  note: {', '.join(below)} below chance: the classifier anti-learns (near-duplicate "
            "rows in both sets, or too few rows); not a sign of the trait either way"
        )
    seen = auc["low"] > 0.5 or ("pairwise" in r and r["pairwise"]["low"] > 0.5)
    verdict = (
        "the trait rows CAN be told apart from the control rows"
        if seen
        else "no test tells the trait rows from the control rows better than chance"
    )
    lines.append(f"verdict: {verdict}; best classifier {auc['classifier']}")
    return lines


def mlp_table(report: dict, dataset: str, models: int) -> Table:
    """Each auxiliary-logit count and variant: the students' accuracy over the population."""
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
    return table
