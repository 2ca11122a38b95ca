#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""symbolize.py: the per-operation instruction profile from the tbcount
plugin's snapshots (benchmark/profile/README.md).

For each configuration and loop of the profile run, the two windows
between its three markers (a quarter of the loop, then the whole loop)
are subtracted and divided by the difference of their lengths: the
instructions one more operation costs, by symbol.  Block start addresses
are mapped to symbols: the guest's kallsyms as printed on the console
(the kernel's and the module's text symbols), and the symbol
tables of the guest's user programs, each linked at its own address
(run.sh).
"""
import argparse
import bisect
import collections
import os
import re
import subprocess
import sys


def read_snapshots(path):
    snaps, cur = [], None
    with open(path) as f:
        for line in f:
            if line.startswith("mark "):
                cur = {}
                snaps.append((line.split()[1], cur))
                continue
            f = line.split()
            cur[int(f[0], 16)] = (int(f[1]), int(f[2]) if len(f) > 2 else 0)
    return snaps


class Symbols:
    """Sorted (start, name) with an end for the last symbol of each table."""

    def __init__(self):
        self.starts, self.names = [], []

    def add(self, addr, name):
        self.starts.append(addr)
        self.names.append(name)

    def done(self):
        order = sorted(range(len(self.starts)), key=lambda i: self.starts[i])
        self.starts = [self.starts[i] for i in order]
        self.names = [self.names[i] for i in order]

    def lookup(self, addr):
        """The symbol holding addr and its start, (None, None) below all."""
        i = bisect.bisect_right(self.starts, addr) - 1
        return (self.names[i], self.starts[i]) if i >= 0 else (None, None)


def nm_symbols(path):
    syms = Symbols()
    out = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split(maxsplit=2)
        if len(f) == 3 and f[1] in "tTwW":
            syms.add(int(f[0], 16), f[2])
    syms.done()
    return syms


def text_range(path):
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    lo, hi = None, None
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[-2]:
            va, memsz = int(f[2], 16), int(f[5], 16)
            lo = va if lo is None else min(lo, va)
            hi = va + memsz if hi is None else max(hi, va + memsz)
    return lo, hi


# Go runtime symbols by what they do, first match wins: the garbage
# collector's marking and sweeping (stack scans unwind with pcvalue and
# step), allocation, copying, the scheduler and its timers.
GO_CATEGORIES = [
    ("Go GC", re.compile(r"^runtime\.(gc|scan|greyobject|findObject|tryDeferToSpanScan|typePointers|wbBuf|markBits|"
                         r"\(\*gcWork\)|\(\*gcBits\)|sweep|\(\*sweepLocked\)|\(\*mspan\)\.(sweep|markBitsForIndex|typePointersOf|heapBits|isFree|refillAllocCache|nextFreeIndex|objIndex|countAlloc)|"
                         r"pcvalue|step|findfunc|funcInfo|\(\*moduledata\)|\(\*unwinder\)|readvarint|funcMaxSPDelta|funcspdelta|pcdatavalue|"
                         r"heapBits|extractHeapBits|bulkBarrier|markroot|\(\*spanSet\)|\(\*mheap\)\.nextSpanForSweep|spanOf|"
                         r"\(\*spanInlineMarkBits\)|\(\*gcControllerState\)|\(\*mheap\)\.(reclaim|freeSpan)|\(\*pageAlloc\)|\(\*pallocBits\)|"
                         r"\(\*mcentral\)\.uncacheSpan|getempty|putfull|trygetfull|handoff|\(\*lfstack\)|shade|wbBufFlush|\(\*gcCPULimiterState\)|"
                         r"scanblock|scanobject|\(\*stkframe\))")),
    ("Go alloc", re.compile(r"^runtime\.(mallocgc|nextFreeFast|\(\*mcache\)|\(\*mcentral\)|\(\*mheap\)|memclr|newobject|"
                            r"makeslice|growslice|rawstring|rawbyteslice|slicebytetostring|concatstring|newarray|heapSetType|"
                            r"publicationBarrier|\(\*mspan\)|deductAssistCredit|mProf|profilealloc|makemap|mapassign)")),
    ("Go memmove", re.compile(r"^runtime\.memmove")),
    ("Go scheduler, timers, futex", re.compile(r"^runtime\.(schedule|findRunnable|park_m|gopark|goready|ready|runq|futex|"
                                               r"note|stopm|startm|mPark|netpoll|nanotime|usleep|checkTimers|sysmon|mcall|"
                                               r"gosched|goexit|wakep|resetspinning|\(\*timer|\(\*timers\)|runtimer|"
                                               r"lock|unlock|casgstatus|execute|gogo|systemstack|entersyscall|exitsyscall|"
                                               r"reentersyscall|save|morestack|newstack|chanrecv|chansend|selectgo|recv|send|"
                                               r"acquirem|releasem|procyield|osyield|semacquire|semrelease|notewakeup|"
                                               r"walltime|time_now|sleep|stealWork|pidle|\(\*p\)|sellock|selunlock|"
                                               r"\(\*waitq\)|\(\*randomEnum\)|cheaprand|injectglist|wirep|acquirep|releasep|handoffp|"
                                               r"retake|\(\*pollDesc\)|poll_runtime|netpollblock|netpollready|unlock2|lock2)")),
    ("Go runtime, other", re.compile(r"^runtime\.|^internal/runtime|^aeshash|^memeqbody|^indexbyte|^cmpbody|^gcWriteBarrier")),
    ("smith code", re.compile(r"^smith/")),
]


def go_category(name):
    for label, rx in GO_CATEGORIES:
        if rx.search(name):
            return label
    return "Go standard library"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-console", required=True)
    ap.add_argument("-counts", required=True)
    ap.add_argument("-guest", required=True, help="directory of the guest's programs")
    ap.add_argument("-top", type=int, default=30)
    ap.add_argument("-diff", default="agent-shm,shm-none",
                    help="comma-separated A-B: the per-op profile of configuration A minus B's, by symbol")
    args = ap.parse_args()

    console = open(args.console, errors="replace").read().splitlines()
    marks, loops = [], {}
    mod_syms, mod_lo, mod_hi = Symbols(), None, None
    ksyms, kseen = Symbols(), set()
    in_kallsyms = False
    for line in console:
        m = re.search(r"profile mark (\d+): (\S+) (\S+) (\S+)", line)
        if m:
            marks.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
            continue
        m = re.search(r"profile (\S+) (\S+) n=(\d+) mean_ns=(\d+) reader_ns=(\S+)", line)
        if m:
            loops[(m.group(1), m.group(2), int(m.group(3)))] = (int(m.group(4)), m.group(5))
            continue
        if line.startswith("SMITH-PROFILE-KALLSYMS-BEGIN"):
            in_kallsyms = True
            continue
        if line.startswith("SMITH-PROFILE-KALLSYMS-END"):
            in_kallsyms = False
            continue
        if in_kallsyms:
            f = line.split()
            if len(f) == 4 and f[3] == "[smith]":
                a = int(f[0], 16)
                if a not in mod_syms.starts:
                    mod_syms.add(a, f[2])
                mod_lo = a if mod_lo is None else min(mod_lo, a)
                mod_hi = a if mod_hi is None else max(mod_hi, a)
            elif len(f) == 3 and int(f[0], 16) not in kseen:
                kseen.add(int(f[0], 16))
                ksyms.add(int(f[0], 16), f[2])
            elif len(f) == 4:
                ksyms.add(int(f[0], 16), f[2] + " " + f[3])
    mod_syms.done()
    ksyms.done()

    progs = []  # (lo, hi, label, Symbols); the first match wins
    for name in ["smith-agent", "hookloop", "noop", "smith-bench-guest"]:
        p = os.path.join(args.guest, name)
        if os.path.exists(p):
            lo, hi = text_range(p)
            progs.append((lo, hi, name, nm_symbols(p)))

    cache = {}

    def classify(addr):
        if addr in cache:
            return cache[addr]
        if addr >= 0xffff800000000000:
            name, start = mod_syms.lookup(addr)
            if name is not None and mod_lo <= addr < mod_hi + 0x1000 and not name.startswith("smith_init"):
                r = ("module", name, start)
            elif mod_lo is not None and 0xffffffffa0000000 <= addr < 0xffffffffff000000:
                # Module space outside the module's text: the kprobes'
                # ftrace trampolines and instruction slots.
                r = ("kernel", "[module area: kprobe/ftrace trampolines]", None)
            else:
                name, start = ksyms.lookup(addr)
                r = ("kernel", name or "?", start)
        else:
            r = None
            for lo, hi, label, syms in progs:
                if lo <= addr < hi:
                    name, start = syms.lookup(addr)
                    r = (label, name or "?", start)
                    break
            if r is None:
                r = ("user-other", "vdso" if addr >= 0x7f0000000000 else f"{addr:#x}", None)
        cache[addr] = r
        return r

    snaps = read_snapshots(args.counts)
    byname = {}
    for i, (label, d) in enumerate(snaps):
        byname[label] = d
    # Windows: for each (config, op), marks start, n=short, n=long.
    seq = collections.OrderedDict()
    for k, config, op, phase in marks:
        if op == "warm-up":
            continue
        seq.setdefault((config, op), []).append((k, phase))
    profiles, allcalls = {}, {}
    for (config, op), ms in seq.items():
        if len(ms) != 3 or any(str(k) not in byname for k, _ in ms):
            print(f"{config} {op}: incomplete marks {ms}", file=sys.stderr)
            continue
        (k0, _), (k1, p1), (k2, p2) = ms
        n1, n2 = int(p1[2:]), int(p2[2:])
        s0, s1, s2 = byname[str(k0)], byname[str(k1)], byname[str(k2)]
        per, calls = collections.Counter(), collections.Counter()
        win1, win2 = collections.Counter(), collections.Counter()
        z = (0, 0)
        for a in set(s2) | set(s1):
            (i2, e2), (i1, e1), (i0, e0) = s2.get(a, z), s1.get(a, z), s0.get(a, z)
            w = (i2 - i1) - (i1 - i0)
            g, name, start = classify(a)
            win1[g] += i1 - i0
            win2[g] += i2 - i1
            if w:
                per[(g, name)] += w
            if a == start:
                calls[(g, name)] += (e2 - e1) - (e1 - e0)
        dn = n2 - n1
        profiles[(config, op)] = {k: v / dn for k, v in per.items()}
        allcalls[(config, op)] = {k: v / dn for k, v in calls.items()}
        total = sum(per.values()) / dn
        groups = collections.Counter()
        for (g, _), v in per.items():
            groups[g] += v
        print(f"## {config} {op}: {total:.0f} instructions per op (windows n={n1} and n={n2})")
        lp1, lp2 = loops.get((config, op, n1)), loops.get((config, op, n2))
        if lp1 and lp2:
            print(f"loop's own mean per op: n={n1} {lp1[0]}, n={n2} {lp2[0]}; reader_ns per window {lp1[1]} / {lp2[1]}")
            if lp1[1] != "-" and lp2[1] != "-":
                print(f"reader's schedstat per op (difference of windows): {(int(lp2[1]) - int(lp1[1])) / dn:.0f}")
        print()
        print(f"| group | instructions per op | whole window n={n2} / n | whole window n={n1} / n |")
        print("|---|---|---|---|")
        for g, v in groups.most_common():
            print(f"| {g} | {v / dn:.0f} | {win2[g] / n2:.0f} | {win1[g] / n1:.0f} |")
        print(f"| all | {total:.0f} | {sum(win2.values()) / n2:.0f} | {sum(win1.values()) / n1:.0f} |")
        print()
        cl = allcalls[(config, op)]
        print("| group | symbol | instructions per op | calls per op |")
        print("|---|---|---|---|")
        for (g, s), v in per.most_common(args.top):
            print(f"| {g} | {s} | {v / dn:.0f} | {cl.get((g, s), 0):.2f} |")
        for prog in ["smith-agent", "smith-bench-guest"]:
            cats = collections.Counter()
            for (g, name), v in per.items():
                if g == prog:
                    cats[go_category(name)] += v
            if cats:
                print()
                print(f"| {prog}: what | instructions per op |")
                print("|---|---|")
                for c, v in cats.most_common():
                    print(f"| {c} | {v / dn:.0f} |")
        for g in groups:
            items = [(s, v) for (gg, s), v in per.items() if gg == g]
            items.sort(key=lambda x: -x[1])
            print()
            print(f"### {config} {op}: {g} ({groups[g] / dn:.0f} per op)")
            print()
            for s, v in items[: args.top]:
                if abs(v / dn) >= 1:
                    print(f"{v / dn:10.0f}  {cl.get((g, s), 0):8.2f}  {s}")
        print()

    for pair in args.diff.split(","):
        if "-" not in pair:
            continue
        a, b = pair.split("-", 1)
        for op in ["exec", "connect"]:
            pa, pb = profiles.get((a, op)), profiles.get((b, op))
            if pa is None or pb is None:
                continue
            d = collections.Counter()
            for k in set(pa) | set(pb):
                d[k] = pa.get(k, 0) - pb.get(k, 0)
            groups = collections.Counter()
            for (g, _), v in d.items():
                groups[g] += v
            print(f"## {op}: {a} minus {b}: {sum(d.values()):.0f} instructions per op")
            print()
            print("| group | instructions per op |")
            print("|---|---|")
            for g, v in sorted(groups.items(), key=lambda x: -abs(x[1])):
                print(f"| {g} | {v:.0f} |")
            print()
            ca, cb = allcalls[(a, op)], allcalls[(b, op)]
            print("| group | symbol | instructions per op | calls per op |")
            print("|---|---|---|---|")
            for (g, s), v in sorted(d.items(), key=lambda x: -abs(x[1]))[: args.top * 2]:
                print(f"| {g} | {s} | {v:.0f} | {ca.get((g, s), 0) - cb.get((g, s), 0):.2f} |")
            print()


if __name__ == "__main__":
    main()
