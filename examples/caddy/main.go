// Command caddy is a custom Caddy binary with the phantom_token module, built
// the way a platform team builds one. It is the equivalent of
//
//	xcaddy build --with github.com/phantomgate/caddy-phantom-token
//
// Build and use it from the examples module:
//
//	cd examples
//	go build -o caddy-phantom ./caddy
//	./caddy-phantom list-modules | grep phantom_token
//	./caddy-phantom run --config ../Caddyfile.example
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in the stock binary.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The phantom token handler and its Caddyfile directive.
	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)

func main() {
	caddycmd.Main()
}
