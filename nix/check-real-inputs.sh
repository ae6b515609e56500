#!/usr/bin/env bash
# `make check-nix`, part 2: evaluate the flake with its REAL locked inputs, offline.
#
# uv2nix, pyproject.nix and build-system-pkgs come from trees at exactly the revisions
# flake.lock pins ($NIX_INPUTS_DIR, default ../shared/nix-inputs; see its README), added to a
# private store so the lock resolves as on a Nix host. nixpkgs cannot be had offline: it is
# replaced by the real nixpkgs `lib` plus evaluation-only builders
# (nix/tests/real-inputs/nixpkgs-stub.nix). Then: every packages.<system>.{venv,image,image-gpu}
# drvPath, apps, devShells, checks and `nix flake check --no-build --all-systems`, for both
# systems; the venv's packages against uv.lock; the image configs; and reproducibility (a commit
# outside the keel package leaves the venv and the image layers unchanged, one inside changes
# them). tests/unit/nix/test_nix_real_eval.py asserts on the results.
#
# Needs Nix >= 2.18: the one on PATH, else Debian trixie's in a chroot (nix/trixie-nix.sh, root).
# KEEL_NIX_REAL_EVAL=required (CI) makes a missing inputs directory or Nix a failure; by default
# the check then says what it needs and is skipped. A locked revision without a tree always
# fails (so a future bump cannot skip this silently).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
inputs_dir=${NIX_INPUTS_DIR:-../shared/nix-inputs}
mode=${KEEL_NIX_REAL_EVAL:-auto}

unavailable() {
  if [[ $mode == required ]]; then
    echo "FAILED"
    echo "    $1"
    exit 1
  fi
  echo "skipped ($1)"
  exit 0
}

printf '%-58s' "real-input evaluation (nix flake check --no-build)"
[[ -f "$inputs_dir/manifest.json" ]] ||
  unavailable "no $inputs_dir/manifest.json; set NIX_INPUTS_DIR to a directory of input trees"

# 1. flake.lock against the trees: which inputs have a tree at the locked revision.
if ! resolved=$(python3 tests/unit/nix/nix_real_inputs.py flake.lock "$inputs_dir" 2>&1); then
  echo "FAILED"
  sed 's/^/    /' <<<"$resolved"
  exit 1
fi

# 2. A Nix >= 2.18.
run_nix=()
version_of() { "$@" --version 2>/dev/null | awk 'NR == 1 { print $NF }'; }
at_least() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]; }
host_version=$(command -v nix >/dev/null 2>&1 && version_of nix || true)
if [[ -n "$host_version" ]] && at_least "$host_version" 2.18; then
  run_nix=(env)
elif [[ $(id -u) == 0 ]] && command -v debootstrap >/dev/null 2>&1; then
  if ! root_log=$(nix/trixie-nix.sh ensure 2>&1); then
    echo "FAILED"
    sed 's/^/    /' <<<"$root_log"
    exit 1
  fi
  run_nix=(nix/trixie-nix.sh run)
else
  unavailable "needs Nix >= 2.18 (found ${host_version:-none}), or root + debootstrap for nix/trixie-nix.sh"
fi

# 3. The work tree: the source as three commits, the nixpkgs stand-in, the plan.
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-nix-real.XXXXXX")
[[ -n ${KEEL_NIX_KEEP_WORK:-} ]] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/stub"
git ls-files --cached --others --exclude-standard -z | xargs -0 cp --parents -t "$work/src" 2>/dev/null ||
  true # a file deleted but not yet staged is listed and missing: nothing to copy
commit() { git -C "$work/src" -c user.name=check -c user.email=check@keel.invalid -c commit.gpgsign=false "$@"; }
(
  cd "$work/src"
  git init -q
  git add -A
  commit commit -qm base && git tag base
  printf '\nA change outside the keel package.\n' >>docs/nix.md
  commit commit -qam docs && git tag docs
  git checkout -q base
  printf '\n# A change inside the keel package.\n' >>src/keel/__init__.py
  commit commit -qam code && git tag code
) >/dev/null
cp -r "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["nixpkgs-lib"]["tree"])' <<<"$resolved")/lib" "$work/stub/lib"
cp nix/tests/real-inputs/stub-flake.nix "$work/stub/flake.nix"
cp nix/tests/real-inputs/nixpkgs-stub.nix "$work/stub/pkgs.nix"
cp nix/tests/real-inputs/python-versions.json "$work/stub/python-versions.json"
cp nix/tests/real-inputs/evaluate.sh "$work/evaluate.sh"
printf '%s\n' "$resolved" >"$work/resolved.json"
python3 - "$work" <<'PY'
import json, shlex, subprocess, sys
work = sys.argv[1]
resolved = json.load(open(f"{work}/resolved.json"))
lines = []
for node, entry in resolved.items():
    if node == "nixpkgs-lib":
        continue
    lines.append(f"TREE[{node}]={shlex.quote(entry['tree'])}")
    lines.append(f"NARHASH[{node}]={shlex.quote(entry['narHash'])}")
for label in ("base", "docs", "code"):
    rev = subprocess.run(["git", "-C", f"{work}/src", "rev-parse", label], capture_output=True, text=True, check=True).stdout.strip()
    lines.append(f"REV[{label}]={rev}")
open(f"{work}/plan.sh", "w").write("\n".join(lines) + "\n")
PY
trees=$(python3 -c 'import json,sys; print(" ".join(sorted({e["tree"] for e in json.load(sys.stdin).values()})))' <<<"$resolved")

# 4. Evaluate (Nix), then assert (pytest, on the JSON results).
# shellcheck disable=SC2086 # $trees is a list of paths
if [[ ${run_nix[0]} == env ]]; then
  eval_cmd=(env WORK="$work" bash "$work/evaluate.sh")
else
  eval_cmd=("${run_nix[@]}" "$work" $trees -- WORK="$work" bash "$work/evaluate.sh")
fi
eval_ok=1
"${eval_cmd[@]}" >/dev/null 2>"$work/evaluate.log" || eval_ok=0
if out=$(cd "$repo" && KEEL_NIX_EVAL_RESULTS="$work" uv run --frozen pytest -q -p no:cacheprovider \
  tests/unit/nix/test_nix_real_eval.py 2>&1) && ((eval_ok)); then
  echo "ok ($(cat "$work/out/nix-version.txt"))"
  # How each locked input was found: from the store as flake.lock names it, or from its tree.
  while read -r node how hash; do
    if [[ $how == seeded ]]; then
      echo "    $node: locked tree found by narHash, flake.lock resolved unmodified"
    else
      echo "    $node: the tree at the locked rev hashes to $hash, not flake.lock's narHash;"
      echo "      evaluated from it with --override-input (that narHash is not verified here)"
    fi
  done <"$work/out/inputs-mode.txt"
  echo "    nixpkgs: stand-in (real nixpkgs lib, evaluation-only builders); not fetched"
else
  echo "FAILED"
  for log in "$work/evaluate.log" "$work"/out/*.log; do
    [[ -s "$log" ]] && { echo "    --- $(basename "$log")"; grep -v -e '^warning: not writing modified lock' -e 'Updated input' -e "^    '" -e '^  → ' "$log" | tail -n 15 | sed 's/^/    /'; }
  done
  sed 's/^/    /' <<<"$out" | tail -n 40
  exit 1
fi
