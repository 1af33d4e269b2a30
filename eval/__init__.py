"""Evaluations of what a student inherits (preference, misalignment, the MLP experiment)."""
