#!/usr/bin/env bash
# Runs every native Go fuzz target of the root module for FUZZTIME each
# (default 5s), one at a time, and fails on the first failure. `go test`
# alone already runs each target's seed corpus (f.Add and
# testdata/fuzz/<Target>/) as ordinary tests; this adds a short run of new
# inputs. A failing input is written to testdata/fuzz/<Target>/: fix the
# bug, keep the file as a regression seed.
#
# One worker per target by default (FUZZPARALLEL=1): the suite shares small
# machines, and a few seconds per target is a smoke run, not a campaign.
# For a longer run: FUZZTIME=5m FUZZPARALLEL=2 scripts/fuzz.sh, or one target:
#   go test -run '^$' -fuzz '^FuzzIntrospectJSON$' -fuzztime 5m ./introspect
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-5s}
parallel=${FUZZPARALLEL:-1}
targets=(
	./caddymodule:FuzzParseAuthorization
	./caddymodule:FuzzUnmarshalCaddyfile
	./caddymodule:FuzzStripAccessTokenQuery
	./dpop:FuzzVerify
	./introspect:FuzzCacheControl
	./introspect:FuzzIntrospectJSON
	./introspect:FuzzIntrospectJWT
	./introspect:FuzzIntrospectRFC9701
	./introspect:FuzzExchangeReply
	./introspect:FuzzParseJSONObject
	./introspect:FuzzUnmarshalString
	./mcprpc:FuzzClassify
	./mcprpc:FuzzValid
)

# A target added to the code but not to the list above would never be
# fuzzed: fail instead.
listed=$(printf '%s\n' "${targets[@]}" | sed 's/.*://' | sort)
found=$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' --include='*_test.go' --exclude-dir=examples --exclude-dir=.git . |
	sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' | sort)
if [ "$listed" != "$found" ]; then
	echo "scripts/fuzz.sh: the target list differs from the Fuzz functions in the code:" >&2
	diff <(echo "$listed") <(echo "$found") >&2 || true
	exit 1
fi

for t in "${targets[@]}"; do
	pkg=${t%%:*}
	name=${t##*:}
	echo "== fuzz $name ($pkg, $fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel "$parallel" "$pkg"
done
