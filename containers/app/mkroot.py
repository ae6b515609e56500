"""Assemble a minimal root filesystem for the app image (a "distroless" runtime).

Copies only what the locked virtualenv needs to run: the base image's Python interpreter and
standard library, the shared libraries that it and every extension module link against (found
with ldd), the CA bundle, and an /etc/passwd naming uid/gid 10001. No shell, no package
manager. Works on any glibc base with python3 (Debian's packages or the official python image).
Usage (inside the build stage): python3 mkroot.py VENV ROOTFS
"""

# S603/S607: runs ldd and this interpreter on files of the build stage itself.
# ruff: noqa: S603, S607

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# Standard-library parts a server never imports (unittest stays: the fake NVML uses
# unittest.mock).
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "venv",
    "config-3.11-x86_64-linux-gnu",
}
# Extension modules for terminals and old database formats; they drag in readline, ncurses,
# Berkeley DB and Kerberos libraries.
DYNLOAD_SKIP = ("_dbm", "_gdbm", "readline", "_curses", "_curses_panel", "nis", "_tkinter")
LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def copy_path(src: Path, rootfs: Path) -> None:
    """Copy src into rootfs at the same path, keeping symlinks as symlinks (and their targets)."""
    dest = rootfs / src.relative_to("/")
    if dest.exists() or dest.is_symlink():
        return
    real_parent = Path(os.path.realpath(src.parent))
    if real_parent != src.parent:
        # A merged-/usr alias such as /lib -> usr/lib: copy the real path, link the alias.
        copy_path(real_parent / src.name, rootfs)
        link_dirs(src.parent, rootfs)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        target = os.readlink(src)
        dest.symlink_to(target)
        copy_path(
            (src.parent / target).resolve() if not os.path.isabs(target) else Path(target), rootfs
        )
    else:
        shutil.copy2(src, dest)


def link_dirs(path: Path, rootfs: Path) -> None:
    """Recreate the directory symlinks (e.g. /lib64 -> usr/lib64) along path."""
    current = Path("/")
    for part in path.relative_to("/").parts:
        current = current / part
        dest = rootfs / current.relative_to("/")
        if current.is_symlink() and not (dest.exists() or dest.is_symlink()):
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(os.readlink(current))


def needed_libraries(binaries: list[Path]) -> set[Path]:
    libs: set[Path] = set()
    for chunk in range(0, len(binaries), 200):
        out = subprocess.run(
            ["ldd", *map(str, binaries[chunk : chunk + 200])],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in out.splitlines():
            if "not found" in line:
                raise SystemExit(f"mkroot: unresolved library: {line.strip()}")
            match = LDD_LINE.search(line)
            if match:
                libs.add(Path(match.group(1)))
    return libs


def main(venv: Path, rootfs: Path) -> int:
    python = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload"
    home = Path((venv / "pyvenv.cfg").read_text().split("home = ", 1)[1].splitlines()[0])

    for name in os.listdir(home):
        if name.startswith("python3"):
            copy_path(home / name, rootfs)
    copy_path(python, rootfs)
    link_dirs(home, rootfs)
    shutil.copytree(
        stdlib,
        rootfs / stdlib.relative_to("/"),
        symlinks=True,
        ignore=lambda d, names: [
            n
            for n in names
            if (Path(d) == stdlib and n in STDLIB_SKIP)
            or n.startswith("site-packages")
            or n.startswith("dist-packages")
        ],
        dirs_exist_ok=True,
    )
    dynload_dest = rootfs / dynload.relative_to("/")
    if dynload.is_dir() and not dynload_dest.exists():
        shutil.copytree(dynload, dynload_dest, symlinks=True)
    for skipped in DYNLOAD_SKIP:
        for so in dynload_dest.glob(f"{skipped}.*.so"):
            so.unlink()
    # Bytecode for the standard library too (timestamps kept by copy2, paths as at run time).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j0",
            "-s",
            str(rootfs),
            "-p",
            "/",
            str(rootfs / stdlib.relative_to("/")),
        ],
        check=True,
    )

    binaries = [python, *dynload_dest.glob("*.so"), *venv.rglob("*.so"), *venv.rglob("*.so.*")]
    binaries = [b for b in binaries if b.is_file() and not b.is_symlink()]
    for lib in sorted(needed_libraries(binaries)):
        if not str(lib).startswith(str(venv)):
            copy_path(lib, rootfs)
            link_dirs(lib.parent, rootfs)

    etc = rootfs / "etc"
    (etc / "ssl" / "certs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(
        "/etc/ssl/certs/ca-certificates.crt", etc / "ssl" / "certs" / "ca-certificates.crt"
    )
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "keel:x:10001:10001:keel:/nonexistent:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nkeel:x:10001:\nnogroup:x:65534:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    for path, mode in (("tmp", 0o1777), ("var/log/keel", 0o755), ("app", 0o755)):
        (rootfs / path).mkdir(parents=True, exist_ok=True)
        os.chmod(rootfs / path, mode)
    os.chown(rootfs / "var/log/keel", 10001, 10001)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
