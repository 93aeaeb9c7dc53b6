"""Local servers (gunicorn, PostgreSQL) started for real by the tests and the benchmarks."""
