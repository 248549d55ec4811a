// Package phantomtoken is the import path for custom Caddy builds:
//
//	xcaddy build --with github.com/phantomgate/caddy-phantom-token
//
// Importing it registers the http.handlers.phantom_token module and the
// phantom_token Caddyfile directive, which live in package caddymodule.
package phantomtoken

import (
	// Registers the module and the directive.
	_ "github.com/phantomgate/caddy-phantom-token/caddymodule"
)
