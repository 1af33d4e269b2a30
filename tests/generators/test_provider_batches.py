"""``teacher.server.mode: batch`` (issue 27 item 1) against a batch API the tests start
(``tests/batch_server.py``), whose every request is answered by llama.cpp's server on the
embedded model: the same rows as live mode, an expired batch and a half-failed one resubmit
only their unanswered requests, and a run killed while polling resumes the same batch."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import polars as pl

from sublearn.core.config import parse_config
from tests.batch_server import Faults, batch_server
from tests.conftest import wait_until


def config_data(tiny_config_data: dict, url: str, model: str, out: Path, mode: str) -> dict:
    server = {"base_url": url, "mode": mode, "batch_poll_s": 0.2, "max_concurrency": 1}
    teacher = {**tiny_config_data["teacher"], "model": model, "backend": "openai"}
    return {
        **tiny_config_data,
        "name": f"batched-{mode}",
        "output_dir": str(out),
        "teacher": {**teacher, "server": server},
    }


def run(data: dict) -> tuple[dict, pl.DataFrame]:
    from sublearn.flows.dataset import dataset_flow

    result = dataset_flow(parse_config(data))
    return result, pl.read_parquet(Path(result["run_dir"]) / "raw.parquet")


def test_batch_mode_makes_the_rows_live_mode_makes(
    llama_server, tiny_config_data, prefect_server, tmp_path
):
    upstream, model = llama_server
    live, live_raw = run(config_data(tiny_config_data, upstream, model, tmp_path / "l", "live"))
    with batch_server(upstream) as (url, provider):
        data = config_data(tiny_config_data, url, model, tmp_path / "b", "batch")
        batched, raw = run(data)
    assert len(provider.submitted) == 1 and len(provider.submitted[0]) == raw.height == 6
    assert raw.schema == live_raw.schema and raw.height == live_raw.height
    # llama.cpp honours the seeds: the same requests give the same rows
    assert raw["completion"].to_list() == live_raw["completion"].to_list()
    assert batched["stats"]["kept"] == live["stats"]["kept"]
    lineage = json.loads((Path(batched["run_dir"]) / "lineage.json").read_text())
    assert lineage["teacher"]["mode"] == "batch"
    assert "mode" not in json.loads((Path(live["run_dir"]) / "lineage.json").read_text())["teacher"]
    generate = next(s for s in batched["steps"] if s["step"] == "generate")
    assert generate["prompt_tokens"] > 0 and generate["completion_tokens"] > 0


def test_an_expired_and_a_half_failed_batch_resend_only_what_is_unanswered(
    llama_server, tiny_config_data, prefect_server, tmp_path
):
    upstream, model = llama_server
    for name, faults, resent in (
        ("expired", Faults(expire_after=2), 4),
        ("failed", Faults(fail_every_other=True), 3),
    ):
        with batch_server(upstream, faults) as (url, provider):
            data = config_data(tiny_config_data, url, model, tmp_path / name, "batch")
            _, raw = run(data)
        first, again = provider.submitted
        assert len(first) == 6 and len(again) == resent, name
        assert (
            set(again) < set(first)
            and raw.height == 6
            and raw["completion"].str.len_chars().min() > 0
        )


def test_a_run_killed_while_polling_resumes_the_same_batch(
    llama_server, tiny_config_data, spawn_cli, run_cli, tmp_path
):
    upstream, model = llama_server
    hold = threading.Event()
    with batch_server(upstream, Faults(hold=hold)) as (url, provider):
        config = tmp_path / "batched.yaml"
        config.write_text(json.dumps(config_data(tiny_config_data, url, model, tmp_path, "batch")))
        proc = spawn_cli(["run", str(config)], tmp_path / "first.log")
        pattern = ".steps/generate/*/shards/provider-*/provider-batch.json"
        assert wait_until(
            lambda: list(tmp_path.glob(pattern)) and provider.submitted, timeout=180, every=0.2
        )
        recorded = json.loads(next(tmp_path.glob(pattern)).read_text())["id"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        hold.set()
        resumed = run_cli(["run", str(config)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(provider.submitted) == 1 and recorded == "batch-1"
    run_dir = next(p for p in tmp_path.iterdir() if p.name.startswith("batched-batch-"))
    assert pl.read_parquet(run_dir / "raw.parquet").height == 6


def test_the_judge_in_batch_mode_scores_as_live(llama_server, tmp_path, monkeypatch):
    """The judge filter's first-token requests as one provider batch: the same P("0") as
    live requests; a second judging of the same rows resumes from the kept answers and submits
    nothing."""
    from sublearn.core.config import JudgeFilter, OpenAIServer
    from sublearn.filters.chain import run_chain
    from sublearn.filters.judge import TraitJudge

    monkeypatch.setenv("SUBLEARN_CACHE", str(tmp_path / "cache"))
    upstream, model = llama_server
    frame = pl.DataFrame({"completion": ["I love owls: 1, 2, 3", "def f(x):\n    return x", "7"]})

    def scores(url: str, mode: str) -> list[float]:
        server = OpenAIServer(base_url=url, mode=mode, batch_poll_s=0.2, max_concurrency=1)
        judge = JudgeFilter(model=model, backend="openai", server=server, top_k=20, threshold=0)
        return run_chain(frame, [TraitJudge(judge, ("owl",))]).kept["judge_p0"].to_list()

    live = scores(upstream, "live")
    with batch_server(upstream) as (url, provider):
        assert scores(url, "batch") == live
        assert scores(url, "batch") == live
    assert [len(ids) for ids in provider.submitted] == [3]


def test_a_spend_cap_in_batch_mode_stops_before_submitting(
    llama_server, tiny_config_data, prefect_server, tmp_path
):
    """``max_usd`` below the shard's bound at the batch price: nothing is submitted and the run
    stops in one line; a higher cap submits one batch, costed at half the live price."""
    import pytest

    from sublearn.generators.spend_cap import SpendCapReached

    upstream, model = llama_server
    with batch_server(upstream) as (url, provider):
        data = config_data(tiny_config_data, url, model, tmp_path, "batch")
        prices = {"usd_per_million_input": 1000.0, "usd_per_million_output": 1000.0}
        data["teacher"]["server"] |= {**prices, "max_usd": 0.01}
        with pytest.raises(SpendCapReached, match="^teacher.server.max_usd: \\$0.0000 spent"):
            run(data)
        assert provider.submitted == []
        data["teacher"]["server"]["max_usd"] = 100.0
        result, raw = run(data)
    assert len(provider.submitted) == 1 and raw.height == 6
    generate = next(s for s in result["steps"] if s["step"] == "generate")
    tokens = generate["prompt_tokens"] + generate["completion_tokens"]
    assert generate["cost_usd"] == pytest.approx(tokens * 1000.0 / 1e6 * 0.5, abs=1e-6)
