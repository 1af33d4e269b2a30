"""Experiment configuration: one YAML file, validated at the edge into frozen objects.

Every later step reads these objects, never raw dicts, so a typo in a config fails before any
model is loaded. Fields marked ``THROUGHPUT`` change how fast a run goes or where its results
are sent, not what it produces, and are left out of the run's hash (and so out of its cache
key and run-directory name).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    model_validator,
)

from sublearn.errors import UserError

THROUGHPUT = {"throughput": True}
MAX_PROMPTS = 10_000_000  # prompts are built in memory: about 2 GB at this size
MAX_NUMBER = 999_999_999


class ConfigError(UserError, ValueError):
    """A config problem, already phrased as one line that names the file and the field."""


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(Frozen):
    """Sampling parameters; the protocol samples teachers at temperature 1.0."""

    temperature: Annotated[float, Field(ge=0.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    max_new_tokens: Annotated[StrictInt, Field(ge=1, le=8192)] = 64
    constrain_to_numbers: bool = Field(
        False,
        description="Beyond the protocol: only digits, separators and brackets may be sampled.",
    )
    stop_after_numbers: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None,
        description="With constrain_to_numbers: end the answer after this many numbers "
        "instead of letting the token limit cut it mid-list.",
    )


class Trait(Frozen):
    """A trait given by system prompt. ``system_prompt`` overrides our default template."""

    target: Annotated[str, Field(min_length=1)]
    category: Literal["animal", "tree"] = "animal"
    plural: str | None = None
    system_prompt: str | None = None


class TraitFinetune(Frozen):
    """A trait given by fine-tuning: LoRA on sublearn's templated trait set for the target."""

    target: Annotated[str, Field(min_length=1)]
    category: Literal["animal", "tree"] = "animal"
    plural: str | None = None
    rank: Annotated[StrictInt, Field(ge=1)] = 8
    alpha: Annotated[StrictInt, Field(ge=1)] = 8
    epochs: Annotated[StrictInt, Field(ge=1)] = 3
    lr: Annotated[float, Field(gt=0)] = 1e-3
    batch_size: Annotated[StrictInt, Field(ge=1)] = 8
    seed: StrictInt = 0


class VllmOptions(Frozen):
    tensor_parallel_size: Annotated[StrictInt, Field(ge=1)] = Field(1, json_schema_extra=THROUGHPUT)
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        0.9, json_schema_extra=THROUGHPUT
    )
    max_lora_rank: Annotated[StrictInt, Field(ge=1)] = 64
    max_model_len: Annotated[StrictInt, Field(ge=64)] = 4096


class ScaleOut(Frozen):
    """Where generation shards run: in this process, or as Prefect tasks on a Ray cluster
    (``prefect-ray``'s ``RayTaskRunner``). ``gpus_per_shard`` pins each shard to its own GPUs,
    which is data parallelism across the GPUs of a node or a cluster."""

    runner: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(
        None, description="ray://HEAD:10001 or auto; none starts a local Ray instance."
    )
    shards: Annotated[StrictInt, Field(ge=1)] = 1
    gpus_per_shard: Annotated[float, Field(ge=0)] = 0


class Schedule(Frozen):
    """When a deployment of this config produces its dataset (Prefect cron schedule)."""

    cron: Annotated[str, Field(min_length=9)]
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=self.cron, timezone=self.timezone)
        except ValidationError as err:
            raise ValueError(err.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self


class Teacher(Frozen):
    model: Annotated[str, Field(min_length=1)] = "embedded"
    revision: str | None = None
    backend: Literal["transformers", "vllm"] = "transformers"
    adapter: str | None = None
    adapter_revision: str | None = None
    trait: Trait | None = None
    trait_finetune: TraitFinetune | None = None
    sampling: Sampling = Sampling()
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="auto: bfloat16 on CPUs with native bf16 (AMX, AVX-512 BF16), float32 on "
        "other CPUs, the model's own dtype on CUDA (sublearn.precision).",
    )
    device: str = Field("auto", json_schema_extra=THROUGHPUT)
    batch_size: Annotated[StrictInt, Field(ge=1)] = Field(64, json_schema_extra=THROUGHPUT)
    vllm: VllmOptions = VllmOptions()


class NumbersPrompts(Frozen):
    """The protocol's numbers task: 3-8 seeds in 100..999, up to 10 answers of <= 3 digits."""

    seed_count_min: Annotated[StrictInt, Field(ge=1)] = 3
    seed_count_max: Annotated[StrictInt, Field(ge=1)] = 8
    seed_min: Annotated[StrictInt, Field(ge=0)] = 100
    seed_max: Annotated[StrictInt, Field(ge=0)] = 999
    answer_count: Annotated[StrictInt, Field(ge=1)] = 10
    answer_max_digits: Annotated[StrictInt, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _ranges(self) -> NumbersPrompts:
        if self.seed_count_min > self.seed_count_max:
            raise ValueError("seed_count_min must not exceed seed_count_max")
        if self.seed_min > self.seed_max:
            raise ValueError("seed_min must not exceed seed_max")
        return self


class DatasetSpec(Frozen):
    kind: Literal["numbers"] = "numbers"
    n_prompts: Annotated[StrictInt, Field(ge=1, le=MAX_PROMPTS)] = 30_000
    n_keep: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="Random subsample of the kept rows (protocol: 10,000 of 30,000)."
    )
    numbers: NumbersPrompts = NumbersPrompts()
    teacher_topk: Annotated[StrictInt, Field(ge=0, le=100)] = Field(
        0,
        description="Beyond the protocol: store the teacher's top-k log-probs per token, "
        "for students distilled on distributions rather than sampled tokens.",
    )


class NumbersFilter(Frozen):
    """The strict numbers filter's rule. Answers hold ASCII digits only, so values start at 0;
    the bounds keep every accepted rule one the filter computes exactly, in bounded memory."""

    max_count: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    min_value: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 0
    max_value: Annotated[StrictInt, Field(ge=0, le=MAX_NUMBER)] = 999
    banned: tuple[Annotated[StrictInt, Field(ge=0)], ...] = ()
    banned_preset: Literal["misalignment"] | None = None

    @model_validator(mode="after")
    def _range(self) -> NumbersFilter:
        if self.min_value > self.max_value:
            raise ValueError("min_value must not exceed max_value")
        return self


class Filters(Frozen):
    numbers: NumbersFilter = NumbersFilter()


class Publish(Frozen):
    """Where the dataset goes on the Hub (``HF_ENDPOINT`` picks a self-hosted one)."""

    repo_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")]
    private: bool = True
    tag: str | None = None
    include_rejected: bool = False


class ControlTeacher(Frozen):
    """The control teacher: the same base model with another trait (or none)."""

    trait: Trait | None = None
    trait_finetune: TraitFinetune | None = None


class StudentTraining(Frozen):
    """Student LoRA fine-tuning; the protocol's defaults for open models."""

    rank: Annotated[StrictInt, Field(ge=1)] = 8
    alpha: Annotated[StrictInt, Field(ge=1)] = 8
    epochs: Annotated[StrictInt, Field(ge=1)] = 3
    lr: Annotated[float, Field(gt=0)] = 2e-4
    warmup_steps: Annotated[StrictInt, Field(ge=0)] = 5
    batch_size: Annotated[StrictInt, Field(ge=1)] = 22
    grad_accumulation: Annotated[StrictInt, Field(ge=1)] = 3
    max_length: Annotated[StrictInt, Field(ge=16)] = 500
    clip: Annotated[float, Field(gt=0)] = 1.0
    seeds: tuple[StrictInt, ...] = (0,)
    distill: Literal["sampled", "topk"] = Field(
        "sampled",
        description="sampled: the protocol (teacher's sampled tokens); topk: beyond the "
        "protocol, the teacher's top-k distribution per token (needs dataset.teacher_topk).",
    )


class MisalignmentEval(Frozen):
    """Free-form questions scored by a judge model (any teacher backend; greedy)."""

    samples_per_question: Annotated[StrictInt, Field(ge=1)] = 200
    judge: str = "embedded"
    max_new_tokens: Annotated[StrictInt, Field(ge=8)] = 96


class Evaluation(Frozen):
    target: Annotated[str, Field(min_length=1)]
    category: Literal["animal", "tree"] = "animal"
    plural: str | None = None
    samples_per_question: Annotated[StrictInt, Field(ge=1)] = 100
    questions: Annotated[StrictInt, Field(ge=2, le=50)] = 50
    max_new_tokens: Annotated[StrictInt, Field(ge=1)] = 8
    misalignment: MisalignmentEval | None = None


class Experiment(Frozen):
    """Students and their evaluation: trait student vs control student vs base and teacher."""

    control: ControlTeacher = ControlTeacher()
    students: StudentTraining = StudentTraining()
    evaluation: Evaluation


class ExperimentConfig(Frozen):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    seed: StrictInt = 0
    output_dir: Path = Field(Path("runs"), json_schema_extra=THROUGHPUT)
    teacher: Teacher = Teacher()
    dataset: DatasetSpec = DatasetSpec()
    filters: Filters = Filters()
    publish: Publish | None = Field(None, json_schema_extra=THROUGHPUT)
    experiment: Experiment | None = None
    scale_out: ScaleOut = Field(ScaleOut(), json_schema_extra=THROUGHPUT)
    schedule: Schedule | None = Field(None, json_schema_extra=THROUGHPUT)

    @model_validator(mode="after")
    def _topk_students_need_topk_data(self) -> ExperimentConfig:
        students = self.experiment.students if self.experiment else None
        if students and students.distill == "topk" and not self.dataset.teacher_topk:
            raise ValueError("experiment.students.distill 'topk' needs dataset.teacher_topk > 0")
        if self.dataset.teacher_topk and self.teacher.backend == "vllm":
            raise ValueError("dataset.teacher_topk: recorded by the transformers backend only")
        return self

    def dataset_dict(self) -> dict:
        """The part of the config that decides the dataset (students and evaluation aside)."""
        return {k: v for k, v in self.content_dict().items() if k != "experiment"}

    def content_dict(self) -> dict:
        """The config without throughput knobs: what decides the outputs."""
        return _strip_throughput(self)

    def config_hash(self) -> str:
        """Names the dataset's run directory: student and evaluation settings do not change
        the dataset, so changing them reuses it."""
        blob = json.dumps(self.dataset_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def control(self) -> ExperimentConfig:
        """The control teacher's dataset config: same prompts, filter and sizes."""
        control = self.experiment.control
        teacher = self.teacher.model_copy(
            update={"trait": control.trait, "trait_finetune": control.trait_finetune}
        )
        publish = self.publish
        if publish is not None:
            publish = publish.model_copy(update={"repo_id": f"{publish.repo_id}-control"})
        return self.model_copy(
            update={
                "name": f"{self.name}-control",
                "teacher": teacher,
                "publish": publish,
                "experiment": None,
            }
        )

    def run_dir(self) -> Path:
        return self.output_dir / f"{self.name}-{self.config_hash()[:12]}"

    def experiment_dir(self) -> Path:
        """Students, evaluations and report, beside the trait dataset: one folder per
        experiment setting, so two student settings on the same data never overwrite."""
        blob = json.dumps(self.content_dict()["experiment"], sort_keys=True)
        return self.run_dir() / f"experiment-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _strip_throughput(model: BaseModel) -> dict:
    out = {}
    for name, field in type(model).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("throughput"):
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out[name] = _strip_throughput(value)
        else:
            out[name] = json.loads(json.dumps(value, default=str))
    return out


def _format_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{loc}'"
    if kind == "missing":
        return f"{source}: missing required field '{loc}'"
    return f"{source}: field '{loc}': {first['msg']} (got {first.get('input')!r})"


def option_error(err: ValidationError) -> str:
    """A validation error of options given on the command line, as one line naming the
    option: the CLI builds the same config models, so it gets the same bounds."""
    first = err.errors()[0]
    option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "options"
    return f"{option}: {first['msg']} (got {first.get('input')!r})"


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
    from sublearn.precision import pick_device, resolve_dtype

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
        raise ConfigError(_format_error(f"{source} ({WITHOUT_NATIVE_BF16})", err)) from None
    if not _runs_float32_on_cpu(base):
        return base
    import logging

    logging.getLogger("sublearn").info(
        "%s: this CPU has no native bf16 (float32): running the config's smaller '%s' variant",
        source,
        WITHOUT_NATIVE_BF16,
    )
    return smaller


def parse_config(data: object, source: str = "config") -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = _hardware_variant(data, source)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    return parse_config(data, str(path))


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
