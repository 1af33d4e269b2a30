"""Which floating-point precision a model runs in, chosen by the hardware.

bfloat16 halves memory and is 2-3x faster than float32 on CPUs that compute it natively (AMX
or AVX-512 BF16); on the others (AVX2-only CPUs) torch falls back to a scalar GEMM that is
4-27x slower than float32. So ``auto`` asks torch what this CPU can do instead of assuming, and
the dtype actually used is recorded and keyed, since it changes what a model samples.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache

DTYPE_NAMES = ("float32", "bfloat16", "float16")
MODEL_OWN = "auto"

log = logging.getLogger("sublearn")


NATIVE_BF16_ENV = "SUBLEARN_NATIVE_BF16"


@cache
def cpu_has_native_bf16() -> bool:
    """True where torch reports AMX tiles or AVX-512 BF16 instructions on this CPU.
    ``SUBLEARN_NATIVE_BF16=0`` or ``1`` overrides the probe (to try the other path)."""
    forced = os.environ.get(NATIVE_BF16_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cpu_description() -> str:
    """The CPU's model name and the instruction sets that decide bf16 speed, for reports."""
    import platform

    import torch

    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            name = next(
                (line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")),
                name,
            )
    except OSError:
        pass
    flags = [
        label
        for label, check in (
            ("avx2", "_is_avx2_supported"),
            ("avx512", "_is_avx512_supported"),
            ("avx512_bf16", "_is_avx512_bf16_supported"),
            ("amx", "_is_amx_tile_supported"),
        )
        if getattr(torch.cpu, check, lambda: False)()
    ]
    return f"{name} ({', '.join(flags) or 'no AVX2'})"


def report_speedup(what: str, bf16_over_fp32: float) -> str:
    """A benchmark's verdict: the bf16/fp32 speed ratio measured here, the CPU, and the dtype
    ``auto`` picks on it, so a figure is never quoted without the CPU it came from."""
    return (
        f"CPU: {cpu_description()}\n"
        f"{what}: bfloat16 is {bf16_over_fp32:.2f}x float32's speed here; "
        f"dtype auto picks {resolve_dtype(MODEL_OWN, 'cpu')}"
    )


def resolve_dtype(requested: str, device: str, native_bf16: bool | None = None) -> str:
    """The dtype a model is loaded in: ``auto`` is the model's own dtype on CUDA, bfloat16 on
    a CPU with native bf16 and float32 on other CPUs; an explicit choice is kept as given."""
    if requested != MODEL_OWN:
        return requested
    if device.startswith("cuda"):
        return MODEL_OWN
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    return "bfloat16" if native else "float32"


@cache
def warn_if_slow(dtype: str, device: str) -> None:
    """One warning per process when bfloat16 is asked for on a CPU that emulates it."""
    if dtype == "bfloat16" and device == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "dtype bfloat16 on a CPU without native bf16 (no AMX or AVX-512 BF16): expect "
            "training 4-27x and generation ~4x slower than float32; 'dtype: auto' picks float32"
        )


def pick_device(name: str) -> str:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Precision:
    """Where a model computes and in which dtype: what the loaders build it in, and what the
    step keys and records name."""

    device: str
    dtype: str


@cache
def precision_for(dtype: str, device: str) -> Precision:
    """A config's ``dtype`` and ``device`` (``auto`` included) as this machine runs them,
    resolved once per process: every key, record and loader of a run gets this same object."""
    where = pick_device(device)
    return Precision(where, resolve_dtype(dtype, where))
