"""Modelling: candidate pipelines, the honest benchmark and blend, probe feature selection, MLflow tracking."""
