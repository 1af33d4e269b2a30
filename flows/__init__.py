"""Prefect flows: each user-visible unit of work is a flow whose steps are tasks."""

import sublearn.core.prefect_env  # noqa: F401  (must run before prefect is imported)
