"""Prometheus metrics: multiprocess-safe families, the exporter, and the hooks that feed them.

:mod:`keel.metrics.multiproc` must run before anything imports ``prometheus_client`` (it decides
multiprocess mode at import); ``keel serve`` and ``keel worker`` call it first.
"""
