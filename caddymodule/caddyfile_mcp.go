package caddymodule

import (
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The Caddyfile forms of per-operation authorization (see mcpops.go):
//
//	mcp_operation <method> [<name pattern>] {
//	    scopes <scope>...
//	}
//	scope_implies <broad> <narrow>...
func (h *Handler) unmarshalMCPOperation(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return d.Errf("mcp_operation: expected <JSON-RPC method> [<name pattern>] and a block with scopes, got %d arguments", len(args))
	}
	op := MCPOperation{Method: args[0]}
	if len(args) == 2 {
		op.Name = args[1]
	}
	seen := false
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "scopes":
			if seen {
				return d.Errf("mcp_operation %s: duplicate subdirective 'scopes'", op.Method)
			}
			seen = true
			if err := someArgs(d, &op.Scopes, "<scope>..."); err != nil {
				return err
			}
		default:
			return d.Errf("mcp_operation %s: unknown subdirective '%s' (expected scopes)", op.Method, d.Val())
		}
	}
	if !seen {
		return d.Errf("mcp_operation %s: a block with scopes <scope>... is required", op.Method)
	}
	h.MCPOperations = append(h.MCPOperations, op)
	return nil
}

func (h *Handler) unmarshalScopeImplies(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Errf("scope_implies: expected <broad scope> <narrow scope>...")
	}
	if h.ScopeImplies == nil {
		h.ScopeImplies = map[string][]string{}
	}
	for _, n := range args[1:] {
		if !slices.Contains(h.ScopeImplies[args[0]], n) {
			h.ScopeImplies[args[0]] = append(h.ScopeImplies[args[0]], n)
		}
	}
	return nil
}
