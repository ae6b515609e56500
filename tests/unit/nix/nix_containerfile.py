"""Read the runtime contract out of a Containerfile/Dockerfile (the final stage's config).

Only what the image contract needs: USER, ENTRYPOINT, CMD, EXPOSE, HEALTHCHECK, ENV, LABEL,
WORKDIR, VOLUME, with ARG/ENV substitution (${VAR}, $VAR, ${VAR:-default}), line continuations
and comments. Values are normalised to what Docker writes into the image config, so they can be
compared with the config nix/image.nix gives dockerTools.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

# Docker's defaults when HEALTHCHECK leaves an option out.
HEALTHCHECK_DEFAULTS_S = {"interval": 30.0, "timeout": 30.0, "start-period": 0.0}
HEALTHCHECK_DEFAULT_RETRIES = 3

_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_DURATION = re.compile(r"(?P<num>\d+(?:\.\d+)?)(?P<unit>ns|us|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class Healthcheck:
    test: list[str]
    interval_s: float = HEALTHCHECK_DEFAULTS_S["interval"]
    timeout_s: float = HEALTHCHECK_DEFAULTS_S["timeout"]
    start_period_s: float = HEALTHCHECK_DEFAULTS_S["start-period"]
    retries: int = HEALTHCHECK_DEFAULT_RETRIES


@dataclass
class ImageConfig:
    user: str | None = None
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    exposed_ports: set[str] = field(default_factory=set)
    healthcheck: Healthcheck | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    volumes: set[str] = field(default_factory=set)
    base: str = ""


class ContainerfileError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Go duration ("1m30s", "500ms", "10s") in seconds."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match["num"]) * _UNIT_S[match["unit"]]
        pos = match.end()
    if pos != len(text) or not text:
        raise ContainerfileError(f"not a duration: {text!r}")
    return total


def substitute(text: str, variables: dict[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        value = variables.get(name)
        if match["op"] == "-":
            return value if value else match["word"]
        if match["op"] == "+":
            return match["word"] if value else ""
        return value or ""

    return _VAR.sub(repl, text)


def logical_lines(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    escape = "\\"
    lines: list[tuple[str, str]] = []
    buffer = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            m = re.match(r"#\s*escape\s*=\s*(\S)", stripped)
            if m and not lines:
                escape = m[1]
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith(escape):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        if buffer.strip():
            instr, _, args = buffer.strip().partition(" ")
            lines.append((instr.upper(), args.strip()))
        buffer = ""
    if buffer.strip():
        instr, _, args = buffer.strip().partition(" ")
        lines.append((instr.upper(), args.strip()))
    return lines


def _exec_or_shell(args: str) -> tuple[list[str], bool]:
    """JSON (exec) form -> (argv, True); shell form -> (["/bin/sh", "-c", args], False)."""
    if args.startswith("["):
        try:
            value = json.loads(args)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value, True
    return ["/bin/sh", "-c", args], False


def _key_values(args: str, variables: dict[str, str]) -> dict[str, str]:
    """ENV/LABEL arguments: `k=v k2="v 2"` or the legacy `k v` form."""
    parts = shlex.split(args, posix=True)
    if parts and "=" not in parts[0]:
        key, _, rest = args.partition(" ")
        return {key: substitute(rest.strip(), variables)}
    result: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise ContainerfileError(f"expected key=value, got {part!r}")
        result[key] = substitute(value, {**variables, **result})
    return result


def _healthcheck(args: str, variables: dict[str, str]) -> Healthcheck | None:
    tokens = args.split()
    options: dict[str, str] = {}
    while tokens and tokens[0].startswith("--"):
        name, _, value = tokens.pop(0)[2:].partition("=")
        options[name] = substitute(value, variables)
    rest = " ".join(tokens)
    kind, _, command = rest.partition(" ")
    if kind.upper() == "NONE":
        return None
    if kind.upper() != "CMD":
        raise ContainerfileError(f"HEALTHCHECK must be NONE or CMD ..., got {rest!r}")
    argv, exec_form = _exec_or_shell(command.strip())
    test = ["CMD", *argv] if exec_form else ["CMD-SHELL", command.strip()]
    check = Healthcheck(test=test)
    if "interval" in options:
        check.interval_s = parse_duration(options["interval"])
    if "timeout" in options:
        check.timeout_s = parse_duration(options["timeout"])
    if "start-period" in options:
        check.start_period_s = parse_duration(options["start-period"])
    if "retries" in options:
        check.retries = int(options["retries"])
    return check


def parse(text: str) -> ImageConfig:
    """The config of the final stage, as Docker would record it."""
    global_args: dict[str, str] = {}
    config: ImageConfig | None = None
    stage_vars: dict[str, str] = {}
    cmd_set = False
    for instr, args in logical_lines(text):
        if instr == "ARG":
            name, sep, default = args.partition("=")
            name = name.strip()
            if config is None:
                global_args[name] = default.strip().strip('"') if sep else ""
            else:
                # An ARG in a stage re-declares a global one (keeping its default) or adds one.
                stage_vars[name] = (
                    substitute(default.strip().strip('"'), stage_vars)
                    if sep
                    else global_args.get(name, "")
                )
            continue
        if instr == "FROM":
            image = next(word for word in args.split() if not word.startswith("--"))
            # The base's own config is not known here; the contract test needs a final stage
            # that sets everything it checks (FROM scratch, as Keel's does).
            config = ImageConfig(base=substitute(image, global_args))
            stage_vars = {}
            cmd_set = False
            continue
        if config is None:
            raise ContainerfileError(f"{instr} before the first FROM")
        variables = {**stage_vars, **config.env}
        if instr == "USER":
            config.user = substitute(args, variables)
        elif instr == "WORKDIR":
            config.workdir = substitute(args, variables)
        elif instr == "ENTRYPOINT":
            config.entrypoint = _exec_or_shell(args)[0]
            if not cmd_set:
                config.cmd = []  # Docker drops an inherited CMD when ENTRYPOINT is set
        elif instr == "CMD":
            config.cmd = _exec_or_shell(args)[0]
            cmd_set = True
        elif instr == "EXPOSE":
            for port in substitute(args, variables).split():
                config.exposed_ports.add(port if "/" in port else f"{port}/tcp")
        elif instr == "ENV":
            config.env.update(_key_values(args, variables))
        elif instr == "LABEL":
            config.labels.update(_key_values(args, variables))
        elif instr == "VOLUME":
            argv, exec_form = _exec_or_shell(args)
            config.volumes.update(argv if exec_form else args.split())
        elif instr == "HEALTHCHECK":
            config.healthcheck = _healthcheck(args, variables)
    if config is None:
        raise ContainerfileError("no FROM instruction")
    return config
