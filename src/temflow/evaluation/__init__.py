"""Evaluation metrics (classification, regression, detection)."""
