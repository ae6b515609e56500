"""Keel: a reproducible Litestar + Taskiq backend service."""

__version__ = "0.1.0"
