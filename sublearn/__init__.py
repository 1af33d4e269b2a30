"""sublearn: subliminal-learning datasets and experiments as Prefect workflows."""

__version__ = "0.1.0"
