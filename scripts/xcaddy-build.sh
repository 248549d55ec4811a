#!/usr/bin/env bash
# Builds Caddy with this module from the checkout, the way the README
# shows, and checks the binary:
#
#   xcaddy build <Caddy version of go.mod> \
#     --with github.com/phantomgate/caddy-phantom-token@v0.0.0-00010101000000-000000000000=.
#
# A local replacement needs a version: without one, xcaddy's `go get` asks the
# module proxy for the module's versions, which fails while the module is
# unpublished. v0.0.0-00010101000000-000000000000 is the zero pseudo-version
# (the one examples/go.mod requires). The Caddy version is the one the root
# go.mod requires, so the build does not depend on what is newest.
#
# It then checks that `caddy list-modules` has every module this repository
# registers and that `caddy validate` accepts Caddyfile.example. Everything
# is built in a temporary directory, removed on exit; an xcaddy of another
# version (or none) is replaced by XCADDY_VERSION installed there, so nothing
# outside it changes. Works as root or not; takes minutes on 2 cores (the
# Caddy build), less once Go's build cache is warm. Run from anywhere:
#   bash scripts/xcaddy-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

XCADDY_VERSION=v0.4.5 # pinned: the newest xcaddy when written (builds with Go 1.26)
module=github.com/phantomgate/caddy-phantom-token
zero_version=v0.0.0-00010101000000-000000000000
# Every module the root module registers (caddy.RegisterModule): checked
# against the source below, so a new module cannot be left out here.
module_ids=(http.handlers.phantom_token admin.api.phantom_token)

start=$SECONDS
export GOWORK=off
caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
registered=$({ grep -rh --include='*.go' --exclude='*_test.go' --exclude-dir=examples \
	--exclude-dir=node_modules --exclude-dir=.git 'caddy\.RegisterModule(' . || true; } | wc -l)
if [ "$registered" -ne "${#module_ids[@]}" ]; then
	echo "xcaddy-build: the source has $registered caddy.RegisterModule calls, the script checks ${#module_ids[@]} modules: update module_ids" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcaddy-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# xcaddy's build module and go's work files go under $tmp too, so that an
# interrupted build leaves nothing behind; Caddy's data and config as well.
export TMPDIR=$tmp XDG_DATA_HOME=$tmp/data XDG_CONFIG_HOME=$tmp/config
# These would skip the build or keep its directory, or run sudo setcap.
unset XCADDY_SKIP_BUILD XCADDY_SKIP_CLEANUP XCADDY_SETCAP

# xcaddy: the one on PATH or in GOBIN/GOPATH/bin when it is XCADDY_VERSION,
# else XCADDY_VERSION installed into $tmp/bin.
xcaddy=
gopath=$(go env GOPATH)
gobin=$(go env GOBIN)
for candidate in "$(command -v xcaddy || true)" "${gobin:+$gobin/xcaddy}" "${gopath%%:*}/bin/xcaddy"; do
	[ -n "$candidate" ] && [ -x "$candidate" ] || continue
	if [ "$(go version -m "$candidate" 2>/dev/null | awk '$1 == "mod" { print $3 }')" = "$XCADDY_VERSION" ]; then
		xcaddy=$candidate
		break
	fi
done
if [ -z "$xcaddy" ]; then
	echo "xcaddy-build: installing xcaddy $XCADDY_VERSION into a temporary GOBIN"
	(cd "$tmp" && GOBIN=$tmp/bin go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION")
	xcaddy=$tmp/bin/xcaddy
fi
echo "xcaddy-build: using $xcaddy ($XCADDY_VERSION)"

echo "xcaddy-build: xcaddy build $caddy_version --with $module@$zero_version=. (its log is shown on failure)"
if ! "$xcaddy" build "$caddy_version" --with "$module@$zero_version=." --output "$tmp/caddy" >"$tmp/build.log" 2>&1; then
	tail -n 60 "$tmp/build.log" >&2
	echo "xcaddy-build: FAIL: xcaddy build failed (last 60 lines above)" >&2
	exit 1
fi

version=$("$tmp/caddy" version)
case $version in
"$caddy_version "* | "$caddy_version") echo "xcaddy-build: ok: caddy version is $version" ;;
*)
	echo "xcaddy-build: FAIL: caddy version is $version, want $caddy_version" >&2
	exit 1
	;;
esac

"$tmp/caddy" list-modules >"$tmp/modules"
for id in "${module_ids[@]}"; do
	if ! grep -qxF "$id" "$tmp/modules"; then
		echo "xcaddy-build: FAIL: caddy list-modules has no $id" >&2
		exit 1
	fi
	echo "xcaddy-build: ok: caddy list-modules has $id"
done

# validate provisions the module but does no network I/O; the client
# secret has no default in the Caddyfile (empty is a config error).
if ! PHANTOM_CLIENT_SECRET=${PHANTOM_CLIENT_SECRET:-xcaddy-build-check} \
	"$tmp/caddy" validate --config Caddyfile.example --adapter caddyfile >"$tmp/validate.log" 2>&1; then
	cat "$tmp/validate.log" >&2
	echo "xcaddy-build: FAIL: caddy validate --config Caddyfile.example failed" >&2
	exit 1
fi
echo "xcaddy-build: ok: caddy validate --config Caddyfile.example --adapter caddyfile"
echo "xcaddy-build: passed in $((SECONDS - start))s"
