#!/usr/bin/env bash
# Offline checks of the Nix flake (`make check-nix`): steps 1-6 with Debian's nix-bin (Nix 2.8),
# step 7 (the real locked inputs) with Nix >= 2.18 (nix/check-real-inputs.sh).
#
# No nixpkgs, no binary cache, no network: this proves what can be proved without building.
# `nix build .#image` and `nix flake check` need a real Nix host (docs/nix.md lists both sides).
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v nix-instantiate >/dev/null 2>&1; then
  cat >&2 <<'EOF'
check-nix: nix-instantiate not found.
  These checks need Nix's evaluator only (no nixpkgs, no network):
    Debian/Ubuntu: apt-get install -y nix-bin      (CI: .ci/run installs it)
    elsewhere:     https://nixos.org/download
EOF
  exit 127
fi

# Without `substituters =` every command first spends seconds retrying the (unreachable) binary
# cache. Flakes are needed for `nix flake metadata`. `build-users-group =`: nothing is built, and
# a fresh machine may have no nixbld group (Nix 2.8 then warns on stderr). Appended so a
# caller's NIX_CONFIG is kept.
nix_settings=$'experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group ='
export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG$'\n'}$nix_settings"

# Results are read from stdout only; stderr (where Nix prints warnings) is kept for the failure
# message. `capture CMD...` sets $out and $err and returns CMD's status.
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT
capture() {
  local status=0
  out=$("$@" 2>"$errfile") || status=$?
  err=$(<"$errfile")
  return "$status"
}

failed=0
step() { printf '%-58s' "$1"; }
pass() { echo "ok"; }
fail() {
  echo "FAILED"
  printf '%s\n' "$@" | sed 's/^/    /'
  failed=1
}

# 1. Every Nix file parses (tracked and new files; flakes only see tracked ones).
mapfile -t nix_files < <(git ls-files --cached --others --exclude-standard -- '*.nix' 2>/dev/null ||
  find . -name '*.nix' -not -path './.venv/*')
step "parse ${#nix_files[@]} .nix files"
parse_errors=()
for f in "${nix_files[@]}"; do
  [[ -f "$f" ]] || continue
  if ! capture nix-instantiate --parse "$f"; then
    parse_errors+=("$f: $err")
  fi
done
if ((${#parse_errors[@]})); then fail "${parse_errors[@]}"; else pass; fi

# 2. uv.lock and pyproject.toml are readable by Nix's TOML parser (uv2nix uses builtins.fromTOML;
#    it rejects e.g. bare TOML datetimes).
for toml in uv.lock pyproject.toml; do
  step "builtins.fromTOML $toml"
  if capture nix-instantiate --eval --strict --json -E \
    "builtins.seq (builtins.fromTOML (builtins.readFile ./$toml)) true" && [[ "$out" == "true" ]]; then
    pass
  else
    fail "$err"
  fi
done

# 3. flake.lock is JSON that Nix reads, lock format 7.
step "builtins.fromJSON flake.lock (version 7)"
if capture nix-instantiate --eval --strict -E \
  '(builtins.fromJSON (builtins.readFile ./flake.lock)).version == 7' && [[ "$out" == "true" ]]; then
  pass
else
  fail "flake.lock: ${err:-version is not 7}"
fi

# 4. Nix itself reads flake.nix with flake.lock and needs no lock update (a missing input or a
#    follows the lock does not record makes it try to fetch, which fails offline).
step "nix flake metadata --no-update-lock-file"
if capture nix flake metadata --no-update-lock-file --json . && [[ "$out" == "{"* ]]; then
  pass
else
  fail "flake.lock does not match the inputs in flake.nix (run \`nix flake lock\` on a Nix host):" \
    "$(tail -n 3 <<<"$err")"
fi

# 5. The flake evaluated against stub inputs (nix/tests/*.nix say what they assert): output
#    shape; the image policy for both variants on both systems; checks.wheels-only on a package
#    set faked from uv.lock.
for test in flake-outputs image-policy wheels-only; do
  step "nix/tests/$test.nix"
  if capture nix-instantiate --eval --strict --json "nix/tests/$test.nix" -A failures; then
    if [[ "$out" == "[]" ]]; then
      pass
    else
      fail "$(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$out" 2>/dev/null || echo "$out")"
    fi
  else
    fail "$err"
  fi
done

# 6. The Python side: wheel coverage from uv.lock, flake.lock vs flake.nix inputs, and the image
#    contract against the Containerfile.
step "pytest tests/unit/nix"
if [[ ${KEEL_CHECK_NIX_PYTEST:-1} == 0 ]]; then
  echo "skipped (KEEL_CHECK_NIX_PYTEST=0)"
elif command -v uv >/dev/null 2>&1; then
  if capture uv run --frozen pytest -q -p no:cacheprovider tests/unit/nix; then
    pass
  else
    fail "$out" "$err"
  fi
else
  echo "skipped (uv not found; run: uv run pytest tests/unit/nix)"
fi

# 7. The flake with its real locked inputs (Nix >= 2.18; nix/check-real-inputs.sh says how).
nix/check-real-inputs.sh || failed=1

if ((failed)); then
  echo "check-nix: FAILED (details above)" >&2
  exit 1
fi
echo "check-nix: all offline checks passed (nothing built: nix build needs nixpkgs and a Nix host, see docs/nix.md)"
