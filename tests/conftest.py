"""Shared by every suite: importing this (package ``tests``) puts the repository root on
``sys.path``, so unit, service and integration tests all reach ``tests.support``."""
