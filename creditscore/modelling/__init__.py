"""Modelling: candidate pipelines, the honest benchmark and the served ensemble, probe feature selection, MLflow tracking."""
