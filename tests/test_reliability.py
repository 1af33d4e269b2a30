"""Bad input is one line and loses nothing; precision follows the hardware; output files keep
the user's umask; a run's log is readable. Each test failed before the fix it covers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from sublearn.core.config import parse_config
from sublearn.core.precision import resolve_dtype
from sublearn.core.runio import json_writer, write_json, write_outputs
from sublearn.flows.cli import app

runner = CliRunner()


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_auto_dtype_follows_the_cpu_and_cuda():
    assert resolve_dtype("auto", "cpu", native_bf16=True) == "bfloat16"
    assert resolve_dtype("auto", "cpu", native_bf16=False) == "float32"
    assert resolve_dtype("auto", "cuda", native_bf16=False) == "auto"  # the model's own
    assert resolve_dtype("bfloat16", "cpu", native_bf16=False) == "bfloat16"  # asked: kept
    assert parse_config({"name": "x"}).teacher.dtype == "auto"


def test_the_dtype_used_keys_and_labels_generation(monkeypatch):
    """A cache made under one precision is not reused under another."""
    from sublearn.core import precision
    from sublearn.flows.dataset import GenerateStep, teacher_identity

    config = parse_config({"name": "x", "dataset": {"n_prompts": 4}})
    prompts = {"digests": {"prompts.parquet": "0" * 64}}
    keys = {}
    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        precision.precision_for.cache_clear()
        keys[native] = GenerateStep(config, config.teacher, prompts, Path("p")).key()
        expected = "bfloat16" if native else "float32"
        assert teacher_identity(config.teacher)["dtype"] == expected
    assert keys[True] != keys[False]
    monkeypatch.undo()  # and forget the patched CPU's precision: later tests get this CPU's
    precision.precision_for.cache_clear()


def test_bf16_without_native_support_warns_once(monkeypatch, caplog):
    from sublearn.core import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    precision.warn_if_slow.cache_clear()
    with caplog.at_level("WARNING", logger="sublearn"):
        precision.warn_if_slow("bfloat16", "cpu")
        precision.warn_if_slow("bfloat16", "cpu")
        precision.warn_if_slow("float32", "cpu")
    assert caplog.text.count("without native bf16") == 1
    precision.warn_if_slow.cache_clear()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--min-value", "-10", "--max-value", "-1"], "--min-value: Input should be greater"),
        (["--max-count", "0"], "--max-count: Input should be greater than or equal to 1"),
        (["--max-value", str(10**12)], "--max-value: Input should be less than or equal to"),
        (["--min-value", "5", "--max-value", "4"], "min_value must not exceed max_value"),
        (["--banned-preset", "nope"], "--banned-preset: Input should be 'misalignment'"),
    ],
)
def test_filter_options_share_the_config_bounds(tmp_path, options, message):
    source = tmp_path / "in.parquet"
    pl.DataFrame({"prompt": ["a"], "completion": ["0"]}).write_parquet(source)
    result = runner.invoke(app, ["filter", "numbers", str(source), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0
    bad = runner.invoke(
        app, ["filter", "numbers", str(source), "--out", str(tmp_path / "p"), *options]
    )
    assert bad.exit_code == 2
    assert message in one_error_line(bad.output)
    assert not (tmp_path / "p").exists()


def test_wide_filter_rules_are_computed_exactly():
    """A range whose fast-path regex would not compile takes the general path, correctly."""
    from sublearn.filters.chain import run_chain
    from sublearn.filters.numbers import NumbersFormat, NumbersRule, reject_reason

    rows = ["1, 2, 3", "999999999", "1000000000", " ".join(["7"] * 1000), "0;1", "[5 ,6]."]
    for rule in (NumbersRule(1000, 0, 999_999_999), NumbersRule(16, 1, 99_999)):
        result = run_chain(pl.DataFrame({"completion": rows}), [NumbersFormat(rule)])
        rejected = result.rejected
        verdicts = dict(zip(rejected["completion"], rejected["reject_reason"], strict=True))
        assert [verdicts.get(r) for r in rows] == [reject_reason(r, rule) for r in rows]


def test_filter_input_problems_are_one_line_and_write_nothing(tmp_path):
    numbers = tmp_path / "numbers.parquet"
    pl.DataFrame({"prompt": ["a"], "completion": [12]}).write_parquet(numbers)
    bad = runner.invoke(app, ["filter", "numbers", str(numbers), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2
    assert one_error_line(bad.output) == (
        f"error: {numbers}: column 'completion' must hold text, not Int64"
    )
    good = tmp_path / "good.parquet"
    pl.DataFrame({"prompt": ["a"], "completion": ["1, 2"]}).write_parquet(good)
    existing_file = tmp_path / "taken"
    existing_file.write_text("mine")
    taken = runner.invoke(app, ["filter", "numbers", str(good), "--out", str(existing_file)])
    assert taken.exit_code == 2
    assert one_error_line(taken.output) == (
        f"error: {existing_file}: exists and is not a folder; choose another --out"
    )
    assert existing_file.read_text() == "mine"


def test_outputs_are_written_as_a_set(tmp_path):
    out = tmp_path / "out"
    write_outputs(out, {"kept.json": json_writer([1]), "stats.json": json_writer({"n": 1})})

    def broken(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_outputs(out, {"kept.json": json_writer([1, 2]), "stats.json": broken})
    assert json.loads((out / "kept.json").read_text()) == [1]  # no new file beside an old one
    assert json.loads((out / "stats.json").read_text()) == {"n": 1}
    assert sorted(p.name for p in out.iterdir()) == ["kept.json", "stats.json"]  # no temp left


def test_output_files_honour_the_umask(tmp_path):
    code = (
        "import os, sys; os.umask(0o022); from pathlib import Path;"
        "from sublearn.core.runio import write_json; write_json({}, Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.json")], check=True)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    write_json({}, tmp_path / "b.json")
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\nseed: true\n", "field 'seed': Input should be a valid integer (got True)"),
        (
            "name: x\ndataset: {n_prompts: 4.0}\n",
            "field 'dataset.n_prompts': Input should be a valid integer (got 4.0)",
        ),
        (
            "name: x\ndataset: {n_prompts: 1000000000000}\n",
            "field 'dataset.n_prompts': Input should be less than or equal to 10000000 "
            "(got 1000000000000)",
        ),
        (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9)"),
    ],
)
def test_bad_configs_are_one_line_and_leave_nothing(tmp_path, yaml_text, message):
    config = tmp_path / "bad.yaml"
    if isinstance(yaml_text, bytes):
        config.write_bytes(yaml_text)
    else:
        config.write_text(yaml_text + f"output_dir: {tmp_path / 'runs'}\n")
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 2
    assert one_error_line(result.output) == f"error: {config}: {message}"
    assert not (tmp_path / "runs").exists()


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the project's own errors become one line; anything else is a bug to see."""
    import sublearn.flows.dataset

    def broken(*args, **kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(sublearn.flows.dataset, "dataset_flow", broken)
    config = tmp_path / "ok.yaml"
    config.write_text(f"name: x\noutput_dir: {tmp_path / 'runs'}\n")
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert "error:" not in result.output


def test_interrupts_outside_the_main_thread_just_run_the_work():
    import threading

    from sublearn.core.interrupts import run_interruptible

    seen = []
    worker = threading.Thread(target=lambda: seen.append(run_interruptible(lambda: 7, print)))
    worker.start()
    worker.join()
    assert seen == [7]
    assert run_interruptible(lambda: 8, print) == 8  # main thread: through the worker thread
    with pytest.raises(KeyError):
        run_interruptible(lambda: {}["missing"], print)


def test_a_smaller_variant_runs_where_bf16_is_emulated(monkeypatch):
    from sublearn.core import precision
    from sublearn.core.config import ConfigError

    data = {
        "name": "x",
        "dataset": {"n_prompts": 512, "n_keep": 100},
        "without_native_bf16": {"dataset": {"n_prompts": 256}},
    }
    for native, expected in ((True, 512), (False, 256)):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        config = parse_config(data)
        assert (config.dataset.n_prompts, config.dataset.n_keep) == (expected, 100)
        explicit = parse_config({**data, "teacher": {"dtype": "float32"}})
        assert explicit.dataset.n_prompts == 512  # only dtype auto follows the hardware
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    typo = {**data, "without_native_bf16": {"dataset": {"n_promts": 256}}}
    with pytest.raises(ConfigError, match=r"c.yaml \(without_native_bf16\): unknown key"):
        parse_config(typo, "c.yaml")  # caught on machines that would not use it too


def test_a_killed_run_leaves_no_prefect_server_behind(tiny_config_data, tmp_path):
    """``kill -9`` of a ``sublearn run`` that started its own temporary Prefect server: the
    server outlives it (nothing of the run could stop it), and the next sublearn command
    reaps it."""
    import signal

    import yaml

    from sublearn.core.orphans import OWNER, orphaned_servers
    from tests.conftest import wait_until

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**tiny_config_data, "name": "killed", "seed": 404}))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # its own database, its own server

    def servers_of(owner: int) -> list[int]:
        found = []
        for entry in os.scandir("/proc"):
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    if f"{OWNER}={owner}".encode() in f.read().split(b"\0"):
                        found.append(int(entry.name))
            except (OSError, ValueError):
                continue
        return found

    run = subprocess.Popen(
        [sys.executable, "-m", "sublearn", "run", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: servers_of(run.pid), timeout=180, every=0.2)
        server = servers_of(run.pid)[0]
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert wait_until(lambda: server in orphaned_servers(), timeout=10)  # it leaked
    subprocess.run(
        [sys.executable, "-m", "sublearn", "lineage", "--help"], env=env, capture_output=True
    )
    assert wait_until(lambda: not os.path.exists(f"/proc/{server}"), timeout=30)


def test_an_error_inside_a_flow_is_one_line_naming_its_traceback(run_cli, tmp_path):
    """Prefect's traceback of a failed flow run goes to a log file; the terminal gets the one
    error line, which names that file."""
    config = tmp_path / "c.yaml"
    config.write_text(f"name: x\noutput_dir: {tmp_path / 'runs'}\n")
    proc = run_cli(["run", str(config), "--only", "filter"], HOME=str(tmp_path / "home"))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Failed" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --only filter: step 'prompts' has no cached output")
    log = Path(last.rsplit("(details: ", 1)[1].removesuffix(")"))
    assert log.is_relative_to(tmp_path / "home" / ".sublearn" / "logs")
    assert "Traceback" in log.read_text() and "StepError" in log.read_text()
