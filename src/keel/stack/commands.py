"""``keel stack render|deploy|rm|status``: Keel on Docker Swarm (docs/cluster.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from keel.stack.compose_files import StackError
from keel.stack.render import ENVIRONMENTS, Rendered, StackInputs, escape_dollars, render

HEADER = """\
# Rendered by `keel stack render {env}{gpu}` from {files}.
# Do not edit: change the Compose files and render again. Deploy with `keel stack deploy {env}`
# (runs the migrate job in x-keel-migrate first). What Swarm cannot express: x-keel-unenforced.
"""


def register(subparsers: Any) -> None:
    stack = subparsers.add_parser("stack", help="Docker Swarm: render, deploy, remove the stack")
    actions = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("env", metavar="ENV", help=f"one of {', '.join(ENVIRONMENTS)}")
        parser.add_argument("--gpu", action="store_true", help="add compose.gpu.yaml")
        parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
        parser.add_argument(
            "--credentials-dir",
            type=Path,
            help="existing db_password/redis_password files (default: derived from the SOPS "
            "file into ROOT/.stack/ENV/credentials)",
        )

    render_parser = actions.add_parser("render", help="write the Swarm stack file for ENV")
    common(render_parser)
    render_parser.add_argument(
        "-o", "--output", type=Path, help="file to write (default: ROOT/.stack/ENV/stack.yaml)"
    )
    render_parser.set_defaults(handler=run_render)

    from keel.stack import deploy

    deploy.register(actions, common)


def stack_dir(root: Path, env: str) -> Path:
    return root.resolve() / ".stack" / env


def inputs_from_args(args: argparse.Namespace) -> StackInputs:
    return StackInputs(
        env=args.env,
        root=args.root.resolve(),
        gpu=args.gpu,
        credentials_dir=args.credentials_dir,
        environ=dict(os.environ),
    )


def prepare(args: argparse.Namespace) -> tuple[StackInputs, Rendered, Path]:
    """Credentials derived (unless given), the stack rendered and written; its path."""
    from keel.stack import credentials
    from keel.stack.render import age_key_path

    inputs = inputs_from_args(args)
    if inputs.env not in ENVIRONMENTS:
        raise StackError(f"ENV={inputs.env!r}: use one of {', '.join(ENVIRONMENTS)}")
    if inputs.credentials_dir is None:
        directory = stack_dir(inputs.root, inputs.env) / "credentials"
        credentials.export(inputs.env, inputs.root, age_key_path(inputs), directory)
        inputs = StackInputs(
            env=inputs.env,
            root=inputs.root,
            gpu=inputs.gpu,
            credentials_dir=directory,
            environ=inputs.environ,
        )
    rendered = render(inputs)
    output = getattr(args, "output", None) or stack_dir(inputs.root, inputs.env) / "stack.yaml"
    write_stack(rendered, inputs, output)
    return inputs, rendered, output


def write_stack(rendered: Rendered, inputs: StackInputs, output: Path) -> None:
    files = ", ".join(str(p.relative_to(inputs.root)) for p in inputs.compose_files())
    header = HEADER.format(env=inputs.env, gpu=" --gpu" if inputs.gpu else "", files=files)
    body = yaml.safe_dump(escape_dollars(rendered.stack), sort_keys=False, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(output)


def print_notes(rendered: Rendered) -> None:
    if rendered.notes:
        print("not enforced on Swarm (also in x-keel-unenforced):", file=sys.stderr)
        for note in rendered.notes:
            print(f"  - {note}", file=sys.stderr)


def run_render(args: argparse.Namespace) -> int:
    try:
        _, rendered, output = prepare(args)
    except StackError as exc:
        print(f"keel stack render: {exc}", file=sys.stderr)
        return 2
    print_notes(rendered)
    print(f"keel stack render: wrote {output}")
    return 0
