# SPDX-License-Identifier: GPL-2.0
#
# Packages (packaging/, docs/PACKAGES.md):
#   make packages       smith-dkms, smith-agent and smith-console as .deb and
#                       .rpm into out/packages/, versioned from git describe
#   make test-packages  part of make test: dpkg-deb, lintian and rpm checks,
#                       then install, upgrade and removal of the .debs in a
#                       throwaway Debian root, DKMS building the module
#                       against the 6.1 headers there (packaging/test.sh)
# PKG_ARCHS are the Go architectures packaged (the module's source package
# is one for all); the throwaway root installs the host's.  PKG_RELEASE is
# the package revision.

PKG_ARCHS ?= amd64 arm64
PKG_RELEASE ?= 1
PKG_OUT ?= $(OUT)/packages
PKG_NICE ?= nice -n 10
# Binaries are stripped (-s -w), as Debian policy asks of packaged ones.
# The commit count orders untagged builds; the commit time stamps the files.
PKG_COMMITS = $(shell git rev-list --count HEAD)
PKG_EPOCH = $(shell git log -1 --format=%ct)

.PHONY: packages test-packages

packages:
	@rm -f $(PKG_OUT)/*.deb $(PKG_OUT)/*.rpm
	@set -e; for a in $(PKG_ARCHS); do \
		mkdir -p $(PKG_OUT)/bin-$$a; \
		echo "packages: $$a"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags "-s -w $(VERSION_LDFLAGS)" \
			-o $(PKG_OUT)/bin-$$a/ ./agent/cmd/smith-agent ./heartbeat/cmd/smith-console; \
		$(GO) run ./packaging -version "$(VERSION)" -commits "$(PKG_COMMITS)" -epoch "$(PKG_EPOCH)" \
			-release "$(PKG_RELEASE)" -arch $$a -bin $(PKG_OUT)/bin-$$a -out $(PKG_OUT); \
	done

# The upgrade is to the same commit packaged again as revision 2: a new
# DKMS version, so DKMS must build again (it skips a version it built).
test-packages: deps
	@$(MAKE) --no-print-directory packages
	@$(MAKE) --no-print-directory packages PKG_RELEASE=2 PKG_OUT=$(PKG_OUT)/upgrade
	@PKG_ARCHS="$(PKG_ARCHS)" $(PKG_NICE) packaging/test.sh $(PKG_OUT) $(PKG_OUT)/upgrade

TEST_TARGETS += test-packages
