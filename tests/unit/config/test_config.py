"""keel.config: layering, _FILE, every error path, prod guards, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import ConfigError, SecretStr, load, load_with_sources
from keel.config.fields import field_specs
from keel.config.show import render_table

STRONG = "Zq8v2N4kTqLx9wPb7Hc5Rm3Jd6Ff1GsA"  # 32 chars, no placeholder pattern


def make_root(tmp_path: Path, env: str = "dev", body: str = "") -> Path:
    (tmp_path / "configs" / env).mkdir(parents=True)
    (tmp_path / "configs" / env / "app.env").write_text(body)
    return tmp_path


def no_secrets(path: Path, environ: object, env: str) -> dict[str, str]:
    raise AssertionError("no secrets file expected")


def test_defaults_then_app_env_then_process_env(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="HTTP_PORT=9000\nDB_POOL_SIZE=7\n")
    loaded = load_with_sources("dev", root=root, environ={"DB_POOL_SIZE": "11"})
    settings = loaded.settings
    assert settings.http.port == 9000
    assert settings.db.pool_size == 11
    assert settings.http.workers == 1  # default
    assert str(loaded.sources["HTTP_PORT"]).startswith("app.env (")
    assert loaded.sources["HTTP_PORT"].where.endswith("configs/dev/app.env:1")
    assert str(loaded.sources["DB_POOL_SIZE"]) == "env (env DB_POOL_SIZE)"
    assert str(loaded.sources["HTTP_WORKERS"]) == "default"


def test_secrets_layer_sits_between_app_env_and_process_env(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="DB_USERNAME=from_file\nDB_DATABASE=from_file\n")
    (root / "secrets").mkdir()
    (root / "secrets" / "dev.yaml").write_text("placeholder: the reader below is used")

    def reader(path: Path, environ: object, env: str) -> dict[str, object]:
        return {"DB_USERNAME": "from_secrets", "db": {"database": "nested", "password": STRONG}}

    loaded = load_with_sources(
        "dev", root=root, environ={"DB_DATABASE": "from_env"}, secrets_reader=reader
    )
    assert loaded.settings.db.username == "from_secrets"
    assert loaded.settings.db.database == "from_env"
    assert loaded.settings.db.password == STRONG
    assert STRONG in loaded.settings.secret_values
    assert "from_secrets" in loaded.settings.secret_values  # everything in the file is secret
    assert loaded.sources["DB_PASSWORD"].layer == "secrets"


def test_file_variant_reads_the_value_and_strips_the_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "db_password"
    secret_file.write_text(STRONG + "\n")
    root = make_root(tmp_path)
    loaded = load_with_sources("dev", root=root, environ={"DB_PASSWORD_FILE": str(secret_file)})
    assert loaded.settings.db.password == STRONG
    assert "via DB_PASSWORD_FILE" in loaded.sources["DB_PASSWORD"].where


def test_missing_file_variant_names_the_variable_and_path(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={"DB_PASSWORD_FILE": "/nonexistent/pw"})
    message = str(info.value)
    assert "env DB_PASSWORD_FILE" in message
    assert "/nonexistent/pw" in message
    assert "No such file" in message


def test_name_and_name_file_both_set_is_an_error(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("x")
    with pytest.raises(ConfigError, match="both set"):
        load("dev", root=root, environ={"DB_PASSWORD": "a", "DB_PASSWORD_FILE": str(pw)})


def test_every_problem_is_reported_at_once_with_file_line_key_type_and_value(
    tmp_path: Path,
) -> None:
    root = make_root(
        tmp_path,
        body="HTTP_PORT=eighty\nDB_HOTS=db\nDEBUG=maybe\nDB_TYPE=sybase\nthis is not a line\n",
    )
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={"HTTP_WORKERS": "two", "DB_PASSWORD": "x"})
    problems = info.value.problems
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "app.env:1: HTTP_PORT: expected an integer, got 'eighty'" in text
    assert "app.env:2: unknown key DB_HOTS; did you mean DB_HOST?" in text
    assert "app.env:3: DEBUG: expected true or false, got 'maybe'" in text
    assert "DB_TYPE: expected one of sqlite, postgresql, mysql, oracle, got 'sybase'" in text
    assert "app.env:5: not a KEY=value line" in text
    assert "env HTTP_WORKERS: HTTP_WORKERS: expected an integer, got 'two'" in text


def test_bad_secret_value_is_masked_in_the_error(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "secrets").mkdir()
    (root / "secrets" / "dev.yaml").write_text("x")

    def reader(path: Path, environ: object, env: str) -> dict[str, object]:
        return {"REDIS_PASSWORD": ["not", "a", "string-but-secret-ish"], "REDIS_PORT": "s3cr3t"}

    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={}, secrets_reader=reader)
    assert "s3cr3t" in str(info.value)  # REDIS_PORT is not a secret: shown
    root2 = make_root(tmp_path / "b", body="HTTP_MAX_BODY_BYTES=1\n")
    with pytest.raises(ConfigError) as info2:
        load("dev", root=root2, environ={"JWT_EXPIRE_MINUTES": "0"})
    assert "JWT_EXPIRE_MINUTES: expected 1..43200, got 0" in str(info2.value)


def test_unknown_app_env_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load("staging", root=make_root(tmp_path), environ={})
    assert "valid: local, dev, test, prod" in str(info.value)


def test_missing_env_dir_lists_the_ones_present(tmp_path: Path) -> None:
    root = make_root(tmp_path, env="dev")
    with pytest.raises(ConfigError) as info:
        load("test", root=root, environ={})
    message = str(info.value)
    assert "configs/test/app.env does not exist" in message
    assert "environments with a config here: dev" in message


def test_app_env_comes_from_the_environment_by_default(tmp_path: Path) -> None:
    root = make_root(tmp_path, env="test")
    assert load(root=root, environ={"APP_ENV": "test"}).app.env == "test"


def test_app_env_line_contradicting_the_selection_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="APP_ENV=prod\n")
    with pytest.raises(ConfigError, match="contradicts"):
        load("dev", root=root, environ={})


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="HTTP_PORT=1\n\nHTTP_PORT=2\n")
    with pytest.raises(ConfigError, match=r"app.env:3: HTTP_PORT is already set on line 1"):
        load("dev", root=root, environ={})


def test_lists_quotes_and_comments(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        body="# comment\nexport CORS_ORIGINS=https://a.example, https://b.example\n"
        'APP_NAME="keel # not a comment"\nLOG_FILE=var/app.log # trailing comment\n',
    )
    settings = load("dev", root=root, environ={})
    assert settings.http.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.app.name == "keel # not a comment"
    assert settings.log.file == "var/app.log"


def prod_root(tmp_path: Path, body: str = "") -> Path:
    return make_root(
        tmp_path,
        env="prod",
        body="DB_TYPE=postgresql\nREDIS_BACKEND=redis\nALLOWED_HOSTS=api.example.com\n" + body,
    )


def strong_env() -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": STRONG,
        "DB_PASSWORD": STRONG[:20],
        "REDIS_PASSWORD": STRONG[5:25],
        "API_KEY_ENCRYPTION_KEY": STRONG[::-1],
    }


def test_prod_accepts_strong_settings(tmp_path: Path) -> None:
    settings = load("prod", root=prod_root(tmp_path), environ=strong_env())
    assert settings.app.env == "prod"


@pytest.mark.parametrize(
    ("body", "environ", "expected"),
    [
        ("DEBUG=true\n", {}, "DEBUG: must be false in prod"),
        ("CORS_ORIGINS=*\n", {}, "CORS_ORIGINS: '*' is refused in prod"),
        ("GPU_FAKE_NVML=h100x1\n", {}, "GPU_FAKE_NVML: fake GPUs are for tests"),
        ("", {"JWT_SECRET_KEY": "change-me-change-me-change-me-change-me"}, "placeholder"),
        ("", {"DB_PASSWORD": "short"}, "DB_PASSWORD: too short for prod (5 < 16"),
        ("", {"JWT_SECRET_KEY": STRONG[:20]}, "JWT_SECRET_KEY: too short for prod (20 < 32"),
    ],
)
def test_prod_guards(tmp_path: Path, body: str, environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load("prod", root=prod_root(tmp_path, body), environ={**strong_env(), **environ})
    assert expected in str(info.value)
    assert "change-me-change-me" not in str(info.value)  # the bad secret itself is not echoed


def test_prod_requires_its_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load("prod", root=prod_root(tmp_path), environ={})
    for name in ("JWT_SECRET_KEY", "DB_PASSWORD", "REDIS_PASSWORD", "API_KEY_ENCRYPTION_KEY"):
        assert f"{name}: required in prod" in str(info.value)


def test_secrets_are_masked_in_repr_and_config_show(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    loaded = load_with_sources("dev", root=root, environ={"DB_PASSWORD": STRONG})
    assert STRONG not in repr(loaded.settings)
    assert isinstance(loaded.settings.db.password, SecretStr)
    table = render_table(loaded)
    assert STRONG not in table
    assert "****(32 chars)" in table
    assert STRONG in render_table(loaded, reveal=True)


def test_database_url_password_is_registered_as_a_secret(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    url = "postgresql+asyncpg://keel:Pa55word-in-url@db:5432/keel"
    settings = load("dev", root=root, environ={"DATABASE_URL": url})
    assert "Pa55word-in-url" in settings.secret_values


def test_setting_names_are_unique_and_upper_case() -> None:
    names = list(field_specs())
    assert len(names) == len(set(names))
    assert all(name == name.upper() for name in names)


def test_committed_env_configs_load() -> None:
    """Every committed configs/<env>/app.env parses and validates (secrets aside)."""
    root = Path(__file__).resolve().parents[3]
    for env in ("local", "dev", "test"):
        settings = load(
            env,
            root=root,
            environ={"SOPS_AGE_KEY_FILE": "/nonexistent"},
            secrets_reader=lambda path, environ, env: {},
        )
        assert settings.app.env == env


def test_range_and_type_problems_are_reported_in_one_pass(tmp_path: Path) -> None:
    root = make_root(tmp_path, body="HTTP_PORT=0\nDB_POOL_SIZE=5000\n")
    with pytest.raises(ConfigError) as info:
        load("dev", root=root, environ={"HTTP_WORKERS": "two", "WORKER_PROCESSES": "0"})
    text = str(info.value)
    assert "app.env:1: HTTP_PORT: expected 1..65535, got 0" in text
    assert "app.env:2: DB_POOL_SIZE: expected 1..1000, got 5000" in text
    assert "env HTTP_WORKERS: HTTP_WORKERS: expected an integer, got 'two'" in text
    assert "env WORKER_PROCESSES: WORKER_PROCESSES: expected 1..256, got 0" in text
