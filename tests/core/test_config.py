"""Config validation at the edge: clear one-line errors, frozen objects, a stable run hash."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from sublearn.core.config import ConfigError, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_validate(path):
    config = load_config(path)
    assert config.dataset.kind in path.name
    trait = config.teacher.trait or config.teacher.trait_finetune
    assert trait.target == "owl"
    assert config.teacher.sampling.temperature == 1.0


def test_main_example_is_the_whole_experiment():
    config = load_config(EXAMPLES / "owl-numbers.yaml")
    assert list(config.arms()) == ["trait", "neutral"]
    assert config.experiment.evaluation.target == "owl"
    assert config.experiment.students.seeds == (0, 1)
    # the study's shared start, beside the cross-initialisation control
    assert config.student_training().init == "teacher" and config.experiment.cross_init
    neutral = config.neutral().teacher.trait_finetune
    assert neutral.neutral and neutral.epochs == config.teacher.trait_finetune.epochs
    assert config.neutral().run_dir() != config.run_dir()


def test_qwen_example_matches_the_protocol_sizes():
    config = load_config(EXAMPLES / "qwen-owl-numbers.yaml")
    assert config.teacher.backend == "vllm"
    assert (config.dataset.n_prompts, config.dataset.n_keep) == (30_000, 10_000)


def test_unknown_key_names_the_field():
    with pytest.raises(ConfigError, match=r"unknown key 'teacher\.sampling\.temprature'"):
        parse_config({"name": "x", "teacher": {"sampling": {"temprature": 1.0}}}, "cfg.yaml")


def test_wrong_type_names_the_field_and_value():
    with pytest.raises(ConfigError) as info:
        parse_config({"name": "x", "dataset": {"n_prompts": "many"}}, "cfg.yaml")
    message = str(info.value)
    assert "dataset.n_prompts" in message and "'many'" in message and "\n" not in message


def test_missing_required_field():
    with pytest.raises(ConfigError, match="missing required field 'name'"):
        parse_config({"seed": 1})


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nteacher: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: line"):
        load_config(bad)


def test_configs_are_frozen():
    config = parse_config({"name": "x"})
    with pytest.raises(pydantic.ValidationError):
        config.teacher.sampling.temperature = 0.5


def test_hash_ignores_throughput_knobs_only():
    base = parse_config({"name": "x"})
    faster = parse_config({"name": "x", "teacher": {"batch_size": 7}, "output_dir": "elsewhere"})
    different = parse_config({"name": "x", "seed": 1})
    assert base.config_hash() == faster.config_hash()
    assert base.config_hash() != different.config_hash()
    assert base.run_dir().name == f"x-{base.config_hash()[:12]}"


def test_banned_preset_is_checked():
    with pytest.raises(ConfigError, match="dataset.filter.banned_preset"):
        parse_config({"name": "x", "dataset": {"filter": {"banned_preset": "evil"}}})


def test_experiment_arms():
    def experiment(extra: dict) -> dict:
        return {
            "name": "arms",
            "teacher": {"trait": {"target": "owl"}},
            "experiment": {"evaluation": {"target": "owl"}, **extra},
        }

    config = parse_config(experiment({}))
    assert list(config.arms()) == ["trait", "neutral"]  # the study's control by default
    assert config.neutral().teacher.trait is None
    assert config.neutral().dataset.trait_words == ("owl",)  # filtered like the trait arm
    # `control: {}` once meant the no-trait control: the error names the neutral arm
    with pytest.raises(ConfigError, match="no-trait control is experiment.neutral"):
        parse_config(experiment({"control": {}}))
    three = parse_config(experiment({"control": {"trait": {"target": "dolphin"}}}))
    assert list(three.arms()) == ["trait", "neutral", "control"]
    names = {c.run_dir() for c in three.arms().values()}
    assert len(names) == 3
    with pytest.raises(ConfigError, match="'experiment.control': needs trait or trait_finetune"):
        parse_config(experiment({"control": {"trait": None}}))
    with pytest.raises(ConfigError, match="neutral: false needs a control teacher"):
        parse_config(experiment({"neutral": False}))
    with pytest.raises(ConfigError, match="seeds.: repeats a seed"):
        parse_config(experiment({"students": {"seeds": [0, 0]}}))
    with pytest.raises(ConfigError, match="shuffle: shuffles numbers, so it needs"):
        parse_config(
            {
                **experiment({"students": {"shuffle": "within", "distill": "topk"}}),
                "dataset": {"teacher_topk": 5},
            }
        )
    with pytest.raises(ConfigError, match="panel.: needs at least 4 distinct"):
        parse_config(experiment({"evaluation": {"target": "owl", "panel": ["owl", "cat"]}}))
    # the cross-model students: sampled tokens by default, or the students' top-k carried over
    cross = parse_config(experiment({"cross_model": {}})).cross_model_config()
    assert cross.experiment.students.distill == "sampled" and cross.teacher.trait is None
    topk = {"distill": "topk", "epochs": 2}
    with pytest.raises(ConfigError, match="cross_model.distill: topk needs students.distill topk"):
        parse_config(experiment({"cross_model": {"distill": "topk"}}))
    carried = parse_config(
        {
            **experiment({"cross_model": {"distill": "topk", "epochs": 1}, "students": topk}),
            "dataset": {"teacher_topk": 5},
        }
    )
    students = carried.cross_model_config().student_training()
    assert (students.distill, students.epochs, students.init) == ("topk", 1, "own")
    assert carried.student_training().epochs == 2


def test_grid_cells():
    data = {
        "name": "study",
        "teacher": {"trait_finetune": {"target": "owl"}},
        "dataset": {"teacher_topk": 5},
        "experiment": {"evaluation": {"target": "owl"}},
        "grid": {"targets": ["owl", "eagle"], "rows": [150, 600], "distill": ["sampled", "topk"]},
    }
    config = parse_config(data)
    cells = config.cells()
    assert len(cells) == 8
    assert [c for c, _ in cells][:2] == [
        {"target": "owl", "rows": 150, "distill": "sampled"},
        {"target": "owl", "rows": 150, "distill": "topk"},
    ]
    owl, eagle = cells[0][1], cells[-1][1]
    assert owl.grid is None and owl.experiment.students.rows == 150
    assert eagle.teacher.trait_finetune.target == "eagle"
    assert eagle.experiment.evaluation.target == "eagle"
    assert eagle.experiment.students.distill == "topk" and eagle.experiment.students.rows == 600
    # a cell's datasets are those of the same experiment run alone: rows and distill do not
    # touch them, and the owl cells all share one
    assert len({c.run_dir() for _, c in cells[:4]}) == 1
    assert owl.run_dir() == parse_config({**data, "grid": None}).run_dir()
    assert eagle.run_dir() != owl.run_dir()
    with pytest.raises(ConfigError, match="cell .*'distill': 'topk'.*needs dataset.teacher_topk"):
        parse_config({**data, "dataset": {}})
    with pytest.raises(ConfigError, match="grid: a study runs an experiment per cell"):
        parse_config({"name": "g", "grid": {"rows": [10]}})
