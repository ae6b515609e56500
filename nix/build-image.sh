#!/usr/bin/env bash
# Build an OCI image with Nix and load it into Docker: `make image` / `make image-gpu`.
#   nix/build-image.sh image       -> keel:latest
#   nix/build-image.sh image-gpu   -> keel:gpu
# (names and tags: nix/config.json). Without a usable Nix, says so and points at the
# Containerfile build, which honours the same image contract.
set -euo pipefail
cd "$(dirname "$0")/.."

attr="${1:?usage: nix/build-image.sh image|image-gpu}"
case "$attr" in
  image | image-gpu) ;;
  *) echo "nix/build-image.sh: unknown output '$attr' (image or image-gpu)" >&2; exit 2 ;;
esac

refuse() {
  echo "make $attr: $1" >&2
  echo "  Build the same image without Nix from the Containerfile:  make image-docker" >&2
  echo "  Or install Nix >= 2.18 with flakes: https://nixos.org/download  (docs/nix.md)" >&2
  exit 1
}

command -v nix >/dev/null 2>&1 || refuse "nix is not installed."

# The pinned nixpkgs needs a recent Nix; Debian 12's nix-bin (2.8) can only run `make check-nix`.
version=$(nix --version | grep -oE '[0-9]+\.[0-9]+' | head -n 1)
IFS=. read -r major minor <<<"$version"
if ((major < 2 || (major == 2 && minor < 18))); then
  refuse "found Nix $version; building the pinned nixpkgs needs Nix >= 2.18."
fi

link="result-$attr"
nix --extra-experimental-features 'nix-command flakes' build --print-build-logs ".#$attr" --out-link "$link"

if command -v docker >/dev/null 2>&1; then
  docker load <"$link"
else
  echo "docker not found: the image archive is $link (load it with: docker load < $link)" >&2
fi
