//go:build tools

// Package tools pins Ory Hydra as a build tool for the end-to-end tests.
// Build it with build.sh (or: CGO_ENABLED=1 go build -tags
// sqlite,sqlite_omit_load_extension -o bin/hydra github.com/ory/hydra/v2).
package tools

import _ "github.com/ory/hydra/v2"
