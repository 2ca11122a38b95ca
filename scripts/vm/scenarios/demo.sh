# SPDX-License-Identifier: GPL-2.0
# make demo: load the module and show what the guest sees.  Not part of
# make test-vm.
# test-vm: no
# kernels: 6.1
# timeout: 600
echo "demo: kernel $(uname -r), loading /smith.ko"
insmod /smith.ko
ls -l /dev/smith
if [ -d /sys/module/smith/parameters ]; then
	echo "demo: module parameters:"
	for p in /sys/module/smith/parameters/*; do
		echo "  ${p##*/} = $(cat "$p" 2>/dev/null)"
	done
fi
# Some activity for the hooks to see.
ls / >/dev/null
ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 || true
if [ -d /sys/kernel/debug/smith ]; then
	echo "demo: /sys/kernel/debug/smith:"
	for f in /sys/kernel/debug/smith/*; do
		[ -f "$f" ] && { echo "== ${f##*/}"; cat "$f"; }
	done
fi
rmmod smith
echo "demo: guest test binaries (each loads the module itself):"
for t in /guest/*.test; do
	[ -x "$t" ] || continue
	echo "demo: $t -test.v"
	"$t" -test.v || echo "demo: $t failed"
done
