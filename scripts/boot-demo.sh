#!/usr/bin/env bash
# `npm run boot`: the main job. Fetches GNU Mach 1.8 from Debian (scripts/fetch-guests.sh, once;
# apt-get, so root on a Debian machine) and boots it, unmodified, as a PV domain with
# `tsxen run`, the console on this terminal. Both widths by default; `npm run boot -- i386`
# (or amd64) for one.
#
# Mach has no bootstrap module here, so it ends in its own "No bootstrap code loaded" panic and
# shuts its domain down with a reason number Xen has no name for: `tsxen run` exits 5 ("ended as
# the guest asked"), which is this script's success.
set -uo pipefail
cd "$(dirname "$0")/.."
arches=("$@")
[ ${#arches[@]} -eq 0 ] && arches=(i386 amd64)
for arch in "${arches[@]}"; do
  case "$arch" in
    i386 | amd64) ;;
    *) echo "boot-demo: unknown architecture \"$arch\" (i386 or amd64)" >&2; exit 2 ;;
  esac
  bash scripts/fetch-guests.sh "gnumach-$arch" >/dev/null || exit 1
done
for arch in "${arches[@]}"; do
  echo "==> node bin/tsxen.mjs run examples/gnumach-$arch.cfg"
  node bin/tsxen.mjs run --timeout 120 "examples/gnumach-$arch.cfg" </dev/null
  status=$?
  if [ "$status" -ne 5 ]; then
    echo "boot-demo: GNU Mach ($arch) did not reach its panic: tsxen run exited $status" >&2
    exit 1
  fi
  echo "==> GNU Mach ($arch) booted to its expected panic; tsxen run exited 5 (ended as the guest asked)"
  echo
done
