"""Tests of the batch extra (edgesam.batch, edgesam.ray, edgesam batch)."""
