"""Install the uv binary from its PyPI wheel with the standard library only.

Used inside image builds: works on any Python base (Debian's python3 has no pip), checks the
wheel's SHA-256 against the digest PyPI publishes, and trusts the system CA store (so extra
CA certificates installed for a TLS-intercepting proxy apply).
Usage: python3 fetch_uv.py VERSION DEST_DIR
"""

# S310: the index URL is https (or a mirror the builder chose); S103: uv is an executable.
# ruff: noqa: S310, S103

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import stat
import sys
import urllib.parse
import urllib.request
import zipfile

INDEX = os.environ.get("UV_WHEEL_INDEX", "https://pypi.org/pypi")
TAGS = {"x86_64": "manylinux_2_17_x86_64", "aarch64": "manylinux_2_17_aarch64"}


def main(version: str, dest: str) -> int:
    tag = TAGS.get(platform.machine())
    if tag is None:
        print(f"fetch_uv: no uv wheel mapping for {platform.machine()}", file=sys.stderr)
        return 1
    # The project-wide JSON (some mirrors do not serve the per-version endpoint).
    index_url = f"{INDEX}/uv/json"
    with urllib.request.urlopen(index_url, timeout=60) as resp:
        files = json.load(resp)["releases"].get(version, [])
    wheels = [u for u in files if u["filename"].endswith(".whl") and tag in u["filename"]]
    if not wheels:
        print(f"fetch_uv: uv {version} has no {tag} wheel on {INDEX}", file=sys.stderr)
        return 1
    wheel = wheels[0]
    # Mirrors may answer with URLs relative to the JSON document.
    with urllib.request.urlopen(urllib.parse.urljoin(index_url, wheel["url"]), timeout=300) as resp:
        data = resp.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != wheel["digests"]["sha256"]:
        print(f"fetch_uv: sha256 mismatch for {wheel['filename']}", file=sys.stderr)
        return 1
    os.makedirs(dest, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            base = name.rsplit("/", 1)[-1]
            if "/scripts/" in name and base in {"uv", "uvx"}:
                target = os.path.join(dest, base)
                with open(target, "wb") as out:
                    out.write(archive.read(name))
                os.chmod(
                    target, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
                )
    print(f"fetch_uv: installed uv {version} ({wheel['filename']}) into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
