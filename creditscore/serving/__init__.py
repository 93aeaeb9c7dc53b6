"""Serving: verified model artifacts and the fast scorer the API runs."""
