"""Benchmarks: long runs that print figures (`make bench-quality`, `make bench-speed`); not part of `make test`."""
