// Package phantomtoken is the import path for custom Caddy builds:
//
//	xcaddy build --with github.com/phantomgate/caddy-phantom-token
//
// or, from a checkout (a local replacement needs a version; see the README):
//
//	xcaddy build --with github.com/phantomgate/caddy-phantom-token@v0.0.0-00010101000000-000000000000=.
//
// Importing it registers the http.handlers.phantom_token module, the
// admin.api.phantom_token purge endpoint and the phantom_token Caddyfile
// directive, which live in package caddymodule.
package phantomtoken

import (
	// Registers the module and the directive.
	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)
