"""Tests of sublearn.generators."""
