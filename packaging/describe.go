// SPDX-License-Identifier: GPL-2.0

package main

import (
	"os"

	"github.com/goreleaser/nfpm/v2/files"
)

// The one description of Smith's packages: what each installs, where,
// with which mode, and which maintainer scripts run (packaging/scripts/).
// Every package is built as .deb and .rpm from it; the few differences
// between the formats are the dependencies' names and the license file.

// pkgFile is one file of a package.  src is relative to the repository,
// or to the staging directory when gen is set (a file made at build time).
type pkgFile struct {
	src, dst string
	mode     os.FileMode
	kind     string // files.Type*; "" is a plain file
	owner    string // group too; "" is root
	gen      bool
	only     string // "deb" or "rpm": that format only
}

type pkgDesc struct {
	name, arch    string // arch "all" for architecture-independent
	summary, text string
	section       string
	depends       map[string][]string // by format; {{.Version}} is this build's version-release
	recommends    map[string][]string
	// scripts is the package's part of the maintainer scripts
	// (packaging/scripts/NAME.sh, after lib.sh).
	scripts string
	files   []pkgFile
}

// docFiles: the guides of docs/ the package name carries, then the
// copyright note (deb) or license (rpm) and the Debian changelog every
// package carries.
func docFiles(name string, guides ...string) []pkgFile {
	var fs []pkgFile
	for _, g := range guides {
		fs = append(fs, pkgFile{src: "docs/" + g, dst: "/usr/share/doc/" + name + "/" + g, mode: 0o644})
	}
	return append(fs,
		pkgFile{src: "copyright", dst: "/usr/share/doc/" + name + "/copyright", mode: 0o644, gen: true, only: "deb"},
		pkgFile{src: "changelog.Debian.gz", dst: "/usr/share/doc/" + name + "/changelog.Debian.gz", mode: 0o644, gen: true, only: "deb"},
		pkgFile{src: "LICENSE", dst: "/usr/share/licenses/" + name + "/LICENSE", mode: 0o644, kind: files.TypeRPMLicense, only: "rpm"},
	)
}

// moduleFiles are the module's sources relative to kernel/ (moduleSources).
func description(arch string, moduleFiles []string) []pkgDesc {
	dkms := pkgDesc{
		name: "smith-dkms", arch: "all", section: "kernel",
		summary: "Smith host sensor kernel module (DKMS source)",
		text: "smith.ko hooks execve, connect, init_module and finit_module and\n" +
			"hands one record per call to smith-agent through a shared-memory\n" +
			"ring (/dev/smith).  DKMS builds it for every kernel with headers\n" +
			"installed, now and at each kernel upgrade.",
		depends:    map[string][]string{"deb": {"dkms", "kmod"}, "rpm": {"dkms", "kmod"}},
		recommends: map[string][]string{"deb": {"linux-headers-" + debKernelFlavour(arch)}, "rpm": {"kernel-devel"}},
		scripts:    "dkms",
		files: []pkgFile{
			{src: "dkms.conf", dst: "/usr/src/smith-{{.DKMS}}/dkms.conf", mode: 0o644, gen: true},
			{src: "smith-module.service", dst: "/usr/lib/systemd/system/smith-module.service", mode: 0o644, gen: true},
		},
	}
	// The module's sources: every C file, header and the Kbuild Makefile
	// (the hooktest fixture is built with it; dkms.conf installs smith.ko only).
	for _, f := range moduleFiles {
		dkms.files = append(dkms.files, pkgFile{src: "kernel/" + f, dst: "/usr/src/smith-{{.DKMS}}/" + f, mode: 0o644})
	}
	dkms.files = append(dkms.files, docFiles("smith-dkms", "MODULE.md")...)

	agent := pkgDesc{
		name: "smith-agent", arch: arch, section: "admin",
		summary: "Smith host sensor agent: kernel events to Kafka",
		text: "smith-agent reads the records of the smith kernel module from its\n" +
			"shared-memory ring, turns them into JSON events and ships them to\n" +
			"Kafka (or a file), with a bounded disk spool and a heartbeat to\n" +
			"smith-console.",
		depends: map[string][]string{"deb": {"smith-dkms (= {{.Version}})"}, "rpm": {"smith-dkms = {{.Version}}"}},
		scripts: "agent",
		files: append([]pkgFile{
			{src: "smith-agent", dst: "/usr/bin/smith-agent", mode: 0o755, gen: true},
			{src: "smith-agent.service", dst: "/usr/lib/systemd/system/smith-agent.service", mode: 0o644, gen: true},
			{src: "agent/smith-agent.toml", dst: "/etc/smith/smith-agent.toml", mode: 0o600, kind: files.TypeConfigNoReplace},
			{dst: "/var/lib/smith", mode: 0o700, kind: files.TypeDir},
			{dst: "/var/log/smith", mode: 0o750, kind: files.TypeDir},
		}, docFiles("smith-agent", "AGENT.md", "EVENTS.md")...),
	}

	console := pkgDesc{
		name: "smith-console", arch: arch, section: "admin",
		summary: "Smith console: heartbeats, host registry and web console",
		text: "smith-console receives the heartbeats of every smith-agent, keeps\n" +
			"the host registry on disk, hands each host its asset-collection\n" +
			"tasks and serves a web console and a CLI.",
		depends: map[string][]string{"deb": {"passwd"}, "rpm": {"shadow-utils"}},
		scripts: "console",
		files: append([]pkgFile{
			{src: "smith-console", dst: "/usr/bin/smith-console", mode: 0o755, gen: true},
			{src: "smith-console.service", dst: "/usr/lib/systemd/system/smith-console.service", mode: 0o644, gen: true},
			{src: "heartbeat/smith-console.toml", dst: "/etc/smith/smith-console.toml", mode: 0o640, kind: files.TypeConfigNoReplace, owner: "smith-console"},
			{dst: "/var/lib/smith-console", mode: 0o750, kind: files.TypeDir, owner: "smith-console"},
		}, docFiles("smith-console", "CONSOLE.md", "HEARTBEAT.md")...),
	}
	return []pkgDesc{dkms, agent, console}
}

// debKernelFlavour: the Debian kernel headers metapackage's suffix for a
// Go architecture (linux-headers-amd64, linux-headers-arm64).
func debKernelFlavour(goarch string) string {
	return goarch
}
