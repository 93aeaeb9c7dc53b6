"""Decision: the business cost of an error, the threshold of least cost, and probability calibration."""
