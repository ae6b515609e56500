"""Shared by every suite: importing this (package ``tests``) puts the repository root on
``sys.path``, so unit, service and integration tests all reach ``tests.support``.

It also makes ``keel_testing`` (the fake NVML, test support outside the ``keel`` wheel)
importable where ``keel`` is installed as a wheel rather than from this checkout (the Nix
``unit-tests`` check): ``src/`` goes at the end of ``sys.path``, so an installed ``keel`` still
wins.
"""

from __future__ import annotations

import importlib.util
import sys

from tests.support import REPO

if importlib.util.find_spec("keel_testing") is None:
    sys.path.append(str(REPO / "src"))
