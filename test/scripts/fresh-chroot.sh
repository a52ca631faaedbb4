#!/usr/bin/env bash
# By hand, as root: the README's two commands on a machine with nothing
# installed.  Builds a minimal Debian 12 in a folder with debootstrap (make,
# gcc and git only: what `make` itself and a clone need), clones this
# checkout into it, and times `make demo` then `make test` inside it.
#
#   test/scripts/fresh-chroot.sh [DIR]     (default /tmp/almanac-fresh)
#
# The folder is removed first and left behind afterwards for a look; the
# mounts it needs (/proc, /sys, /dev) are undone on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-/tmp/almanac-fresh}

[ "$(id -u)" -eq 0 ] || { echo "fresh-chroot: run as root (debootstrap and chroot need it)" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null

unmount() {
	for m in dev/pts dev sys proc; do
		mountpoint -q "$DIR/$m" && umount "$DIR/$m" || true
	done
}
trap unmount EXIT
unmount
rm -rf "$DIR"

echo "== debootstrap (minbase + make gcc git) into $DIR"
time debootstrap --variant=minbase --include=make,gcc,git,ca-certificates bookworm "$DIR" \
	http://deb.debian.org/debian >"$DIR.debootstrap.log" 2>&1
# the same package sources as this machine
if [ -d /etc/apt/sources.list.d ] && ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
	rm -f "$DIR/etc/apt/sources.list"
	cp /etc/apt/sources.list.d/*.sources "$DIR/etc/apt/sources.list.d/"
fi
cp /etc/resolv.conf "$DIR/etc/resolv.conf"
mount --bind /proc "$DIR/proc"
mount --bind /sys "$DIR/sys"
mount --bind /dev "$DIR/dev"
mount --bind /dev/pts "$DIR/dev/pts"
git clone -q "$ROOT" "$DIR/root/almanac"

echo "== make demo (installs every package)"
chroot "$DIR" bash -c 'cd /root/almanac && time make demo && make demo-stop'
echo "== make test"
chroot "$DIR" bash -c 'cd /root/almanac && time make test'
