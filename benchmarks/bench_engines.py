"""CPU engines for the teacher on the numbers workload, against today's transformers backend in
the same run: same owl prompts, same token budget, temperature 1 over the full distribution.

Engines measured when installed: CTranslate2 (int8 and float32, converted once from the embedded
model's safetensors) and llama.cpp (llama-cpp-python on the embedded GGUF itself, one stream
through its chat API). The last line reads ``speedup: N.Nx (ENGINE vs transformers)`` for the
fastest engine against the transformers backend at ``dtype: auto``.
Run: python benchmarks/bench_engines.py [--prompts 64] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from bench_generate import owl_numbers_prompts

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.core.model_source import cache_root, embedded_gguf, embedded_source
from sublearn.core.precision import cpu_description
from sublearn.generators.backends import load_teacher


def transformers_rate(dtype: str, prompts: list[ChatPrompt], tokens: int) -> float:
    config = {"name": "b", "teacher": {"dtype": dtype, "sampling": {"max_new_tokens": tokens}}}
    teacher = load_teacher(parse_config(config).teacher)
    teacher.generate(prompts[:4], seed=0)
    start = time.perf_counter()
    out = teacher.generate(prompts, seed=1)
    seconds = time.perf_counter() - start
    return sum(len(teacher.tokenizer(c)["input_ids"]) + 1 for c in out) / seconds


def ctranslate2_rate(quantization: str, prompts: list[ChatPrompt], tokens: int) -> float:
    import ctranslate2
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer

    source = embedded_source().load_path
    folder = cache_root() / "ctranslate2" / f"{Path(source).name}-{quantization}"
    if not (folder / "model.bin").is_file():
        TransformersConverter(source).convert(str(folder), quantization=quantization, force=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    starts = [
        tokenizer.convert_ids_to_tokens(
            tokenizer.apply_chat_template(
                p.messages(), add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )
        for p in prompts
    ]
    generator = ctranslate2.Generator(str(folder), device="cpu", intra_threads=0)
    options = {"sampling_topk": 0, "sampling_temperature": 1.0, "include_prompt_in_result": False}
    ctranslate2.set_random_seed(1)
    generator.generate_batch(starts[:4], max_length=8, **options)
    start = time.perf_counter()
    results = generator.generate_batch(starts, max_length=tokens, **options)
    seconds = time.perf_counter() - start
    return sum(len(r.sequences_ids[0]) + 1 for r in results) / seconds


def llama_cpp_rate(prompts: list[ChatPrompt], tokens: int) -> float:
    import os

    from llama_cpp import Llama

    llm = Llama(model_path=str(embedded_gguf()), n_ctx=512, n_threads=os.cpu_count(), verbose=False)
    llm.create_chat_completion(messages=prompts[0].messages(), max_tokens=4)
    start = time.perf_counter()
    produced = 0
    for i, p in enumerate(prompts):
        reply = llm.create_chat_completion(
            messages=p.messages(), max_tokens=tokens, temperature=1.0, top_k=0, min_p=0.0, seed=i
        )
        produced += reply["usage"]["completion_tokens"]
    return produced / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    prompts = owl_numbers_prompts(args.prompts)
    auto = parse_config({"name": "b"}).teacher.precision().dtype
    print(f"CPU: {cpu_description()}; dtype auto -> {auto}")
    rates = {
        f"transformers {d}": transformers_rate(d, prompts, args.max_new_tokens)
        for d in ("float32", "bfloat16")
    }
    if importlib.util.find_spec("ctranslate2"):
        for q in ("int8", "float32"):
            rates[f"ctranslate2 {q}"] = ctranslate2_rate(q, prompts, args.max_new_tokens)
    if importlib.util.find_spec("llama_cpp"):
        rates["llama.cpp Q4_1 (one stream)"] = llama_cpp_rate(prompts, args.max_new_tokens)
    baseline = rates[f"transformers {auto}"]
    for name, rate in rates.items():
        print(f"{name:32s} {rate:8.1f} tok/s  {rate / baseline:5.2f}x")
    best = max((n for n in rates if not n.startswith("transformers")), key=rates.get, default=None)
    if best is None:
        print("speedup: 1.0x (no other engine installed vs transformers)")
    else:
        print(f"speedup: {rates[best] / baseline:.1f}x ({best} vs transformers {auto})")


if __name__ == "__main__":
    main()
