#!/usr/bin/env bash
# Installs what the browser and federation integration tests need
# (integration/browser_test.go, integration/federation_test.go):
#
#   - Debian's chromium (/usr/bin/chromium), driven headless by playwright-core;
#   - the node packages of integration/browser (playwright-core only: it never
#     downloads a browser of its own);
#   - the node packages of the reference OpenID provider, integration/testdata/op
#     (node oidc-provider).
#
# Debian, as root (apt-get). Idempotent: what is already there is kept, so a
# second run does no network work. Progress goes to stderr, one line a step.
#
#   bash .ci/deps-browser.sh
#   GATEHOUSE_BROWSER_TESTS=1 go test -count=1 -run 'TestBrowser|TestFederation' ./integration/
set -euo pipefail
exec 1>&2

log() { printf 'deps-browser.sh: %s\n' "$*"; }
die() { log "error: $*"; exit 1; }

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel 2>/dev/null) || repo=$(cd "$(dirname "$0")/.." && pwd)

command -v node >/dev/null || die "node is not installed (the machine's Node.js is expected; apt-get install nodejs npm otherwise)"
command -v npm >/dev/null || die "npm is not installed"

# Chromium from Debian's packages.
if [[ ! -x /usr/bin/chromium ]]; then
	[[ $EUID -eq 0 ]] || die "chromium is not installed and installing it needs root"
	export DEBIAN_FRONTEND=noninteractive
	# An apt-get update first unless the package lists already know chromium.
	if ! apt-cache show chromium >/dev/null 2>&1; then
		log "apt-get update"
		apt-get update -q >/dev/null
	fi
	log "installing chromium with apt-get"
	if ! apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null; then
		log "apt-get install failed; retrying after apt-get update"
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null
	fi
	[[ -x /usr/bin/chromium ]] || die "apt-get installed chromium but /usr/bin/chromium is missing"
fi
log "$(/usr/bin/chromium --version 2>/dev/null || echo chromium)"

# installed DIR: true when every dependency that DIR/package.json pins is in
# DIR/node_modules at that exact version.
installed() {
	(cd "$1" && node -e '
		const fs = require("fs");
		const deps = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies || {};
		for (const [name, want] of Object.entries(deps)) {
			let got;
			try { got = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version; } catch { process.exit(1); }
			if (/^\d+\.\d+\.\d+$/.test(want) && got !== want) process.exit(1);
		}')
}

# npm_deps DIR MARKER: installs DIR's node packages unless they are there
# already. npm ci when a package-lock.json is committed (exact versions),
# npm install otherwise.
npm_deps() {
	local dir=$1 marker=$2
	[[ -f $dir/package.json ]] || die "$dir/package.json is missing"
	if installed "$dir"; then
		log "node packages of $dir: present"
		return 0
	fi
	log "installing the node packages of $dir"
	if [[ -f $dir/package-lock.json ]]; then
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	else
		(cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	fi
	[[ -f $dir/node_modules/$marker/package.json ]] || die "npm finished but $dir/node_modules/$marker is missing"
}

npm_deps "$repo/integration/browser" playwright-core
npm_deps "$repo/integration/testdata/op" oidc-provider
log "ready"
