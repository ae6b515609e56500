"""Test support for Keel, kept out of the shipped package.

Not part of the ``keel`` wheel (``[tool.hatch.build.targets.wheel] packages = ["src/keel"]``),
so neither the Containerfile image nor ``nix build .#image`` contains it. A checkout has it
(the editable install puts ``src/`` on the path), and the test stack mounts it into a container
that needs it (``PYTHONPATH``; see docs/gpu.md). ``keel`` imports it only when
``GPU_FAKE_NVML`` asks for fake GPUs.
"""
