"""#14 defect 7: numeric security settings have ranges, reported in the same pass as every
other problem, and prod refuses what the range allows but a deployment must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import ConfigError, load

STRONG = "Zq8v2N4kTqLx9wPb7Hc5Rm3Jd6Ff1GsA"


def make_root(tmp_path: Path, env: str = "dev", body: str = "") -> Path:
    (tmp_path / "configs" / env).mkdir(parents=True)
    (tmp_path / "configs" / env / "app.env").write_text(body)
    return tmp_path


def prod_root(tmp_path: Path, body: str) -> Path:
    base = "DB_TYPE=postgresql\nREDIS_BACKEND=redis\nALLOWED_HOSTS=api.example.com\n"
    return make_root(tmp_path, env="prod", body=base + body)


def strong_env() -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": STRONG,
        "DB_PASSWORD": STRONG[:20],
        "REDIS_PASSWORD": STRONG[5:25],
        "API_KEY_ENCRYPTION_KEY": STRONG[::-1],
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SIGNATURE_WINDOW_SECONDS", "-5", "1..86400, got -5"),
        ("JWT_LEEWAY_SECONDS", "-1", "0..3600, got -1"),
        ("JWT_MAX_BYTES", "0", "512..65536, got 0"),
        ("AUTH_LOGIN_FAILURES_PER_USER", "0", "1..10000, got 0"),
        ("JWT_REVOCATION_CACHE_SECONDS", "-0.5", "0..60, got -0.5"),
    ],
)
def test_out_of_range_is_reported_with_the_other_problems(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    root = make_root(tmp_path, body=f"{name}={value}\nHTTP_WORKERS=many\n")
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={})
    text = str(info.value)
    assert f"app.env:1: {name}: expected {expected}" in text
    assert "HTTP_WORKERS: expected an integer" in text  # the same report, one pass


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("SIGNATURE_WINDOW_SECONDS=86400\n", "SIGNATURE_WINDOW_SECONDS: at most 900 in prod"),
        ("JWT_LEEWAY_SECONDS=3600\n", "JWT_LEEWAY_SECONDS: at most 120 in prod"),
        ("", "ALLOWED_HOSTS: '*' is refused in prod"),
    ],
)
def test_prod_refuses_huge_windows_and_any_host(tmp_path: Path, body: str, expected: str) -> None:
    environ = strong_env() | ({} if body else {"ALLOWED_HOSTS": "*"})
    with pytest.raises(ConfigError) as info:
        load("prod", root=prod_root(tmp_path, body), environ=environ)
    assert expected in str(info.value)


def test_values_beyond_the_range_never_load(tmp_path: Path) -> None:
    """A 1000-day window and a 10**7 s leeway (the review's values) fail in every env."""
    root = make_root(
        tmp_path, body="SIGNATURE_WINDOW_SECONDS=86400000\nJWT_LEEWAY_SECONDS=10000000\n"
    )
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={})
    assert "SIGNATURE_WINDOW_SECONDS: expected 1..86400" in str(info.value)
    assert "JWT_LEEWAY_SECONDS: expected 0..3600" in str(info.value)


def test_shipped_prod_config_names_its_hosts() -> None:
    repo = Path(__file__).resolve().parents[3]
    text = (repo / "configs" / "prod" / "app.env").read_text()
    hosts = next(line for line in text.splitlines() if line.startswith("ALLOWED_HOSTS="))
    assert "*" not in hosts


def test_shipped_prod_config_loads_with_its_cost_bounds_and_proxies() -> None:
    repo = Path(__file__).resolve().parents[3]
    settings = load("prod", root=repo, environ=strong_env(), secrets_reader=lambda *_: {})
    assert settings.http.allowed_hosts == ["keel.example.com", "localhost", "127.0.0.1"]
    assert settings.http.trusted_proxies == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    worker = settings.worker
    assert (worker.max_active_jobs_per_owner, worker.max_sleep_seconds) == (20, 60)
    assert worker.max_checksum_mebibytes == 256


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="TRUSTED_PROXIES=10.0.0.0/8,nginx\n")
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={})
    assert "TRUSTED_PROXIES: 'nginx' is not an IP address or CIDR block" in str(info.value)
