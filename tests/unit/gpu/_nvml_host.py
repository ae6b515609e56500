"""Whether this host has an NVIDIA driver: the GPU tests that need one, or need its absence, skip
on that answer."""

from __future__ import annotations

import ctypes


def nvml_loadable() -> bool:
    # The same probe pynvml makes: can the driver's NVML library be loaded here?
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True
