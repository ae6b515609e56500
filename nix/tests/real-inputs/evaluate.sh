#!/usr/bin/env bash
# The Nix half of nix/check-real-inputs.sh; runs under Nix >= 2.18 (the host's, or Debian
# trixie's in a chroot). Everything lives under $WORK, which the caller prepared:
#   $WORK/src        git repo: commits "base" (the tree under test), "docs" (base + a change
#                    outside the keel package) and "code" (base + a change inside src/keel)
#   $WORK/stub       the nixpkgs stand-in flake (real lib, stubbed builders)
#   $WORK/plan.sh    bash declarations: TREE[node] and NARHASH[node] for each locked input (trees
#                    at the locked revisions), REV[base|docs|code] (commits of $WORK/src)
# Results go to $WORK/out as JSON read from stdout only; stderr goes to *.log files, which the
# caller shows on failure (Nix prints warnings there that must never decide a result).
set -euo pipefail
: "${WORK:?}"
declare -A TREE NARHASH REV
# shellcheck source=/dev/null
source "$WORK/plan.sh"
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/.cache"
mkdir -p "$HOME" "$WORK/out" "$WORK/seed"
# No cache, no sandbox (nothing is built), no build users (a fresh machine may lack nixbld).
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\nsandbox = false\nwarn-dirty = false'
store="$WORK/store"
out="$WORK/out"
nixs() { nix --store "$store" "$@"; }
nix --version >"$out/nix-version.txt"

# Each locked input: if its tree hashes to the locked narHash, add it to the store as the
# fixed-output path Nix would have fetched, so flake.lock resolves unmodified (rev, narHash and
# lastModified all checked by Nix). Otherwise evaluate from the tree with --override-input and
# record the mismatch (the caller reports it).
overrides=(--override-input nixpkgs "path:$WORK/stub")
: >"$out/inputs-mode.txt"
for node in "${!TREE[@]}"; do
  tree=${TREE[$node]}
  locked=${NARHASH[$node]}
  actual=$(nix hash path "$tree" 2>>"$out/seed.log")
  if [[ "$actual" == "$locked" ]]; then
    rm -rf "$WORK/seed/$node" && mkdir -p "$WORK/seed/$node"
    cp -r "$tree" "$WORK/seed/$node/source"
    nix-store --store "$store" --add-fixed --recursive sha256 "$WORK/seed/$node/source" >/dev/null 2>>"$out/seed.log"
    echo "$node seeded $actual" >>"$out/inputs-mode.txt"
  else
    overrides+=(--override-input "$node" "path:$tree")
    echo "$node override $actual" >>"$out/inputs-mode.txt"
  fi
done

flags=(--no-write-lock-file "${overrides[@]}")
evaluate() { # evaluate LABEL REV ATTR APPLY
  local label=$1 rev=$2 attr=$3 apply=$4
  nixs eval --json "${flags[@]}" "git+file://$WORK/src?rev=$rev#$attr" --apply "$apply" \
    >"$out/$label.json" 2>"$out/$label.log"
}

packages='ps: builtins.mapAttrs (system: p: {
  drvPaths = builtins.mapAttrs (_: d: d.drvPath) p;
  venvDeps = p.venv.NIX_PYPROJECT_DEPS;
  imageConfig = p.image.imageArgs.config;
  imageGpuConfig = p.image-gpu.imageArgs.config;
  imageContents = map (c: c.drvPath) p.image.imageArgs.contents;
}) ps'
drvs='xs: builtins.mapAttrs (system: builtins.mapAttrs (_: d: d.drvPath)) xs'
apps='xs: builtins.mapAttrs (system: builtins.mapAttrs (_: a: { inherit (a) type program; })) xs'

status=0
for label in base docs code; do
  evaluate "packages-$label" "${REV[$label]}" packages "$packages" || status=1
done
base=${REV[base]}
evaluate apps "$base" apps "$apps" || status=1
evaluate devShells "$base" devShells "$drvs" || status=1
evaluate checks "$base" checks "$drvs" || status=1
evaluate unit-test-tools "$base" checks \
  'xs: builtins.mapAttrs (system: c: map (d: d.name) c.unit-tests.nativeBuildInputs) xs' || status=1
# The real thing a Nix host runs, minus the builds: every output of both systems evaluated and
# type-checked by Nix itself.
if nixs flake check --no-build --all-systems "${flags[@]}" "git+file://$WORK/src?rev=$base" \
  >"$out/flake-check.txt" 2>"$out/flake-check.log"; then
  echo 0 >"$out/flake-check.rc"
else
  echo 1 >"$out/flake-check.rc"
  status=1
fi
exit "$status"
