#!/usr/bin/env bash
# The whole test suite: vet and race-enabled tests of the root module (what
# plugin users import) and of the examples module (demo AS, MCP server,
# quickstart, end-to-end tests against real authorization servers and real
# MCP clients, the example deployment with a real browser). It installs
# what those tests need first: the npm packages from the committed lock
# files, the Ory Hydra binary (built from the Go module proxy), Redis
# (Debian's redis-server) and Chromium (Debian's chromium). All steps are
# idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== installing test dependencies"
# Real Redis for the shared-cache tests (Debian's redis-server package has
# redis-server and redis-cli); installed when missing and we are root.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
	else
		echo "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server);" >&2
		echo "without it the shared-cache tests are skipped (and fail under CI=true)." >&2
	fi
fi
# Debian's Chromium for the example deployment's login tests (driven by
# playwright-core, which downloads no browser); installed when missing and we
# are root.
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
	else
		echo "chromium is missing: install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM;" >&2
		echo "without it the example deployment's login tests fail." >&2
	fi
fi
for lock in examples/*/package-lock.json examples/*/*/package-lock.json; do
	[ -f "$lock" ] || continue
	dir=$(dirname "$lock")
	# npm ci only when the lock changed since the last install.
	if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$lock" -nt "$dir/node_modules/.package-lock.json" ]; then
		echo "npm ci in $dir"
		npm ci --prefix "$dir" --no-audit --no-fund
	fi
done
if [ -f examples/hydra/build.sh ]; then
	bash examples/hydra/build.sh
fi

echo "== root module"
go vet ./...
go test -race -count=1 ./...
# Benchmarks once each, as a smoke test: numbers come from `go test -bench`
# and the load harness (README, Performance), never from timed tests.
go test -short -run '^$' -bench . -benchtime=1x ./... > /dev/null
bash scripts/fuzz.sh # each fuzz target for FUZZTIME (5s); the seed corpora ran above
# A Caddy built from this checkout with xcaddy, as the README shows (pinned
# xcaddy and Caddy versions), has the modules and validates Caddyfile.example.
bash scripts/xcaddy-build.sh

echo "== examples module"
# The load harness's test saturates the CPU for half a minute; it runs on
# its own so that it does not starve the end-to-end tests' real servers.
(cd examples && go vet ./... &&
	go test -race -count=1 -timeout 20m $(go list ./... | grep -v /examples/loadtest$) &&
	go test -race -count=1 -timeout 20m ./loadtest)
