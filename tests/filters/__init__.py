"""Tests of sublearn.filters."""
