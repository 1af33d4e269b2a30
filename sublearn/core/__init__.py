"""The core every part builds on: configs, models and precision, the step store, run I/O,
the Hub, lineage and cards. It imports no other part of sublearn."""
