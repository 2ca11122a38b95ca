#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# version.sh: print the version of this tree, `git describe --always
# --dirty` (the nearest tag and commit).  It is the one definition of the
# version: the Makefile's VERSION (what both binaries report, and the
# packages' and their DKMS version, packaging/version.go), the module's
# SMITH_VERSION (kernel/Makefile, scripts/vm/build-module.sh) and
# scripts/install.sh's DKMS version all come from here.  Outside a git
# checkout it prints nothing and fails; each caller says what it does then.
exec git -C "$(dirname "$0")/.." describe --always --dirty
