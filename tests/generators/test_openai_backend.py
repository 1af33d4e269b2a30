"""``backend: openai`` against a real OpenAI-compatible server: ``transformers serve`` on the
embedded model, started by the test. The same dataset schema and lineage as the transformers
backend, seeds, server usage, and one-line failures; the key never lands in any file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import ConfigError, parse_config
from sublearn.filters.judge import TraitJudge
from sublearn.generators.backends import load_teacher
from sublearn.generators.openai_teacher import ServerError
from tests.conftest import error_line
from tests.servers import free_port

SECRET = "sk-test-do-not-leak-4d1f"


def served(data: dict, url: str, model: str) -> dict:
    teacher = {**data["teacher"], "model": model, "backend": "openai"}
    teacher["server"] = {"base_url": url, "max_concurrency": 4, "api_key_env": "SUBLEARN_TEST_KEY"}
    return {**data, "teacher": teacher}


def test_a_dataset_through_a_server_has_the_transformers_schema_and_lineage(
    openai_server, tiny_config_data, prefect_server, monkeypatch
):
    from sublearn.flows.dataset import dataset_flow

    monkeypatch.setenv("SUBLEARN_TEST_KEY", SECRET)
    url, model = openai_server
    # a seed no other test uses, so that this run generates rather than reusing a cached step
    data = {**tiny_config_data, "seed": 1234}
    local = dataset_flow(parse_config({**data, "name": "local"}))
    remote = dataset_flow(parse_config(served({**data, "name": "remote"}, url, model)))
    local_dir, remote_dir = Path(local["run_dir"]), Path(remote["run_dir"])

    import polars as pl

    for name in ("raw.parquet", "kept.parquet", "rejected.parquet"):
        assert pl.read_parquet(remote_dir / name).schema == pl.read_parquet(local_dir / name).schema
    raw = pl.read_parquet(remote_dir / "raw.parquet")
    assert raw.height == 6 and raw["completion"].str.len_chars().min() > 0
    lineage = [json.loads((d / "lineage.json").read_text()) for d in (local_dir, remote_dir)]
    assert lineage[0].keys() == lineage[1].keys()
    teacher = lineage[1]["teacher"]
    assert teacher["backend"] == "openai" and teacher["base_url"] == url
    assert teacher["model_id"] == model and teacher["dtype"] == "server"
    generate = next(s for s in remote["steps"] if s["step"] == "generate")
    assert generate["completion_tokens"] > 0 and generate["prompt_tokens"] > 0
    assert generate["tokens_per_s"] > 0
    files = [f for f in Path(tiny_config_data["output_dir"]).rglob("*") if f.is_file()]
    assert files and not [f for f in files if SECRET.encode() in f.read_bytes()]

    rerun = dataset_flow(parse_config(served({**data, "name": "remote"}, url, model)))
    assert {s["status"] for s in rerun["steps"]} == {"reused"}


def test_server_seeds_reproduce_and_failures_are_one_line(openai_server, tiny_config_data):
    url, model = openai_server
    teacher = load_teacher(parse_config(served(tiny_config_data, url, model)).teacher)
    prompts = [ChatPrompt("You love owls.", f"Continue: {i}, {i + 1}, {i + 2}") for i in range(4)]
    first = teacher.generate(prompts, seed=3)
    assert teacher.generate(prompts, seed=3) == first
    assert teacher.completion_tokens(first) > 0 and teacher.completion_tokens(first) == 0
    with pytest.raises(ServerError, match="returned no log-probs"):
        teacher.first_token_top(prompts[:1], 5)

    closed = served(tiny_config_data, f"http://127.0.0.1:{free_port()}/v1", model)
    closed["teacher"]["server"]["max_retries"] = 0
    with pytest.raises(ServerError, match=r"^http://127\.0\.0\.1:\d+/v1: cannot reach the server$"):
        load_teacher(parse_config(closed).teacher).generate(prompts[:1], seed=0)
    wrong = served(tiny_config_data, url, "no-such-model")
    with pytest.raises(ServerError, match=r"/v1: HTTP 4\d\d: "):
        load_teacher(parse_config(wrong).teacher).generate(prompts[:1], seed=0)


def test_what_a_server_cannot_do_is_refused_in_the_config(monkeypatch):
    base = {"name": "s", "teacher": {"model": "gpt-4.1-nano", "backend": "openai"}}
    openai = parse_config(base)
    assert openai.teacher.server.url == "https://api.openai.com/v1"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ServerError, match="^OPENAI_API_KEY: not set; OpenAI's API needs a key$"):
        load_teacher(openai.teacher).generate([ChatPrompt(None, "hi")], seed=0)
    finetuned = {**base["teacher"], "trait_finetune": {"target": "owl"}}
    with pytest.raises(ConfigError, match="trait_finetune: needs local weights"):
        parse_config({**base, "teacher": finetuned})
    numbers = {"kind": "numbers", "constrain_to_numbers": True}
    with pytest.raises(ConfigError, match="constrain_to_numbers, stop_after_numbers: not possible"):
        parse_config({**base, "dataset": numbers})
    with pytest.raises(ConfigError, match="server: only for backend openai"):
        parse_config({"name": "s", "teacher": {"server": {"base_url": "http://x/v1"}}})
    capped = {**base["teacher"], "server": {"max_usd": 5, "usd_per_million_input": 0.1}}
    with pytest.raises(ConfigError, match="max_usd needs usd_per_million_input and usd_per_mil"):
        parse_config({**base, "teacher": capped})
    experiment = {"evaluation": {"target": "owl"}}
    with pytest.raises(ConfigError, match="experiment: students fine-tune the teacher's local"):
        parse_config({**base, "experiment": experiment})
    # a judge on OpenAI's API needs no server section either, and records where it ran
    judge = {"judge": {"model": "gpt-4.1-nano", "backend": "openai"}}
    judged = parse_config({**base, "teacher": {"trait": {"target": "owl"}}, "filters": judge})
    params = TraitJudge(judged.filters.judge, ("owl",)).params()
    assert params["model"]["model_id"] == "gpt-4.1-nano" and params["backend"] == "openai"
    with pytest.raises(ConfigError, match="server: only for backend openai"):
        parse_config({**base, "filters": {"judge": {"server": {"base_url": "http://x/v1"}}}})


def test_the_judge_reads_log_probs_from_a_server_as_from_local_weights(llama_server):
    """The same judge prompt on the same weights: P("0") through the server's top_logprobs
    agrees with the transformers backend's within a factor of 2 (the server computes with the
    4-bit weights directly, locally they are dequantised)."""
    import math

    import polars as pl

    from sublearn.core.config import JudgeFilter, OpenAIServer
    from sublearn.filters.chain import run_chain
    from sublearn.filters.judge import TraitJudge, judge_teacher_config

    url, model = llama_server
    server = OpenAIServer(base_url=url, max_concurrency=2)
    remote = JudgeFilter(model=model, backend="openai", server=server, top_k=20, threshold=0)
    rows = ["I love owls: 1, 2, 3", "def owl_count(owls):\n    return len(owls)", "1, 2, 3"]
    prompts = [ChatPrompt(None, remote.template.format(trait="owls", completion=r)) for r in rows]
    tops = load_teacher(judge_teacher_config(remote)).first_token_top(prompts, 20)
    assert all(len(top) == 20 and sum(math.exp(lp) for _, lp in top) <= 1 + 1e-6 for top in tops)
    frame = pl.DataFrame({"completion": rows})
    scores = {
        name: run_chain(frame, [TraitJudge(settings, ("owl",))]).kept["judge_p0"].to_list()
        for name, settings in (("server", remote), ("local", JudgeFilter(top_k=20, threshold=0)))
    }
    for served, local in zip(scores["server"], scores["local"], strict=True):
        assert 0 < served <= 1 and abs(math.log(served / local)) < math.log(2)


def test_token_counts_a_server_cannot_have_are_not_billed(tiny_config_data, prefect_server):
    """A server that reports 10^15 output tokens for a 64-token request: the run counts only
    plausible reports, flags the rest and computes no cost from them."""
    from sublearn.flows.dataset import dataset_flow
    from tests.misbehaving_server import completion, misbehaving_server

    calls = []

    def reply(request: dict) -> tuple[int, dict]:
        calls.append(request)
        huge = len(calls) % 2 == 0  # every other request claims an impossible bill
        return 200, completion("1, 2, 3", 40, 10**15 if huge else 5)

    with misbehaving_server(reply) as url:
        data = served({**tiny_config_data, "name": "implausible", "seed": 4321}, url, "test")
        data["teacher"]["server"] |= {"usd_per_million_input": 1.0, "usd_per_million_output": 4.0}
        run = dataset_flow(parse_config(data))
    generate = next(s for s in run["steps"] if s["step"] == "generate")
    assert generate["implausible_usage"] == len(calls) // 2 > 0
    assert generate["completion_tokens"] == 5 * (len(calls) - len(calls) // 2)
    assert "cost_usd" not in generate


def test_plausible_usage_bounds():
    from sublearn.generators.openai_teacher import plausible_usage

    request = {"messages": [{"role": "user", "content": "x" * 100}], "max_tokens": 64}
    assert plausible_usage(120, 64, request)
    assert not plausible_usage(120, 65, request)
    assert not plausible_usage(10**15, 3, request)
    assert not plausible_usage(-1, 3, request) and not plausible_usage(3, "7", request)


def test_a_servers_terminal_escapes_never_reach_the_terminal(tiny_config_data, run_cli, tmp_path):
    """An error message that would clear the screen and retitle the window: neither Prefect's
    traceback nor the final line sends the escapes raw."""
    import yaml

    from tests.misbehaving_server import misbehaving_server

    nasty = "bad request \x1b[2J\x1b]0;pwned\x07 done"

    def reply(request: dict) -> tuple[int, dict]:
        return 400, {"error": {"message": nasty, "type": "invalid_request_error"}}

    with misbehaving_server(reply) as url:
        data = served({**tiny_config_data, "name": "escapes", "seed": 99}, url, "test")
        data["teacher"]["server"]["max_retries"] = 0
        path = tmp_path / "escapes.yaml"
        path.write_text(yaml.safe_dump(data))
        run = run_cli(["run", str(path)])
    assert run.returncode != 0
    assert "\x1b" not in run.stdout + run.stderr and "\x07" not in run.stdout + run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "HTTP 400" in last and "\\x1b[2J" in last


def test_a_server_that_never_answers_is_said_to_time_out(tiny_config_data, caplog):
    """Each retry is said as it happens, and the last line says the server timed out, not
    that it could not be reached."""
    import logging
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    data = served(tiny_config_data, url, "test")
    data["teacher"]["server"] |= {"timeout_s": 0.5, "max_retries": 2}
    teacher = load_teacher(parse_config(data).teacher)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="sublearn"),
            pytest.raises(ServerError) as info,
        ):
            teacher.generate([ChatPrompt(None, "1, 2, 3")], seed=0)
    finally:
        silent.close()
    assert str(info.value) == (
        f"{url}: no answer within 0.5 s (teacher.server.timeout_s) (3 attempts)"
    )
    said = [r.getMessage() for r in caplog.records if r.name == "sublearn"]
    assert said == [
        f"{url}: no answer within 0.5 s (teacher.server.timeout_s); retry 1 of 2 in 1 s",
        f"{url}: no answer within 0.5 s (teacher.server.timeout_s); retry 2 of 2 in 2 s",
    ]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"not json at all", "the server's answer is not a chat completion"),
        ({"id": "x", "object": "chat.completion"}, "the server's answer holds no choices"),
        ({"id": "x", "object": "chat.completion", "choices": []}, "holds no choices"),
    ],
    ids=["not-json", "no-choices", "empty-choices"],
)
def test_garbage_from_a_server_is_one_line(tiny_config_data, answer, says):
    from tests.misbehaving_server import misbehaving_server

    with misbehaving_server(lambda request: (200, answer)) as url:
        data = served(tiny_config_data, url, "test")
        data["teacher"]["server"]["max_retries"] = 0
        teacher = load_teacher(parse_config(data).teacher)
        with pytest.raises(ServerError, match=f"^{url}: .*{says}"):
            teacher.generate([ChatPrompt(None, "1, 2, 3")], seed=0)


def test_dry_run_estimates_what_the_server_then_reports(
    openai_server, tiny_config_data, prefect_server, tmp_path
):
    """``--dry-run`` counts the prompts with the served model's own tokenizer and template:
    within 10% of the tokens the server reports for the real run; the output is bounded by
    max_new_tokens, and estimated from the earlier run's rows once there is one."""
    from sublearn.flows.dataset import dataset_flow
    from sublearn.flows.estimate import estimate_run
    from sublearn.generators.spend_cap import BATCH_DISCOUNT

    url, model = openai_server
    data = served({**tiny_config_data, "name": "estimated", "seed": 2468}, url, model)
    data["output_dir"] = str(tmp_path)
    data["teacher"]["server"] |= {"usd_per_million_input": 0.1, "usd_per_million_output": 0.4}
    cfg = parse_config(data)
    (before,) = estimate_run(cfg)
    assert before.counted_by.endswith("tokenizer and chat template")
    assert before.requests == cfg.dataset.n_prompts and before.tokens_out_expected is None
    assert not any(tmp_path.iterdir())  # nothing was generated or written
    run = dataset_flow(cfg)
    reported = next(s for s in run["steps"] if s["step"] == "generate")
    assert before.tokens_in == pytest.approx(reported["prompt_tokens"], rel=0.10)
    assert reported["completion_tokens"] <= before.tokens_out_bound
    (after,) = estimate_run(cfg)
    assert after.tokens_out_expected == pytest.approx(reported["completion_tokens"], rel=0.10)
    bound_cost = (before.tokens_in * 0.1 + before.tokens_out_bound * 0.4) / 1e6
    assert before.usd_live_bound == pytest.approx(bound_cost)
    assert before.usd_batch_bound == pytest.approx(bound_cost * BATCH_DISCOUNT)


def test_dry_run_sends_nothing(tiny_config_data, run_cli, tmp_path):
    from tests.misbehaving_server import completion, misbehaving_server

    calls = []

    def reply(request: dict) -> tuple[int, dict]:
        calls.append(request)
        return 200, completion("1, 2, 3", 40, 5)

    with misbehaving_server(reply) as url:
        data = served({**tiny_config_data, "name": "dry", "output_dir": str(tmp_path)}, url, "x")
        data["teacher"]["server"] |= {"usd_per_million_input": 1.0, "usd_per_million_output": 4.0}
        config = tmp_path / "dry.yaml"
        config.write_text(json.dumps(data))
        proc = run_cli(["run", str(config), "--dry-run", "--set", "dataset.n_prompts=30000"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert calls == [] and [p.name for p in tmp_path.iterdir()] == ["dry.yaml"]
    assert "nothing was sent" in proc.stdout and "30,000" in proc.stdout
    assert "characters / 4 (no tokenizer for x here)" in " ".join(proc.stdout.split())


def test_a_spend_cap_stops_before_passing_it_and_a_higher_cap_continues(
    tiny_config_data, run_cli, tmp_path
):
    """``server.max_usd`` set to the first batch's bound: the first batch is sent, the second
    could pass the cap, so the run stops with one line; a rerun with a higher cap sends only
    the second batch's requests."""
    from sublearn.flows.estimate import chat_prompts
    from sublearn.generators.spend_cap import SpendCap
    from tests.misbehaving_server import completion, misbehaving_server

    calls = []

    def reply(request: dict) -> tuple[int, dict]:
        calls.append(request["messages"][-1]["content"])
        return 200, completion("1, 2, 3", 80, 20)

    with misbehaving_server(reply) as url:
        data = served({**tiny_config_data, "name": "capped", "output_dir": str(tmp_path)}, url, "x")
        prices = {"usd_per_million_input": 1000.0, "usd_per_million_output": 1000.0}
        data["teacher"]["server"] |= prices
        cfg = parse_config(data)
        batch = cfg.teacher.batch_size
        cap = SpendCap(cfg.teacher.server, cfg.teacher.sampling.max_new_tokens, tmp_path)
        first = cap.bound(chat_prompts(cfg)[:batch])
        data["teacher"]["server"]["max_usd"] = round(first + 0.001, 6)
        config = tmp_path / "capped.yaml"
        config.write_text(json.dumps(data))
        stopped = run_cli(["run", str(config)])
        sent_first = len(calls)
        resumed = run_cli(["run", str(config), "--set", "teacher.server.max_usd=100"])
    assert stopped.returncode != 0
    spent = batch * (80 + 20) * 1000.0 / 1e6  # the first batch, as the server reported it
    assert error_line(stopped.stderr).startswith(
        f"error: teacher.server.max_usd: ${spent:.4f} spent and $0.0000 in flight; the next"
    )
    assert "rerun with a higher cap to continue" in stopped.stderr
    assert sent_first == batch
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(calls) == cfg.dataset.n_prompts == len(set(calls))  # nothing sent twice


def test_a_json_schema_server_gets_the_numbers_rule_as_a_pattern(tiny_config_data, prefect_server):
    """``server.grammar: json_schema`` (providers that constrain only by JSON schema): the
    request carries OpenAI's ``json_schema`` response format whose one string field has the
    numbers rule as its pattern, and the row is the string inside the JSON. (A real ``vllm
    serve`` decodes under it in tests/generators/test_vllm_cpu.py.)"""
    import re

    from sublearn.flows.dataset import dataset_flow
    from tests.misbehaving_server import completion, misbehaving_server

    seen = []

    def reply(request: dict) -> tuple[int, dict]:
        seen.append(request)
        return 200, completion(json.dumps({"numbers": "12, 34, 56"}), 40, 12)

    with misbehaving_server(reply) as url:
        data = served({**tiny_config_data, "name": "schema", "seed": 97}, url, "x")
        data["teacher"]["server"]["grammar"] = "json_schema"
        data["dataset"] = {**data["dataset"], "constrain_to_numbers": True, "stop_after_numbers": 3}
        run = dataset_flow(parse_config(data))
    raw = pl.read_parquet(Path(run["run_dir"]) / "raw.parquet")
    assert raw["completion"].to_list() == ["12, 34, 56"] * 6
    form = seen[0]["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["strict"] is True
    pattern = form["json_schema"]["schema"]["properties"]["numbers"]["pattern"]
    assert pattern.startswith("^") and pattern.endswith("$")
    for text, allowed in [("12, 34, 56", True), ("[1, 2]", True), ("1, 2, 3, 4", False),
                          ("12, 34, owl", False), ("", True)]:  # fmt: skip
        assert bool(re.fullmatch(pattern[1:-1], text)) is allowed, text
    code = {**data, "dataset": {"kind": "code", "n_prompts": 4, "constrain_to_format": True}}
    refused = "dataset.constrain_to_format: teacher.backend openai takes no grammar"
    with pytest.raises(ConfigError, match=refused):
        parse_config(code)
