#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest.sh [VER...]  build everything the test VM runs into out/guest/ (the
# initramfs's /guest/, on PATH there), for the architecture of each kernel
# VER (default: amd64 only): out/guest/ for amd64, out/guest-ARCH/ (GOARCH)
# for the others, e.g. out/guest-arm64/ for 6.1-arm64:
#   - one test binary per Go package that has files with the vmtest build
#     tag: CGO_ENABLED=0 go test -c -tags vmtest -o out/guest/NAME.test ./DIR
#     where NAME is DIR with / replaced by - (shm -> shm.test, kernel/test
#     -> kernel-test.test, kernel/hooktest -> kernel-hooktest.test);
#   - the static product binaries (agent/cmd/..., heartbeat/cmd/...);
#   - arm64 only: hooktest32, the AArch32 program of kernel/hooktest
#     (kernel/hooktest/aarch32/hooktest32.s, binutils-arm-linux-gnueabihf).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

GO=${GO:-go}
cd "$SMITH_ROOT"
export CGO_ENABLED=0

# Packages with a //go:build line naming vmtest, outside out/ and bin/.
pkgs=$(grep -rlE --include='*.go' '^//go:build .*\bvmtest\b' . \
	--exclude-dir=out --exclude-dir=bin --exclude-dir=.git --exclude-dir=testdata |
	xargs -r -n1 dirname | sed 's|^\./||' | LC_ALL=C sort -u)
cmds=$("$GO" list ./agent/cmd/... ./heartbeat/cmd/... 2>/dev/null | grep -v '^$' || true)

# aarch32 DIR: assemble and link the AArch32 test program into DIR.
aarch32() {
	local src=kernel/hooktest/aarch32/hooktest32.s
	command -v arm-linux-gnueabihf-as >/dev/null ||
		die "arm-linux-gnueabihf-as missing (scripts/deps.sh installs binutils-arm-linux-gnueabihf)"
	log "arm-linux-gnueabihf-as $src -> ${final#"$SMITH_ROOT"/}/hooktest32"
	arm-linux-gnueabihf-as -o "$1/hooktest32.o" "$src" &&
		arm-linux-gnueabihf-ld -static -o "$1/hooktest32" "$1/hooktest32.o" ||
		die "cannot build $src"
	rm -f "$1/hooktest32.o"
}

# build ARCH: everything, for Debian architecture ARCH (= GOARCH for amd64
# and arm64).
build() {
	local arch=$1 final dst p name
	final=$(guest_dir "$arch")
	# Built aside and swapped in at the end: a VM being packed meanwhile sees
	# the old set or the new one, never half of one.
	dst=$SMITH_OUT/.guest-$arch.$$
	trap 'rm -rf "$dst"' EXIT
	rm -rf "$dst"
	mkdir -p "$dst"
	for p in $pkgs; do
		name=${p//\//-}
		log "GOARCH=$arch go test -c -tags vmtest ./$p -> ${final#"$SMITH_ROOT"/}/$name.test"
		GOARCH=$arch "$GO" test -c -tags vmtest -trimpath -o "$dst/$name.test" "./$p" ||
			die "cannot build the guest tests of ./$p for $arch"
	done
	if [ -n "$cmds" ]; then
		log "GOARCH=$arch go build $(echo "$cmds" | tr '\n' ' ')-> ${final#"$SMITH_ROOT"/}/"
		# shellcheck disable=SC2086
		GOARCH=$arch "$GO" build -trimpath -o "$dst/" $cmds ||
			die "cannot build the product binaries for the $arch guest"
	fi
	[ "$arch" != arm64 ] || aarch32 "$dst"
	rm -rf "$final"
	mv "$dst" "$final"
	trap - EXIT
	log "${final#"$SMITH_ROOT"/}: $(cd "$final" && ls | tr '\n' ' ')"
}

arches=amd64
if [ $# -gt 0 ]; then
	arches=$(for v in "$@"; do kernel_arch "$v"; done | LC_ALL=C sort -u)
fi
for a in $arches; do
	build "$a"
done
