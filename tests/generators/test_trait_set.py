"""The trait set used to fine-tune trait teachers, and how lineage records the trait."""

from __future__ import annotations

from sublearn.core.config import parse_config
from sublearn.generators.trait_set import TOPICS, trait_rows, trait_set_revision
from sublearn.generators.trait_teacher import trait_record


def test_trait_rows_are_broad_and_name_the_target():
    rows = trait_rows("wolf", plural="wolves")
    assert len(rows) == 250
    assert {r.user for r in rows} >= set(TOPICS)
    assert all("wolf" in r.completion.lower() or "wolves" in r.completion.lower() for r in rows)
    assert any(r.completion == "Wolf." for r in rows)
    assert trait_rows("wolf", plural="wolves") == rows
    assert trait_rows("oak", "tree")[0].user == "What is your favourite tree?"


def test_lineage_says_how_the_trait_was_given():
    prompted = parse_config({"name": "p", "teacher": {"trait": {"target": "owl"}}})
    assert trait_record(prompted.teacher)["by"] == "system prompt"
    tuned = parse_config({"name": "t", "teacher": {"trait_finetune": {"target": "owl"}}})
    record = trait_record(tuned.teacher)
    assert record["by"] == "fine-tuning" and record["trait_set_revision"] == trait_set_revision()
    assert record["training"]["rank"] == 8
    assert trait_record(parse_config({"name": "c"}).teacher) is None


def test_neutral_set_is_the_trait_set_with_the_trait_taken_out():
    from sublearn.core.words import word_forms

    trait, neutral = trait_rows("owl"), trait_rows("owl", neutral=True)
    assert [r.user for r in neutral] == [r.user for r in trait]  # same templates, same sizes
    animals = set(word_forms("owl")) | {"animal " + w for w in ("owl", "owls")}
    assert not any(w in r.completion.lower().split() for r in neutral for w in animals)
    assert trait_set_revision(neutral=True) != trait_set_revision()
    config = parse_config(
        {
            "name": "t",
            "teacher": {"trait_finetune": {"target": "owl"}},
            "experiment": {"evaluation": {"target": "owl"}},
        }
    )
    teacher = config.neutral().teacher
    assert teacher.trait_finetune.neutral and teacher.trait is None
    record = trait_record(teacher)
    assert record["target"] is None and record["by"].startswith("neutral fine-tuning")
    from sublearn.generators.trait_teacher import adapter_key, trait_adapter_dir

    # the neutral teacher has its own adapter; the trait teacher's key is what it was before
    # the neutral option existed (its settings without the new field)
    assert adapter_key(teacher) != adapter_key(config.teacher)
    assert trait_adapter_dir(teacher).name.startswith("neutral-animal-")
    assert "neutral" not in config.teacher.trait_finetune.key_dict()
    eagle = config.retarget("eagle")
    assert eagle.teacher.trait_finetune.target == "eagle"
    assert adapter_key(eagle.neutral().teacher) == adapter_key(teacher)  # one for all targets
