"""Tests of sublearn.eval."""
