"""Experiment configuration: one YAML file, validated at the edge into frozen objects.

The schema is split by concern (see ``schema``); this package's names are the ones the rest
of sublearn imports.
"""

from sublearn.core.config.base import (
    MAX_NUMBER,
    THROUGHPUT,
    ConfigError,
    Frozen,
    Seed,
    Word,
    check_word,
    content_of,
)
from sublearn.core.config.datasets import (
    GSM8K,
    CodeDataset,
    CotDataset,
    DatasetCommon,
    NumbersDataset,
    NumbersFilter,
    NumbersPrompts,
    PromptSet,
)
from sublearn.core.config.experiment import (
    ControlTeacher,
    CrossModel,
    Evaluation,
    Experiment,
    Grid,
    MisalignmentEval,
    StudentTraining,
)
from sublearn.core.config.filters import (
    LEAK_CONTROL_OWN,
    LEAK_CONTROL_TEACHER,
    AlignmentFilter,
    JudgeFilter,
    LeakFilter,
    SemanticFilters,
)
from sublearn.core.config.loading import (
    WITHOUT_NATIVE_BF16,
    dump_config,
    load_config,
    parse_config,
    read_yaml,
)
from sublearn.core.config.models import (
    Decoding,
    ModelRef,
    OpenAIServer,
    Sampling,
    Teacher,
    Trait,
    TraitFinetune,
    TraitRef,
    capabilities,
)
from sublearn.core.config.phrasing import format_error
from sublearn.core.config.runs import Publish, ScaleOut, Schedule
from sublearn.core.config.schema import ExperimentConfig

__all__ = [
    "GSM8K",
    "LEAK_CONTROL_OWN",
    "LEAK_CONTROL_TEACHER",
    "MAX_NUMBER",
    "THROUGHPUT",
    "WITHOUT_NATIVE_BF16",
    "AlignmentFilter",
    "CodeDataset",
    "ConfigError",
    "ControlTeacher",
    "CotDataset",
    "CrossModel",
    "DatasetCommon",
    "Decoding",
    "Evaluation",
    "Experiment",
    "ExperimentConfig",
    "Frozen",
    "Grid",
    "JudgeFilter",
    "LeakFilter",
    "MisalignmentEval",
    "ModelRef",
    "NumbersDataset",
    "NumbersFilter",
    "NumbersPrompts",
    "OpenAIServer",
    "PromptSet",
    "Publish",
    "Sampling",
    "ScaleOut",
    "Schedule",
    "Seed",
    "SemanticFilters",
    "StudentTraining",
    "Teacher",
    "Trait",
    "TraitFinetune",
    "TraitRef",
    "Word",
    "capabilities",
    "check_word",
    "content_of",
    "dump_config",
    "format_error",
    "load_config",
    "parse_config",
    "read_yaml",
]
