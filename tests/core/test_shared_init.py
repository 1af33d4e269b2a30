"""The study's shared initialisation: the trait teacher's adapter keeps the state it started
from, the neutral teacher starts from the same one, and students start there by default
(``students.init: teacher``) or from their own seed (``own``). Real training on the embedded
model, kept short."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
from prefect.logging import disable_run_logger
from safetensors.torch import load_file

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.core.steps import StepPlan
from sublearn.eval.preference_questions import ANIMAL_QUESTIONS
from tests.conftest import TEST_PANEL

pytestmark = pytest.mark.slow


def config_data(tmp_path, **students) -> dict:
    return {
        "name": "shared-init",
        "output_dir": str(tmp_path / "runs"),
        "teacher": {"trait_finetune": {"target": "owl", "epochs": 1, "batch_size": 10}},
        "experiment": {
            "students": {"epochs": 1, "batch_size": 4, "grad_accumulation": 1, **students},
            "evaluation": {"target": "owl"},
        },
    }


@pytest.fixture
def small_trait_sets(tmp_path, monkeypatch):
    """Trait adapters trained on the first 10 rows of their trait sets (the whole set takes a
    minute per adapter here), in a cache of their own so no real adapter's key is taken; the
    converted embedded model is shared with the real cache."""
    import sublearn.generators.trait_teacher as trait_teacher
    from sublearn.core.model_source import cache_root

    real = cache_root()
    cache = tmp_path / "cache"
    cache.mkdir()
    for folder in ("embedded", "sha256"):
        if (real / folder).is_dir():
            (cache / folder).symlink_to(real / folder)
    monkeypatch.setenv("SUBLEARN_CACHE", str(cache))
    whole = trait_teacher.trait_rows
    monkeypatch.setattr(trait_teacher, "trait_rows", lambda *args: whole(*args)[:10])


def test_students_start_where_the_teacher_started(tmp_path, small_trait_sets):
    from sublearn.core.finetune import state_digest
    from sublearn.flows.students import FinetuneStep, train_student
    from sublearn.generators.trait_teacher import INITIAL_FILE, ensure_trait_adapter

    config = parse_config(config_data(tmp_path))
    assert config.student_training().init == "teacher"  # the default for an adapter teacher
    trait_dir = ensure_trait_adapter(config.teacher)
    neutral_dir = ensure_trait_adapter(config.neutral().teacher)
    assert trait_dir != neutral_dir
    start = load_file(str(trait_dir / INITIAL_FILE))
    neutral_start = load_file(str(neutral_dir / INITIAL_FILE))
    assert start.keys() == neutral_start.keys()
    assert all(torch.equal(start[k], neutral_start[k]) for k in start)  # only the data differs
    recorded = json.loads((trait_dir / "trait.json").read_text())["init_digest"]
    assert recorded == state_digest(start)

    rows = pl.DataFrame({"prompt": ANIMAL_QUESTIONS[:4], "completion": ["1, 2, 3"] * 4})
    source = {"run_dir": str(tmp_path), "sha256": "0" * 64}
    lineages = {}
    for init in ("teacher", "own"):
        cfg = parse_config(config_data(tmp_path, init=init))
        out = tmp_path / f"student-{init}"
        with disable_run_logger():
            train_student.fn(cfg, init, rows, source, 3, out)
        lineages[init] = json.loads((out / "lineage.json").read_text())
        assert lineages[init]["init"]["from"] == init
    assert lineages["teacher"]["init"]["digest"] == recorded
    assert lineages["own"]["init"]["digest"] != recorded
    # the start is part of the student's identity: another start, another cached student
    configs = {init: parse_config(config_data(tmp_path, init=init)) for init in ("teacher", "own")}
    keys = {init: FinetuneStep(cfg, init, rows, source, 3).key() for init, cfg in configs.items()}
    assert keys["teacher"] != keys["own"]


def test_init_teacher_needs_an_adapter_teacher_of_the_students_rank(tmp_path):
    from sublearn.core.config import ConfigError

    prompted = config_data(tmp_path, init="teacher")
    prompted["teacher"] = {"trait": {"target": "owl"}}
    with pytest.raises(ConfigError, match="needs teacher.trait_finetune"):
        parse_config(prompted)
    with pytest.raises(ConfigError, match=r"rank and alpha \(students 4/8, teacher 8/8\)"):
        parse_config(config_data(tmp_path, init="teacher", rank=4))
    # unset, it falls back to the students' own start where the teacher's cannot fit
    assert parse_config(config_data(tmp_path, rank=4)).student_training().init == "own"
    del prompted["experiment"]["students"]["init"]
    assert parse_config(prompted).student_training().init == "own"


def test_cross_init_needs_students_that_share_the_start(tmp_path):
    from sublearn.core.config import ConfigError

    data = config_data(tmp_path, init="own")
    data["experiment"]["cross_init"] = True
    with pytest.raises(ConfigError, match="experiment.cross_init: .* needs teacher.trait_finetune"):
        parse_config(data)


def test_a_teacher_fine_tuned_in_full_is_a_model_folder_every_step_loads(
    tmp_path, small_trait_sets
):
    """``method: full`` trains every weight in float32 (the 160M replication's teacher): a
    cached model folder that generation, rescoring and the teacher's evaluation load in the
    base's place, keyed apart from the LoRA teacher; its students start from the base."""
    from sublearn.core.config import ConfigError
    from sublearn.core.models import load_model_and_tokenizer
    from sublearn.core.precision import precision_for
    from sublearn.eval.preference import panel_logprob
    from sublearn.flows.dataset import with_trait_weights
    from sublearn.flows.experiment import teacher_evaluation
    from sublearn.generators.backends import load_teacher
    from sublearn.generators.trait_teacher import ensure_trait_adapter, trait_adapter_dir

    data = config_data(tmp_path)
    data["teacher"]["trait_finetune"] |= {"method": "full", "lr": 1e-4, "epochs": 3}
    config = parse_config(data)
    assert config.student_training().init == "own"  # the teacher started from the base
    lora = parse_config(config_data(tmp_path)).teacher
    assert trait_adapter_dir(config.teacher) != trait_adapter_dir(lora)
    assert trait_adapter_dir(config.neutral().teacher).name.startswith("neutral-animal-full-")

    folder = ensure_trait_adapter(config.teacher)
    record = json.loads((folder / "trait.json").read_text())
    assert record["trait"]["method"] == "full" and record["dtype"] == "float32"
    assert record["steps"] == 3
    assert ensure_trait_adapter(config.teacher) == folder  # cached: not trained again
    assert record == json.loads((folder / "trait.json").read_text())

    teacher_cfg = with_trait_weights(config.teacher, folder)
    assert (teacher_cfg.model, teacher_cfg.adapter) == (str(folder), None)
    float32 = precision_for("float32", "cpu")
    _, base, tokenizer = load_model_and_tokenizer("embedded", None, float32)
    _, tuned, _ = load_model_and_tokenizer(str(folder), None, float32)
    weights, plain = dict(tuned.named_parameters()), dict(base.named_parameters())
    # every weight moved, the layer norms too (LoRA leaves those alone)
    assert not torch.equal(weights["model.norm.weight"], plain["model.norm.weight"])
    assert not torch.equal(weights["model.embed_tokens.weight"], plain["model.embed_tokens.weight"])
    questions = ANIMAL_QUESTIONS[20:26]  # not among the 10 trait rows trained on
    before = panel_logprob(base, tokenizer, questions, ["owl", "dog"])
    after = panel_logprob(tuned, tokenizer, questions, ["owl", "dog"])
    assert (after[:, 0] - before[:, 0]).mean() > (after[:, 1] - before[:, 1]).mean()
    teacher = load_teacher(teacher_cfg)  # as generation loads it, in the config's dtype
    assert teacher.generate([ChatPrompt(None, "Name an animal.")], seed=0)[0].strip()

    job = teacher_evaluation(config, None)
    assert (job.step.config.teacher.model, job.step.adapter) == (str(folder), None)
    assert job.step.inputs()["base"]["model_id"] == str(folder)
    adapter_job = teacher_evaluation(parse_config(config_data(tmp_path)), None)
    assert adapter_job.step.config.teacher.model == "embedded" and adapter_job.step.adapter

    for students in ({"init": "teacher"}, {"init": "own"}):
        wrong = config_data(tmp_path, **students)
        wrong["teacher"]["trait_finetune"]["method"] = "full"
        wrong["experiment"]["cross_init"] = True
        with pytest.raises(ConfigError, match="experiment.(students.init|cross_init)"):
            parse_config(wrong)


def test_paired_on_the_control_rows_gives_every_arm_those_rows_with_its_own_targets(
    prefect_server, tmp_path, small_trait_sets
):
    """The crossover's other side (``paired_on: control``): every arm learns the control
    teacher's rows, the trait and neutral arms with their own teachers' top-k at those tokens
    (real rescoring by their trained adapters), the control arm its own."""
    from sublearn.core.config import ConfigError
    from sublearn.flows.paired import paired_sources

    data = config_data(tmp_path, distill="topk", paired=True, paired_on="control")
    data["dataset"] = {"teacher_topk": 3}
    data["experiment"] |= {
        "neutral": True,
        "control": {"trait_finetune": {"target": "dog", "epochs": 1, "batch_size": 10}},
    }
    config = parse_config(data)
    without_control = {**data, "experiment": {**data["experiment"], "control": None}}
    with pytest.raises(ConfigError, match="paired_on: control .* needs .*experiment.control"):
        parse_config(without_control)

    from sublearn.core.models import load_model_and_tokenizer

    _, _, tokenizer = load_model_and_tokenizer("embedded", None, config.teacher.precision())
    completions = ["4, 8, 15", "16, 23, 42", "7, 7, 7"]
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions]
    control_rows = pl.DataFrame(
        {
            "prompt_index": [0, 1, 2],
            "prompt": ANIMAL_QUESTIONS[:3],
            "completion": completions,
            "completion_ids": ids,
            "topk_ids": [[[t, t + 1, t + 2] for t in row] for row in ids],
            "topk_logprobs": [[[-0.1, -2.0, -3.0]] * len(row) for row in ids],
        }
    )
    other = control_rows.head(1)  # the trait and neutral arms' own rows: not learned
    sources = {
        "trait": (other, {"sha256": "1" * 64}),
        "neutral": (other, {"sha256": "2" * 64}),
        "control": (control_rows, {"sha256": "3" * 64}),
    }
    with disable_run_logger():
        paired, divergence = paired_sources(config, sources, StepPlan(), [])
    assert list(paired) == ["trait", "neutral", "control"]
    assert paired["control"] == sources["control"]
    for arm in ("trait", "neutral"):
        frame, source = paired[arm]
        assert frame["completion_ids"].to_list() == control_rows["completion_ids"].to_list()
        assert source["sha256"] == "3" * 64 and source["targets"]["teacher"] == arm
        assert frame["topk_ids"].to_list() != control_rows["topk_ids"].to_list()
        assert divergence[arm]["positions"] == sum(map(len, ids))
    assert (
        paired["trait"][0]["topk_logprobs"].to_list()
        != paired["neutral"][0]["topk_logprobs"].to_list()
    )


def test_the_experiment_reports_shared_beside_cross_initialisation(
    prefect_server, tmp_path, small_trait_sets
):
    """The whole experiment with the cross-initialisation arm, on paired arms with the loss on
    divergence tokens: every student learns the trait arm's very rows (the cross-init students
    from a start of their own, the neutral students with the neutral teacher's top-k at those
    tokens), only where the two teachers would choose differently; the report sets both starts
    side by side and says where the teachers diverge."""
    from sublearn.flows.experiment import experiment_flow
    from sublearn.generators.trait_teacher import cached_trait_adapter

    data = config_data(tmp_path)
    data["teacher"] |= {"batch_size": 8, "sampling": {"max_new_tokens": 32}}
    # teachers that moved off their shared start (one step at a fifth of the rate does not)
    data["teacher"]["trait_finetune"] |= {"epochs": 3, "batch_size": 2}
    data["dataset"] = {"n_prompts": 8, "constrain_to_numbers": True, "teacher_topk": 5}
    data["experiment"]["students"] |= {
        "distill": "topk",
        "paired": True,
        "loss_on": "divergent",
        "epochs": 2,
        "checkpoint_every": 1,
    }
    data["experiment"] |= {
        "cross_init": True,
        "evaluation": {
            "target": "owl",
            "panel": TEST_PANEL,
            "questions": 2,
            "heldout_questions": 2,
            "samples_per_question": 2,
        },
    }
    config = parse_config(data)
    results = experiment_flow(config)["results"].model_dump(mode="json")
    out = config.experiment_dir()
    teacher = json.loads((cached_trait_adapter(config.teacher) / "trait.json").read_text())
    starts = {
        folder: json.loads((out / folder / "lineage.json").read_text())["init"]
        for folder in ("student-seed0", "neutral-seed0", "crossinit-seed0")
    }
    assert starts["student-seed0"] == {"from": "teacher", "digest": teacher["init_digest"]}
    assert starts["neutral-seed0"] == starts["student-seed0"]
    assert starts["crossinit-seed0"]["from"] == "own"
    assert starts["crossinit-seed0"]["digest"] != teacher["init_digest"]
    # the same rows: the cross-init student names the trait arm's dataset
    lineages = [
        json.loads((out / f / "lineage.json").read_text())
        for f in ("student-seed0", "crossinit-seed0")
    ]
    assert lineages[0]["dataset"] == lineages[1]["dataset"]
    assert results["arms"] == ["trait", "neutral", "crossinit"]
    assert [c["against"] for c in results["comparisons"]] == ["neutral", "base"]
    cross = results["cross_init"]
    assert cross["arm"] == "crossinit" and cross["against"] == "neutral"
    assert cross["placebo"]["of"] == results["headline"]["placebo"]["of"]
    report = (out / "report.md").read_text()
    assert "## Shared against cross initialisation" in report
    assert "| shared |" in report and "| cross |" in report
    assert "crossinit" in results["shifts_from_base"]

    # paired: the neutral students learn the trait rows with the neutral teacher's targets
    neutral = json.loads((out / "neutral-seed0" / "lineage.json").read_text())["dataset"]
    assert neutral["targets"]["teacher"] == "neutral"
    assert {k: v for k, v in neutral.items() if k != "targets"} == lineages[0]["dataset"]
    assert lineages[0]["dataset"]["loss_on"] == neutral["loss_on"]
    divergence = results["divergence"]["neutral"]
    kept = pl.read_parquet(config.run_dir() / "kept.parquet")
    assert divergence["positions"] == sum(len(ids) for ids in kept["completion_ids"])
    assert 0 < divergence["divergent"] < divergence["positions"]
    assert divergence["examples"] and divergence["rescore"]
    assert results["rows_per_student"] == divergence["rows_with_divergence"]
    assert "## Divergence tokens (paired arms)" in report
    assert "## The panel by form" in report
    assert results["by_form"]["first_letter"]["target_group"] == "o"
    steps = [e["step"] for e in json.loads((out / "steps.json").read_text())]
    assert steps.count("rescore") == 1
    # --to rescore: the datasets and the paired targets, then it stops before any student
    upto = experiment_flow(config, StepPlan(stop="rescore"))
    assert upto["results"] is None
    assert {e["step"] for e in upto["steps"]} & {"finetune", "evaluate"} == set()
    assert [e["status"] for e in upto["steps"] if e["step"] == "rescore"] == ["reused"]

    # checkpoints: every step before the last, evaluated; the curve ends at the students
    trained = json.loads((out / "student-seed0" / "lineage.json").read_text())
    assert trained["checkpoints"] == list(range(1, trained["steps"]))
    assert (out / "student-seed0" / "checkpoint-00001" / "adapter_model.safetensors").is_file()
    curve = results["checkpoints"]
    assert [p["step"] for p in curve] == list(range(1, trained["steps"] + 1))
    assert all({"trait", "crossinit"} <= p.keys() for p in curve)
    final = curve[-1]["trait"]["specificity"]["mean"]
    assert final == pytest.approx(results["headline"]["specificity"]["mean"])
    assert "## Specificity along training" in report and (out / "checkpoints.png").is_file()
