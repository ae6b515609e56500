#!/usr/bin/env bash
# A Nix >= 2.18 for machines whose distribution ships an older one (Debian bookworm: 2.8).
#
#   nix/trixie-nix.sh ensure        build the root if missing or broken; print its path
#   nix/trixie-nix.sh run DIR... -- CMD...
#                                   run CMD in the root, with each DIR bind-mounted at the same
#                                   path (private mount namespace: nothing leaks to the host)
#
# The root is Debian trixie (Nix 2.26) made with debootstrap from the Debian mirror, at
# $KEEL_NIX_ROOT (default /var/cache/keel/nix-trixie); the host's libraries and its own Nix are
# untouched. Building it needs root, debootstrap and the mirror (about a minute); a root that
# exists is checked by running its nix, and rebuilt when that fails.
set -euo pipefail
root=${KEEL_NIX_ROOT:-/var/cache/keel/nix-trixie}
mirror=${KEEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

in_root() { # in_root DIR... -- CMD...
  local binds=()
  while (($#)) && [[ $1 != -- ]]; do binds+=("$1"); shift; done
  shift
  unshare --mount --propagation private -- bash -euc '
    root=$1; shift
    while [[ $1 != -- ]]; do mkdir -p "$root$1"; mount --bind "$1" "$root$1"; shift; done
    shift
    mount -t proc proc "$root/proc"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
  ' in_root "$root" "${binds[@]}" -- "$@"
}

works() { [[ -x "$root/usr/bin/nix" ]] && in_root -- /usr/bin/nix --version >/dev/null 2>&1; }

ensure() {
  works && { echo "$root"; return; }
  if [[ $(id -u) != 0 ]] || ! command -v debootstrap >/dev/null 2>&1; then
    echo "trixie-nix: no Nix >= 2.18 here. Install one (https://nixos.org/download), or run as root with debootstrap (apt-get install -y debootstrap) to build $root" >&2
    exit 1
  fi
  local tmp="$root.tmp.$$"
  rm -rf "$tmp" "$root"
  mkdir -p "$(dirname "$root")"
  echo "trixie-nix: building a Debian trixie root with Nix 2.26 in $root (about a minute)" >&2
  debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
    { echo "trixie-nix: debootstrap failed; last lines of $tmp.log:" >&2; tail -n 20 "$tmp.log" >&2; exit 1; }
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  # debootstrap --include cannot resolve nix-bin's virtual dependencies; apt inside the root can.
  if ! chroot "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends nix-bin && apt-get clean' >>"$tmp.log" 2>&1; then
    echo "trixie-nix: installing nix-bin in the root failed; last lines of $tmp.log:" >&2
    tail -n 20 "$tmp.log" >&2
    exit 1
  fi
  rm -f "$tmp/etc/resolv.conf" "$tmp.log"
  mv "$tmp" "$root"
  works || { echo "trixie-nix: $root/usr/bin/nix does not run" >&2; exit 1; }
  echo "$root"
}

case "${1:-}" in
  ensure) ensure ;;
  run) shift; ensure >/dev/null; in_root "$@" ;;
  *) echo "usage: nix/trixie-nix.sh ensure | run DIR... -- CMD..." >&2; exit 2 ;;
esac
