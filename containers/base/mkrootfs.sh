#!/bin/sh
# Build a minimal Debian root filesystem with debootstrap and import it as a Docker image.
# Usage: mkrootfs.sh IMAGE_NAME INPUTS_HASH
# Env: SUITE (bookworm), MIRROR (the mirror apt uses here), DOCKER (/usr/bin/docker).
set -eu
IMAGE="$1"
INPUTS="$2"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
DOCKER="${DOCKER:-/usr/bin/docker}"
HERE="$(cd "$(dirname "$0")" && pwd)"

command -v debootstrap >/dev/null || {
  echo "mkrootfs.sh: debootstrap is not installed (apt-get install -y debootstrap)" >&2
  exit 1
}
ROOTFS="$(mktemp -d /tmp/keel-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

debootstrap --variant=minbase --merged-usr "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
  tail -n 40 "$ROOTFS.log" >&2
  exit 1
}
rm -f "$ROOTFS.log"

# Same slimming rules as Debian's official "-slim" images, kept for later apt installs too.
install -m 0644 "$HERE/dpkg-slim.cfg" "$ROOTFS/etc/dpkg/dpkg.cfg.d/keel-slim"
install -m 0644 "$HERE/apt-slim.conf" "$ROOTFS/etc/apt/apt.conf.d/90keel-slim"
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${SECURITY_MIRROR:-http://deb.debian.org/debian-security} $SUITE-security main
SOURCES
rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old
# No host identity in the image.
: >"$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/resolv.conf"
rm -f "$ROOTFS/etc/machine-id"

tar --numeric-owner -C "$ROOTFS" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["bash"]' \
  --change "LABEL org.keel.inputs=$INPUTS" \
  --change 'LABEL org.opencontainers.image.title="keel-offline-debian"' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase (debootstrap)\"" \
  - "$IMAGE" >/dev/null
