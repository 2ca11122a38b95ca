# SPDX-License-Identifier: GPL-2.0
# Load the module, check its device, run every guest test binary, unload.
# timeout: 300
insmod /smith.ko
ls -l /dev/smith
[ "$(stat -c %a /dev/smith)" = 600 ] || { echo "smoke: /dev/smith is not mode 0600"; exit 1; }
for t in /guest/*.test; do
	[ -x "$t" ] || continue
	echo "smoke: running $t"
	"$t" -test.v
done
rmmod smith
[ ! -e /dev/smith ] || { echo "smoke: /dev/smith still there after rmmod"; exit 1; }
