"""Prompt builders and teacher backends: prompts in, batched teacher completions out."""
