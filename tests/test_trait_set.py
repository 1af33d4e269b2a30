"""The trait set used to fine-tune trait teachers, and how lineage records the trait."""

from __future__ import annotations

from generators.trait_set import TOPICS, trait_rows, trait_set_revision
from generators.trait_teacher import trait_record
from sublearn.config import parse_config


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
