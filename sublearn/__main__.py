"""``python -m sublearn``: the same command as the ``sublearn`` script (``sublearn.flows.cli``).
An entry point only; nothing in the package imports it."""

from sublearn.flows.cli import app

app(prog_name="sublearn")
