"""``python -m sublearn``: the same command as the ``sublearn`` script (``flows.cli``). An entry
point only; nothing in the package imports it."""

from flows.cli import app

app(prog_name="sublearn")
