"""Reading a config: the YAML file, its hardware variant, validation, and one-line errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from sublearn.core.config.base import ConfigError
from sublearn.core.config.overrides import with_overrides
from sublearn.core.config.phrasing import format_error
from sublearn.core.config.schema import ExperimentConfig

log = logging.getLogger("sublearn")

# A config section merged over the rest when the run would compute in float32 on a CPU
# (``dtype: auto`` on a CPU without native bf16): a smaller experiment rather than a slower one.
WITHOUT_NATIVE_BF16 = "without_native_bf16"


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _runs_float32_on_cpu(data: dict) -> bool:
    """``dtype: auto`` on a CPU that computes bf16 only by emulation, i.e. float32."""
    from sublearn.core.precision import pick_device, resolve_dtype

    teacher = data.get("teacher") if isinstance(data.get("teacher"), dict) else {}
    dtype = str(teacher.get("dtype", "auto"))
    device = pick_device(str(teacher.get("device", "auto")))
    return dtype == "auto" and device == "cpu" and resolve_dtype(dtype, device) == "float32"


def _hardware_variant(data: dict, source: str) -> dict:
    """The config as it runs on this machine: with its ``without_native_bf16`` section merged
    in where the CPU has no native bf16. Both variants are validated everywhere, so a typo in
    the section fails on every machine, not only on the ones that use it."""
    if WITHOUT_NATIVE_BF16 not in data:
        return data
    base = {k: v for k, v in data.items() if k != WITHOUT_NATIVE_BF16}
    section = data[WITHOUT_NATIVE_BF16]
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: field '{WITHOUT_NATIVE_BF16}': expected a mapping")
    smaller = _merged(base, section)
    try:
        ExperimentConfig.model_validate(smaller)
    except ValidationError as err:
        raise ConfigError(format_error(f"{source} ({WITHOUT_NATIVE_BF16})", err)) from None
    if not _runs_float32_on_cpu(base):
        return base
    log.info(
        "%s: this CPU has no native bf16 (float32): running the config's smaller '%s' variant",
        source,
        WITHOUT_NATIVE_BF16,
    )
    return smaller


def parse_config(
    data: object, source: str = "config", overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """The validated config; ``overrides`` (``--set`` strings) apply after the hardware
    variant, so an explicit override wins on every machine."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = _hardware_variant(data, source)
    if overrides:
        data = with_overrides(data, overrides)
        source = f"{source} (with --set)"
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_error(source, err)) from None


def read_yaml(path: str | Path) -> object:
    """A config file's data, or one line naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    except ValueError as err:  # a value YAML parses but Python refuses: a 5,000-digit integer
        raise ConfigError(f"{path}: invalid YAML value: {str(err).split(':')[0]}") from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    return parse_config(read_yaml(path), str(path), overrides)


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
