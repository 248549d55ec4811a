#!/usr/bin/env bash
# The whole test suite: vet and race-enabled tests of the root module (what
# plugin users import) and of the examples module (demo AS, quickstart, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== root module"
go vet ./...
go test -race -count=1 ./...

echo "== examples module"
(cd examples && go vet ./... && go test -race -count=1 ./...)
