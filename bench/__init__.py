"""Benchmarks run by ``make bench``: each ``bench_*.py`` here is one script with figures on stdout."""
