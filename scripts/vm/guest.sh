#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest.sh  build everything the test VM runs into out/guest/ (the
# initramfs's /guest/, on PATH there):
#   - one test binary per Go package that has files with the vmtest build
#     tag: CGO_ENABLED=0 go test -c -tags vmtest -o out/guest/NAME.test ./DIR
#     where NAME is DIR with / replaced by - (shm -> shm.test, kernel/test
#     -> kernel-test.test, kernel/hooktest -> kernel-hooktest.test);
#   - the static product binaries (agent/cmd/..., heartbeat/cmd/...).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

GO=${GO:-go}
final=$SMITH_OUT/guest
# Built aside and swapped in at the end: a VM being packed meanwhile sees
# the old set or the new one, never half of one.
dst=$SMITH_OUT/.guest.$$
trap 'rm -rf "$dst"' EXIT
rm -rf "$dst"
mkdir -p "$dst"
cd "$SMITH_ROOT"
export CGO_ENABLED=0

# Packages with a //go:build line naming vmtest, outside out/ and bin/.
pkgs=$(grep -rlE --include='*.go' '^//go:build .*\bvmtest\b' . \
	--exclude-dir=out --exclude-dir=bin --exclude-dir=.git --exclude-dir=testdata |
	xargs -r -n1 dirname | sed 's|^\./||' | LC_ALL=C sort -u)
for p in $pkgs; do
	name=${p//\//-}
	log "go test -c -tags vmtest ./$p -> out/guest/$name.test"
	"$GO" test -c -tags vmtest -trimpath -o "$dst/$name.test" "./$p" ||
		die "cannot build the guest tests of ./$p"
done

cmds=$("$GO" list ./agent/cmd/... ./heartbeat/cmd/... 2>/dev/null | grep -v '^$' || true)
if [ -n "$cmds" ]; then
	log "go build $(echo "$cmds" | tr '\n' ' ')-> out/guest/"
	# shellcheck disable=SC2086
	"$GO" build -trimpath -o "$dst/" $cmds || die "cannot build the product binaries for the guest"
fi
rm -rf "$final"
mv "$dst" "$final"
log "out/guest: $(cd "$final" && ls | tr '\n' ' ')"
