"""Explanation: exact contributions and reason codes, fairness rates, and the model card."""
