#!/usr/bin/env bash
# Fetches real Xen PV guest kernels from Debian's archive with apt-get and caches them under
# .cache/debian/ (never committed). Prints one line per guest: "<guest> <absolute path>".
#
#   scripts/fetch-guests.sh                 # every guest below
#   scripts/fetch-guests.sh gnumach-i386    # just one
#
# Guests (name -> Debian package:architecture, file inside the package):
#   gnumach-i386   gnumach-image-1.8-xen-486:i386   boot/gnumach-1.8-xen-486.gz  (ELF32, 32-bit PAE PV)
#   gnumach-amd64  gnumach-image-1.8-xen-486:amd64  boot/gnumach-1.8-xen-486.gz  (ELF64, 64-bit PV)
#
# Why this shape:
# - `apt-get download` uses the machine's own sources and keys, so the .deb is verified by apt.
# - The i386 package needs the i386 architecture enabled in dpkg (`dpkg --add-architecture i386`)
#   and an `apt-get update` afterwards; both need root (CI runs as root). A partial update
#   failure (for example one mirror's index mid-sync) is tolerated: the download is what counts.
# - A lock (flock) serialises concurrent callers (test files run in parallel), and extraction
#   goes to a temporary directory renamed into place, so a reader never sees half a tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TSXEN_DEBIAN_CACHE:-$ROOT/.cache/debian}"
ALL_GUESTS=(gnumach-i386 gnumach-amd64)

die() {
  echo "fetch-guests: $*" >&2
  exit 1
}

# guest name -> "package arch relative-path"
guest_spec() {
  case "$1" in
    gnumach-i386) echo "gnumach-image-1.8-xen-486 i386 boot/gnumach-1.8-xen-486.gz" ;;
    gnumach-amd64) echo "gnumach-image-1.8-xen-486 amd64 boot/gnumach-1.8-xen-486.gz" ;;
    *) return 1 ;;
  esac
}

APT_OPTS=(-q -o APT::Sandbox::User=root)
updated=0

apt_update_once() {
  if [ "$updated" = 0 ]; then
    updated=1
    # Tolerate a failed index (exit status 100): the package may still be downloadable.
    apt-get "${APT_OPTS[@]}" update >&2 || echo "fetch-guests: apt-get update reported errors; trying anyway" >&2
  fi
}

ensure_arch() {
  local arch="$1"
  [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
  dpkg --print-foreign-architectures | grep -qx "$arch" && return 0
  [ "$(id -u)" = 0 ] || die "architecture $arch is not enabled in dpkg and enabling it needs root: run 'dpkg --add-architecture $arch && apt-get update' as root"
  dpkg --add-architecture "$arch"
  updated=0
  apt_update_once
}

fetch_one() {
  local guest="$1" spec pkg arch file dir
  spec="$(guest_spec "$guest")" || die "unknown guest '$guest' (known: ${ALL_GUESTS[*]})"
  read -r pkg arch file <<<"$spec"
  dir="$CACHE/${pkg}_${arch}"
  if [ ! -f "$dir/tree/$file" ]; then
    command -v apt-get >/dev/null || die "apt-get is not available: $guest needs Debian's $pkg:$arch"
    ensure_arch "$arch"
    mkdir -p "$dir"
    local work
    work="$(mktemp -d "$dir/.work.XXXXXX")"
    if ! (cd "$work" && apt-get "${APT_OPTS[@]}" download "$pkg:$arch" >&2); then
      apt_update_once
      (cd "$work" && apt-get "${APT_OPTS[@]}" download "$pkg:$arch" >&2) ||
        { rm -rf "$work"; die "apt-get download $pkg:$arch failed"; }
    fi
    local deb
    deb="$(ls "$work"/*.deb 2>/dev/null | head -n 1)"
    [ -n "$deb" ] || { rm -rf "$work"; die "apt-get download $pkg:$arch produced no .deb"; }
    mkdir -p "$work/tree"
    dpkg-deb -x "$deb" "$work/tree"
    [ -f "$work/tree/$file" ] || { rm -rf "$work"; die "$pkg:$arch does not contain $file"; }
    # Record what was fetched, for the docs and for bug reports.
    dpkg-deb -f "$deb" Package Version Architecture >"$work/tree/.package"
    mv "$deb" "$dir/" 2>/dev/null || true
    rm -rf "$dir/tree"
    mv "$work/tree" "$dir/tree"
    rm -rf "$work"
  fi
  echo "$guest $dir/tree/$file"
}

main() {
  local guests=("$@")
  [ ${#guests[@]} -gt 0 ] || guests=("${ALL_GUESTS[@]}")
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  for g in "${guests[@]}"; do fetch_one "$g"; done
}

main "$@"
