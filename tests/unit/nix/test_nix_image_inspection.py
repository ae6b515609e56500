"""checks.image-config(-gpu), the script that inspects the real image on a Nix host, run here on
a docker-archive shaped like dockerTools' output and carrying the config nix/image.nix gives.

The script's jq filters and file checks run for real; the archive layout (manifest.json, config
JSON, one tar per layer) is the docker-archive format `docker load` reads.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from nix_support import NIX_DIR, nix_eval

STORE_VENV = "nix/store/00000000000000000000000000000000-keel-env"
PLACEHOLDER = "@IMAGE_ARCHIVE@"


@cache
def check_script(variant: str) -> str:
    attr = "image-config" if variant == "cpu" else "image-gpu-config"
    expr = f"""
      let
        stub = import ./nix/tests/stub.nix;
        archive = {{ outPath = "{PLACEHOLDER}"; }};
        checks = import ./nix/checks.nix {{
          inherit (stub) pkgs;
          py = {{ }};
          image = archive;
          image-gpu = archive;
          settings = builtins.fromJSON (builtins.readFile ./nix/config.json);
          src = ./.;
        }};
      in checks.{attr}.script
    """
    script: str = nix_eval(expr=expr)
    return script


@pytest.fixture(scope="module")
def images() -> dict[str, Any]:
    if shutil.which("jq") is None:
        pytest.skip("needs jq (Debian: apt-get install -y jq)")
    data: dict[str, Any] = nix_eval(file=NIX_DIR / "tests" / "image-policy.nix", attr="images")
    return data


def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"", link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer(entries: list[tuple[str, str | None]]) -> bytes:
    """A layer tar: (path, None) for a directory, (path, target) for a symlink, (path, "") file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, target in entries:
            if target is None:
                add_dir(tar, name)
            elif target == "":
                add_file(tar, name, b"x")
            else:
                add_file(tar, name, link=target)
    return buf.getvalue()


def write_archive(path: Path, config: dict[str, Any], extra_root: tuple[str, ...] = ()) -> None:
    layers = {
        "aaa/layer.tar": layer([(f"{STORE_VENV}/", None), (f"{STORE_VENV}/bin/keel", "")]),
        "bbb/layer.tar": layer(
            [
                ("./", None),
                ("./tmp/", None),
                ("./var/log/keel/", None),
                ("./etc/ssl/certs/ca-certificates.crt", "/nix/store/x-cacert/ca-bundle.crt"),
                ("./app/configs/dev/app.env", "/nix/store/x-keel-configs/dev/app.env"),
                *[(f"./{name}", "") for name in extra_root],
            ]
        ),
    }
    manifest = [{"Config": "cfg.json", "RepoTags": ["keel:latest"], "Layers": list(layers)}]
    with tarfile.open(path, mode="w:gz") as tar:
        for name, blob in [
            ("manifest.json", json.dumps(manifest).encode()),
            ("cfg.json", json.dumps(config).encode()),
            *layers.items(),
        ]:
            add_file(tar, name, blob)


def run_check(
    tmp_path: Path, variant: str, config: dict[str, Any], extra_root: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    archive = tmp_path / "image.tar.gz"
    write_archive(archive, config, extra_root)
    script = check_script(variant).replace(PLACEHOLDER, str(archive))
    work = tmp_path / "build"
    work.mkdir()
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "out": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        check=False,
    )


def image_json(images: dict[str, Any], variant: str) -> dict[str, Any]:
    nix = images[f"x86_64-linux/{variant}"]
    return {"created": nix["created"], "config": nix["config"]}


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_the_image_nix_builds_passes_its_own_inspection(
    tmp_path: Path, images: dict[str, Any], variant: str
) -> None:
    proc = run_check(tmp_path, variant, image_json(images, variant))
    assert proc.returncode == 0, proc.stderr
    recorded = json.loads((tmp_path / "out" / "config.json").read_text())
    assert recorded["config"]["User"] == "10001:10001"


def test_a_shell_at_the_root_fails(tmp_path: Path, images: dict[str, Any]) -> None:
    proc = run_check(tmp_path, "cpu", image_json(images, "cpu"), extra_root=("bin/sh",))
    assert proc.returncode != 0
    assert "shell or package manager" in proc.stderr


def test_root_user_fails(tmp_path: Path, images: dict[str, Any]) -> None:
    config = image_json(images, "cpu")
    config["config"]["User"] = "0:0"
    proc = run_check(tmp_path, "cpu", config)
    assert proc.returncode != 0
    assert '.config.User == "10001:10001"' in proc.stderr


def test_gpu_env_in_the_cpu_image_fails(tmp_path: Path, images: dict[str, Any]) -> None:
    proc = run_check(tmp_path, "cpu", image_json(images, "gpu"))
    assert proc.returncode != 0
    assert "NVIDIA_VISIBLE_DEVICES" in proc.stderr
