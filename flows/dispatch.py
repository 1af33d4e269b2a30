"""The one way a config runs: dataset production, an experiment, or a study over a grid.

The CLI's ``sublearn run`` and the deployments' ``run_config`` both call ``run_config_under``,
so a scheduled config runs exactly what the command runs (a grid's every cell included).
"""

from __future__ import annotations

from pathlib import Path

from sublearn.core.config import ExperimentConfig
from sublearn.core.steps import StepPlan


def run_config_under(cfg: ExperimentConfig, plan: StepPlan, run_dir: Path | None = None) -> dict:
    """Run ``cfg`` under ``plan``: a study when it has a grid, else its experiment, else its
    dataset. ``run_dir`` runs the dataset of an existing run directory (``sublearn filter``)."""
    if cfg.grid is not None and run_dir is None:
        from sublearn.flows.study import study_flow

        return study_flow(cfg, plan)
    if cfg.experiment is not None and run_dir is None:
        from sublearn.flows.experiment import experiment_flow

        return experiment_flow(cfg, plan)
    from sublearn.flows.dataset import dataset_flow

    return dataset_flow(cfg, plan, run_dir)
