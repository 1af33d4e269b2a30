"""Tests of sublearn.core."""
