"""sublearn: subliminal-learning datasets and experiments as Prefect workflows.

One import package. Its parts keep the top-level folders the project was laid out in
(``flows/``, ``generators/``, ``filters/``, ``eval/`` beside ``sublearn/``); an installed wheel
holds them under ``sublearn/`` (setuptools' ``package-dir``). In a source checkout they are
found through this package's path, so ``python -m sublearn`` run in any checkout (a worktree,
a CI clone) imports that checkout's code alone, never a mix with an editable install's.
"""

from pathlib import Path

__version__ = "0.1.0"

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "flows" / "__init__.py").is_file() and (_CHECKOUT / "pyproject.toml").is_file():
    __path__.append(str(_CHECKOUT))
