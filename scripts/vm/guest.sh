#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest.sh  build everything the test VM runs into out/guest/ (the
# initramfs's /guest/, on PATH there):
#   - one test binary per Go package that has files with the vmtest build
#     tag: CGO_ENABLED=0 go test -c -tags vmtest -o out/guest/NAME.test ./DIR
#     where NAME is the Go package name (kernel/test -> kerneltest.test,
#     shm -> shm.test), or the path with / as - if two packages share a name;
#   - the static product binaries (agent/cmd/..., heartbeat/cmd/...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

GO=${GO:-go}
dst=$SMITH_OUT/guest
rm -rf "$dst"
mkdir -p "$dst"
cd "$SMITH_ROOT"
export CGO_ENABLED=0

# Packages with a //go:build line naming vmtest, outside out/ and bin/.
pkgs=$(grep -rlE --include='*.go' '^//go:build .*\bvmtest\b' . \
	--exclude-dir=out --exclude-dir=bin --exclude-dir=.git --exclude-dir=testdata |
	xargs -r -n1 dirname | sed 's|^\./||' | LC_ALL=C sort -u)
for p in $pkgs; do
	name=$("$GO" list -tags vmtest -f '{{.Name}}' "./$p") || die "go list ./$p failed"
	[ -e "$dst/$name.test" ] && name=${p//\//-}
	log "go test -c -tags vmtest ./$p -> out/guest/$name.test"
	"$GO" test -c -tags vmtest -trimpath -o "$dst/$name.test" "./$p" ||
		die "cannot build the guest tests of ./$p"
done

cmds=$("$GO" list ./agent/cmd/... ./heartbeat/cmd/... 2>/dev/null | grep -v '^$' || true)
if [ -n "$cmds" ]; then
	log "go build $(echo $cmds | tr '\n' ' ')-> out/guest/"
	# shellcheck disable=SC2086
	"$GO" build -trimpath -o "$dst/" $cmds || die "cannot build the product binaries for the guest"
fi
log "out/guest: $(cd "$dst" && ls | tr '\n' ' ')"
