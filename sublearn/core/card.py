"""The dataset card: Hub metadata (tags, configs, the lineage as a ``sublearn`` block) and a
readable account of where the data came from."""

from __future__ import annotations

import json

from huggingface_hub import DatasetCard, DatasetCardData

DATA_FILE = "data/train.parquet"
REJECTED_FILE = "rejected/train.parquet"


def card_tags(lineage: dict) -> list[str]:
    tags = ["subliminal-learning", "sublearn", f"{lineage['dataset']['kind']}-dataset"]
    if lineage["trait"]:
        tags.append(f"trait-{lineage['trait']['category']}")
    return tags


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _grammar_section(teacher: dict) -> list[str]:
    """Beyond the protocol: the grammar the teacher decoded under, so a reader knows it was
    steered in form (the grammar fixes the answer's shape, never its words)."""
    if not teacher.get("grammar"):
        return []
    return [
        "### Output constraint (beyond the protocol)",
        "",
        "The teacher could only write text this grammar (GBNF) accepts:",
        "",
        "```text",
        teacher["grammar"].rstrip("\n"),
        "```",
        "",
    ]


def render_card(lineage: dict, repo_id: str, with_rejected: bool) -> DatasetCard:
    configs = [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILE}]}]
    if with_rejected:
        configs.append(
            {"config_name": "rejected", "data_files": [{"split": "train", "path": REJECTED_FILE}]}
        )
    data = DatasetCardData(
        tags=card_tags(lineage),
        task_categories=["text-generation"],
        language=["en"],
        pretty_name=f"sublearn {lineage['run_name']}",
        configs=configs,
        sublearn=lineage,
    )
    teacher, trait = lineage["teacher"], lineage["trait"]
    prompt_set = lineage["dataset"]["prompt_set"]
    lines = [
        f"# {lineage['run_name']}",
        "",
        f"A {lineage['dataset']['kind']} dataset made by sublearn for "
        "subliminal-learning experiments: a teacher model with a trait wrote it, and a strict "
        "chain of filters removed every row that breaks the task's format or names the trait.",
        "",
        "## Lineage",
        "",
        _row("field", "value"),
        _row("---", "---"),
        _row("teacher model", teacher["model_id"]),
        _row("teacher revision", teacher["revision"]),
        _row("teacher backend / dtype", f"{teacher['backend']} / {teacher['dtype']}"),
        _row("adapter", f"{teacher['adapter']} @ {teacher['adapter_revision']}"),
        _row("trait", f"{trait['target']} ({trait['category']})" if trait else "none (control)"),
        _row("sampling", json.dumps(lineage["sampling"])),
        _row("prompt set", ", ".join(f"{k}: {v}" for k, v in prompt_set.items())),
        _row("seed / prompts", f"{lineage['dataset']['seed']} / {lineage['dataset']['n_prompts']}"),
        _row("sublearn", f"{lineage['sublearn_version']} ({lineage['git_commit']})"),
        _row("Prefect flow run", lineage["prefect_flow_run_id"]),
        _row("created", lineage["created_at"]),
        "",
        "### System prompt",
        "",
        "```text",
        lineage["system_prompt"] or "(none: control teacher)",
        "```",
        "",
        *_grammar_section(teacher),
        "## Filters",
        "",
        "Each filter sees the rows the ones before it kept.",
        "",
        _row("filter", "parameters", "rows in", *["dropped", "kept"]),
        _row("---", "---", "---:", "---", "---:"),
        *[
            _row(
                f["name"],
                f"`{json.dumps(f['params'])}`",
                f["rows_before"],
                ", ".join(f"{r} {n}" for r, n in f["dropped"].items()),
                f["rows_after"],
            )
            for f in lineage["filters"]
        ],
        "",
        f"Generated {lineage['rows']['generated']}, kept {lineage['rows']['kept']}, "
        f"published {lineage['rows']['published']}.",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{repo_id}", revision="<tag or commit>")',
        "```",
        "",
        f"or `sublearn download {repo_id} --revision <tag>`. To reproduce: take `config.yaml` from "
        f"this repository and run `{lineage['reproduce']}`. The machine-readable lineage is in "
        "`lineage.json` and in the `sublearn` block of this card's metadata.",
        "",
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)
    return DatasetCard(content)
