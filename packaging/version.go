// SPDX-License-Identifier: GPL-2.0

package main

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// git describe --tags --long: TAG-N-gHASH, with -dirty when the tree is.
	describeLong = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]{4,40})(-dirty)?$`)
	// git describe --always without a tag: only the abbreviated hash.
	describeHash = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
	// A release tag: v1.2.3, 1.2, v2.0.0-rc1.
	tagVersion = regexp.MustCompile(`^v?([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]+))?$`)
	// What both dpkg (upstream part, no revision) and rpm (Version) accept.
	pkgVersion = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// packageVersion turns git describe output into the upstream version of a
// .deb and an .rpm (the package revision, Release, is given apart):
//
//	v1.2.3                   1.2.3
//	v1.2.3-rc1               1.2.3~rc1            (sorts before 1.2.3)
//	v1.2.3-4-gabc1234        1.2.3+4.gabc1234     (4 commits after the tag)
//	abc1234 (no tag)         0.0.0+N.gabc1234     (N: commits in the history)
//	...-dirty                ....dirty
//
// Versions grow with history, so each build of a later commit upgrades an
// earlier one.  commits is the length of the history (git rev-list
// --count HEAD), used only when no tag exists.
func packageVersion(describe string, commits int) (string, error) {
	d := strings.TrimSpace(describe)
	var base, extra string
	dirty := false
	if m := describeHash.FindStringSubmatch(d); m != nil {
		if commits <= 0 {
			return "", fmt.Errorf("version %q: no tag, and no commit count to order untagged builds", describe)
		}
		base, extra, dirty = "0.0.0", fmt.Sprintf("%d.g%s", commits, m[1]), m[2] != ""
	} else {
		tag := d
		if strings.HasSuffix(tag, "-dirty") {
			tag, dirty = strings.TrimSuffix(tag, "-dirty"), true
		}
		if m := describeLong.FindStringSubmatch(d); m != nil {
			tag, dirty = m[1], m[4] != ""
			if m[2] != "0" {
				extra = m[2] + ".g" + m[3]
			}
		}
		t := tagVersion.FindStringSubmatch(tag)
		if t == nil {
			return "", fmt.Errorf("version %q: tag %q is not a version (want v1.2.3 or v1.2.3-rc1)", describe, tag)
		}
		base = t[1]
		if t[4] != "" {
			base += "~" + t[4]
		}
	}
	v := base
	if extra != "" {
		v += "+" + extra
	}
	if dirty {
		if extra == "" {
			v += "+dirty"
		} else {
			v += ".dirty"
		}
	}
	if !pkgVersion.MatchString(v) {
		return "", fmt.Errorf("version %q: %q is not a valid package version", describe, v)
	}
	return v, nil
}

// packageRelease checks the package revision (deb) / Release (rpm).
func packageRelease(r string) error {
	if !regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`).MatchString(r) {
		return fmt.Errorf("release %q: want a number such as 1", r)
	}
	return nil
}
