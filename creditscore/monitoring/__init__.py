"""Monitoring: drift of new applications against the training clients, and the inference log they come from."""
