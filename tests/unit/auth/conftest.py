from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _auth_material import PemPair, make_ec, make_rsa


@pytest.fixture(scope="session")
def rsa_pem() -> PemPair:
    return make_rsa()


@pytest.fixture(scope="session")
def ec_pem() -> PemPair:
    return make_ec()


@pytest.fixture
def resolve(tmp_path: Path) -> Callable[[str], Path]:
    return lambda value: tmp_path / value
