#!/usr/bin/env bash
# Builds Ory Hydra v2.3.0 (pinned in go.mod next to this script) into
# examples/hydra/bin/hydra, for the end-to-end tests. Idempotent: does nothing
# when bin/hydra is newer than go.mod and go.sum. Run from anywhere:
#   bash examples/hydra/build.sh
# The first build compiles ~800 packages with cgo (sqlite) and takes minutes.
set -euo pipefail
cd "$(dirname "$0")"

if [[ -x bin/hydra && bin/hydra -nt go.sum && bin/hydra -nt go.mod ]]; then
	echo "hydra: bin/hydra is up to date"
	exit 0
fi

echo "hydra: building bin/hydra (cgo, tags sqlite,sqlite_omit_load_extension)..."
start=$SECONDS
mkdir -p bin
# Build next to the target and rename, so a concurrent reader never sees a
# half-written binary.
tmp="bin/.hydra.$$"
trap 'rm -f "$tmp"' EXIT
GOWORK=off CGO_ENABLED=1 go build -tags sqlite,sqlite_omit_load_extension \
	-o "$tmp" github.com/ory/hydra/v2
mv -f "$tmp" bin/hydra
echo "hydra: built bin/hydra in $((SECONDS - start))s"
