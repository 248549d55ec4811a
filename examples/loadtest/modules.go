package main

import (
	// Caddy's standard modules and phantom_token, for the in-process
	// gateway of the smoke test (-caddy inprocess). The default gateway is
	// the examples/caddy binary, which imports the same.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)
