"""Tests of sublearn.flows."""
