# SPDX-License-Identifier: GPL-2.0
# Load the module, check its device node, unload it; then run every guest
# test binary that no other scenario runs (one that names /guest/NAME.test
# in its script runs it itself, with its own setup).  Guest tests start with
# the module unloaded, load it with the parameters they need and leave it
# unloaded.
# kernels: !*-rt
# timeout: 600
insmod /smith.ko
ls -l /dev/smith
[ -c /dev/smith ] || { echo "smoke: /dev/smith is not a character device"; exit 1; }
[ "$(stat -c %a /dev/smith)" = 600 ] || { echo "smoke: /dev/smith is not mode 0600"; exit 1; }
rmmod smith
[ ! -e /dev/smith ] || { echo "smoke: /dev/smith still there after rmmod"; exit 1; }
ran=
for t in /guest/*.test; do
	[ -x "$t" ] || continue
	if grep -lF "$t" /scenarios/*.sh | grep -qv '/smoke\.sh$'; then
		echo "smoke: $t is run by $(grep -lF "$t" /scenarios/*.sh | grep -v '/smoke\.sh$' | tr '\n' ' ')"
		continue
	fi
	echo "smoke: $t -test.v"
	"$t" -test.v
	ran="$ran ${t#/guest/}"
done
echo "smoke: module loaded and unloaded; guest tests passed:${ran:- none}"
