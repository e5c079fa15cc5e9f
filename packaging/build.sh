#!/usr/bin/env bash
# Build the deb and rpm packages of both commands into dist/.
# Usage (from the repository root, after `make build`): packaging/build.sh
# Environment: VERSION (default: git describe), BIN (the binaries' directory,
# default bin), NFPM (default: bin/nfpm, installed at the pinned version when
# missing),
# FORMATS (default: "deb rpm"), DIST (default: dist).
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=v2.44.0 # v2.45+ pulls modules the Go proxy cannot serve
DIST=${DIST:-dist}
FORMATS=${FORMATS:-deb rpm}
NFPM=${NFPM:-bin/nfpm}
BIN=$(realpath "${BIN:-bin}")

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
# Packages need a version that starts with a digit and sorts after its tag:
# v1.2.3 → 1.2.3, v1.2.3-4-gabc → 1.2.3+4.gabc, an untagged abc123 → 0.0.0~gabc123.
version=${version#v}
[[ $version =~ ^[0-9] ]] || version="0.0.0~g${version}"
version=${version/-/+}
export VERSION=${version//-/.}
export ARCH=${ARCH:-$(go env GOARCH)}

for f in "$BIN/latchkey-ssh-helper" "$BIN/latchkey-agent" \
	packaging/ssh-helper/config.hcl packaging/ssh-helper/pam.d-sshd packaging/copyright packaging/changelog \
	systemd/latchkey-agent.service packaging/agent/agent.hcl; do
	[[ -e $f ]] || { echo "packaging/build.sh: missing $f (run make build first?)" >&2; exit 1; }
done

if [[ ! -x $NFPM ]]; then
	GOBIN="$(realpath "$(dirname "$NFPM")")" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}"
fi

mkdir -p "$DIST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gen=$tmp/gen
mkdir "$gen"
gzip -9n <packaging/changelog >"$gen/changelog.gz"
# Man pages from the same text as -help (which exits non-zero, on stderr).
help() { "$@" -help 2>&1 || true; }
{
	help "$BIN/latchkey-ssh-helper"
	echo
	help "$BIN/latchkey-ssh-helper" install-pam
	echo
	help "$BIN/latchkey-ssh-helper" doctor
} | packaging/man.sh latchkey-ssh-helper 8 "$VERSION" "Vault SSH one-time-password verifier for PAM" | gzip -9n >"$gen/latchkey-ssh-helper.8.gz"
help "$BIN/latchkey-agent" | packaging/man.sh latchkey-agent 8 "$VERSION" "Vault agent for cloud instances" | gzip -9n >"$gen/latchkey-agent.8.gz"
for format in $FORMATS; do
	unitdir=/usr/lib/systemd/system
	[[ $format == deb ]] && unitdir=/lib/systemd/system
	for pkg in ssh-helper agent; do
		# deb has no License field (lintian: unknown-field): the copyright
		# file carries it.
		nolicense=
		[[ $format == deb ]] && nolicense='/^license:/d'
		sed -e "s|@UNITDIR@|$unitdir|g" -e "s|@BIN@|$BIN|g" -e "s|@GEN@|$gen|g" -e "$nolicense" "packaging/nfpm-$pkg.yaml" >"$tmp/nfpm-$pkg.yaml"
		"$NFPM" package --config "$tmp/nfpm-$pkg.yaml" --packager "$format" --target "$DIST/"
	done
done
ls -l "$DIST"
