"""The Containerfile reader used by the image contract test reads what Docker would record."""

from __future__ import annotations

import pytest
from nix_containerfile import ContainerfileError, parse, parse_duration

MULTI_STAGE = r"""
# syntax comment
ARG BASE=python:3.11-slim
ARG UID=10001
FROM ${BASE} AS build
USER root
CMD ["build-only"]

FROM scratch
ARG UID
ARG GID=${UID}
ARG SOURCE=https://example.invalid/keel
LABEL org.opencontainers.image.source="${SOURCE}" \
      # a comment inside a continuation
      org.opencontainers.image.version=1.2.3
ENV APP=/app \
    PATH=$APP/bin:/bin
ENV LEGACY value with spaces
WORKDIR ${APP}
USER ${UID}:${GID}
EXPOSE 8000 9000/udp
VOLUME ["/var/log/keel"]
HEALTHCHECK --interval=1m30s --retries=5 CMD ["keel", "healthcheck", "api"]
CMD ["serve"]
ENTRYPOINT ["keel"]
"""


def test_final_stage_with_arg_and_env_substitution() -> None:
    cfg = parse(MULTI_STAGE)
    assert cfg.base == "scratch"
    assert cfg.user == "10001:10001"
    assert cfg.workdir == "/app"
    assert cfg.env == {"APP": "/app", "PATH": "/app/bin:/bin", "LEGACY": "value with spaces"}
    assert cfg.labels == {
        "org.opencontainers.image.source": "https://example.invalid/keel",
        "org.opencontainers.image.version": "1.2.3",
    }
    assert cfg.exposed_ports == {"8000/tcp", "9000/udp"}
    assert cfg.volumes == {"/var/log/keel"}
    # CMD set in this stage survives a later ENTRYPOINT.
    assert (cfg.entrypoint, cfg.cmd) == (["keel"], ["serve"])
    assert cfg.healthcheck is not None
    assert cfg.healthcheck.test == ["CMD", "keel", "healthcheck", "api"]
    assert (cfg.healthcheck.interval_s, cfg.healthcheck.retries) == (90.0, 5)
    # Options left out take Docker's defaults.
    assert (cfg.healthcheck.timeout_s, cfg.healthcheck.start_period_s) == (30.0, 0.0)


def test_shell_forms_are_recorded_as_docker_does() -> None:
    cfg = parse("FROM scratch\nHEALTHCHECK CMD keel healthcheck api\nENTRYPOINT keel serve\n")
    assert cfg.healthcheck is not None
    assert cfg.healthcheck.test == ["CMD-SHELL", "keel healthcheck api"]
    assert cfg.entrypoint == ["/bin/sh", "-c", "keel serve"]


def test_healthcheck_none_and_inherited_cmd_reset() -> None:
    cfg = parse('FROM scratch\nHEALTHCHECK NONE\nENTRYPOINT ["keel"]\n')
    assert cfg.healthcheck is None
    assert cfg.cmd == []


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten seconds", "5x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ContainerfileError):
        parse_duration(text)


def test_instruction_before_from_is_an_error() -> None:
    with pytest.raises(ContainerfileError, match="before the first FROM"):
        parse("USER 1\nFROM scratch\n")
