"""Benchmarks run by ``make bench``: each ``bench_*.py`` is one script printing figures."""
