// SPDX-License-Identifier: GPL-2.0

// smith-pkg builds Smith's packages, smith-dkms, smith-agent and
// smith-console, as .deb and .rpm from the one description in
// describe.go, with nfpm as a library (make packages; docs/PACKAGES.md).
//
//	smith-pkg -version "$(git describe --always --dirty)" -commits N \
//	    -bin DIR -out out/packages [-release 1] [-arch amd64]
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

type options struct {
	src, bin, out     string
	describe, release string
	commits           int
	arch, maintainer  string
	epoch             int64
	formats           []string
	version, full     string // derived: upstream version, version-release
}

func main() {
	var o options
	var formats string
	flag.StringVar(&o.src, "src", ".", "the repository's top directory")
	flag.StringVar(&o.bin, "bin", "", "directory holding smith-agent and smith-console built for -arch (required)")
	flag.StringVar(&o.out, "out", "out/packages", "where the packages are written")
	flag.StringVar(&o.describe, "version", "", "git describe --always --dirty output (required)")
	flag.IntVar(&o.commits, "commits", 0, "git rev-list --count HEAD: orders builds when no tag exists")
	flag.StringVar(&o.release, "release", "1", "package revision (deb) and Release (rpm)")
	flag.StringVar(&o.arch, "arch", "amd64", "Go architecture of the binaries in -bin (amd64, arm64)")
	flag.StringVar(&o.maintainer, "maintainer", "Smith maintainers <smith@example.com>", "Maintainer field")
	flag.Int64Var(&o.epoch, "epoch", 0, "time stamp of the files and the changelog, Unix seconds (the commit's time; required)")
	flag.StringVar(&formats, "formats", "deb,rpm", "package formats, comma-separated")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: smith-pkg -version DESCRIBE -commits N -epoch T -bin DIR [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	o.formats = strings.Split(formats, ",")
	if flag.NArg() != 0 || o.bin == "" || o.describe == "" || o.epoch <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	written, err := build(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "smith-pkg: %v\n", err)
		os.Exit(1)
	}
	for _, w := range written {
		fmt.Println(w)
	}
}

// build writes every package of every format and returns their paths.
func build(o *options) ([]string, error) {
	v, err := packageVersion(o.describe, o.commits)
	if err != nil {
		return nil, err
	}
	if err := packageRelease(o.release); err != nil {
		return nil, err
	}
	o.version, o.full = v, v+"-"+o.release
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	stage, err := os.MkdirTemp(o.out, ".stage-")
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer os.RemoveAll(stage)
	mods, err := moduleSources(filepath.Join(o.src, "kernel"))
	if err != nil {
		return nil, err
	}
	descs := description(o.arch, mods)
	if err := generate(o, stage, descs); err != nil {
		return nil, err
	}
	var written []string
	for _, format := range o.formats {
		for _, d := range descs {
			path, err := pack(o, stage, d, format)
			if err != nil {
				return written, fmt.Errorf("%s %s: %w", d.name, format, err)
			}
			written = append(written, path)
		}
	}
	return written, nil
}

// moduleSources lists what DKMS needs to build smith.ko under dir: the C
// sources, headers and the Makefile, not the Go tests nor the repository's
// dkms.conf (a versioned one is generated).
func moduleSources(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		if strings.HasSuffix(rel, ".c") || strings.HasSuffix(rel, ".h") || rel == "Makefile" {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("module sources: %w", err)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("module sources: nothing under %s", dir)
	}
	return out, nil
}

// expand fills in the build's versions.
func expand(o *options, s string) string {
	return strings.NewReplacer("{{.Version}}", o.full, "{{.DKMS}}", o.full).Replace(s)
}

var dkmsVersionLine = regexp.MustCompile(`(?m)^PACKAGE_VERSION=.*$`)

// generate writes the files made at build time into stage: the versioned
// dkms.conf, the units with the packages' paths, the binaries, the Debian
// copyright note and changelog, and the maintainer scripts.
func generate(o *options, stage string, descs []pkgDesc) error {
	conf, err := os.ReadFile(filepath.Join(o.src, "kernel", "dkms.conf"))
	if err != nil {
		return fmt.Errorf("dkms.conf: %w", err)
	}
	if !dkmsVersionLine.Match(conf) {
		return errors.New("kernel/dkms.conf has no PACKAGE_VERSION line")
	}
	conf = dkmsVersionLine.ReplaceAll(conf, []byte(`PACKAGE_VERSION="`+o.full+`"`))
	if err := os.WriteFile(filepath.Join(stage, "dkms.conf"), conf, 0o644); err != nil {
		return err
	}
	// The units name the script install's paths (/usr/local); packages
	// install into /usr and keep their docs under their own name.
	units := map[string]map[string]string{
		"smith-module.service":  {"file:///usr/local/share/doc/smith/AGENT.md": "file:///usr/share/doc/smith-dkms/MODULE.md"},
		"smith-agent.service":   {"/usr/local/share/doc/smith/": "/usr/share/doc/smith-agent/"},
		"smith-console.service": {"/usr/local/share/doc/smith/": "/usr/share/doc/smith-console/"},
	}
	for unit, repl := range units {
		raw, err := os.ReadFile(filepath.Join(o.src, "scripts", "systemd", unit))
		if err != nil {
			return fmt.Errorf("unit: %w", err)
		}
		s := string(raw)
		for from, to := range repl {
			s = strings.ReplaceAll(s, from, to)
		}
		s = strings.ReplaceAll(s, "/usr/local/bin/", "/usr/bin/")
		if strings.Contains(s, "/usr/local") {
			return fmt.Errorf("unit %s still names /usr/local after path conversion", unit)
		}
		if err := os.WriteFile(filepath.Join(stage, unit), []byte(s), 0o644); err != nil {
			return err
		}
	}
	for _, b := range []string{"smith-agent", "smith-console"} {
		if err := copyFile(filepath.Join(o.bin, b), filepath.Join(stage, b)); err != nil {
			return fmt.Errorf("binary (make packages builds it): %w", err)
		}
	}
	year := time.Unix(o.epoch, 0).UTC().Year()
	if err := os.WriteFile(filepath.Join(stage, "copyright"), fmt.Appendf(nil, copyright, year), 0o644); err != nil {
		return err
	}
	for _, d := range descs {
		if err := writeScripts(o, stage, d); err != nil {
			return err
		}
	}
	return nil
}

const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: smith
Comment: Smith, a Linux host intrusion-detection sensor.

Files: *
Copyright: %d Smith contributors
License: GPL-2
 This program is free software; you can redistribute it and/or modify it
 under the terms of the GNU General Public License version 2 as published
 by the Free Software Foundation.
 .
 On Debian systems, the full text of the GNU General Public License
 version 2 can be found in /usr/share/common-licenses/GPL-2.
`

// debChangelog is the one entry of the Debian changelog: this build.
func debChangelog(o *options, name string) ([]byte, error) {
	when := time.Unix(o.epoch, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	text := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n",
		name, o.full, o.describe, o.maintainer, when)
	var buf bytes.Buffer
	// Maximum compression and no name or time in the header, as
	// Debian policy asks of changelogs.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(zw, text); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// The maintainer scripts: one per hook and format, each lib.sh and the
// package's part, called with the hook's name (packaging/scripts/lib.sh
// maps each format's arguments to install, upgrade and remove).
var hooks = []string{"preinst", "postinst", "prerm", "postrm"}

func scriptPath(stage, name, hook, format string) string {
	return filepath.Join(stage, name+"."+hook+"."+format)
}

func writeScripts(o *options, stage string, d pkgDesc) error {
	lib, err := os.ReadFile(filepath.Join(o.src, "packaging", "scripts", "lib.sh"))
	if err != nil {
		return fmt.Errorf("maintainer scripts: %w", err)
	}
	part, err := os.ReadFile(filepath.Join(o.src, "packaging", "scripts", d.scripts+".sh"))
	if err != nil {
		return fmt.Errorf("maintainer scripts: %w", err)
	}
	for _, format := range o.formats {
		for _, hook := range hooks {
			s := fmt.Sprintf("#!/bin/sh\n# %s %s of %s %s (made by packaging/, from packaging/scripts/)\nset -e\n"+
				"SMITH_PKG=%s\nSMITH_FORMAT=%s\nSMITH_HOOK=%s\nSMITH_VERSION=%s\n\n%s\n%s\nsmith_main \"$@\"\n",
				format, hook, d.name, o.full, d.name, format, hook, o.full, stripHeader(lib), stripHeader(part))
			if err := os.WriteFile(scriptPath(stage, d.name, hook, format), []byte(s), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// stripHeader drops a shell file's shebang line, kept readable in the tree.
func stripHeader(b []byte) string {
	s := string(b)
	if strings.HasPrefix(s, "#!") {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// pack writes one package of one format.
func pack(o *options, stage string, d pkgDesc, format string) (string, error) {
	info := &nfpm.Info{
		Name:          d.name,
		Arch:          d.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Release:       o.release,
		Section:       d.section,
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Description:   d.summary + "\n" + d.text,
		Vendor:        "Smith",
		Homepage:      "https://example.com/smith",
		License:       "GPL-2.0-only",
		MTime:         time.Unix(o.epoch, 0).UTC(),
	}
	info.RPM.Summary = d.summary
	info.RPM.Group = "System Environment/Daemons"
	info.RPM.BuildHost = "smith"
	for _, dep := range d.depends[format] {
		info.Depends = append(info.Depends, expand(o, dep))
	}
	info.Recommends = d.recommends[format]
	info.Scripts = nfpm.Scripts{
		PreInstall:  scriptPath(stage, d.name, "preinst", format),
		PostInstall: scriptPath(stage, d.name, "postinst", format),
		PreRemove:   scriptPath(stage, d.name, "prerm", format),
		PostRemove:  scriptPath(stage, d.name, "postrm", format),
	}
	if format == "deb" {
		cl, err := debChangelog(o, d.name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(stage, "changelog.Debian.gz"), cl, 0o644); err != nil {
			return "", err
		}
	}
	for _, f := range d.files {
		if f.only != "" && f.only != format {
			continue
		}
		c := &files.Content{
			Destination: expand(o, f.dst),
			Type:        f.kind,
			FileInfo:    &files.ContentFileInfo{Mode: f.mode, MTime: info.MTime},
		}
		if f.owner != "" {
			c.FileInfo.Owner, c.FileInfo.Group = "root", f.owner
		}
		switch {
		case f.kind == files.TypeDir:
		case f.gen:
			c.Source = filepath.Join(stage, f.src)
		default:
			c.Source = filepath.Join(o.src, f.src)
		}
		info.Contents = append(info.Contents, c)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(o.out, p.ConventionalFileName(info))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		os.Remove(path + ".tmp")
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
