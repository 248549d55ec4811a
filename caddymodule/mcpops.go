package caddymodule

import (
	"errors"
	"fmt"
	"slices"

	"github.com/phantomgate/caddy-phantom-token/mcprpc"
)

// MCPOperation is one per-operation rule (README, "Per-operation
// authorization (MCP)"): requests whose JSON-RPC method is Method and,
// when Name is set, whose target (params.name of tools/call and
// prompts/get, params.uri of resources/read) matches the pattern Name need
// Scopes on top of required_scopes. The first matching rule applies.
type MCPOperation struct {
	// Method is the JSON-RPC method, such as tools/call. Required.
	Method string `json:"method,omitempty"`
	// Name is a pattern for the target; '*' matches any run of
	// characters. Empty: every name. Only for tools/call, prompts/get and
	// resources/read.
	Name string `json:"name,omitempty"`
	// Scopes are needed on top of required_scopes. Required.
	Scopes []string `json:"scopes,omitempty"`
}

// defaultMaxBody is how much of a POST body a route with mcp_operation
// reads to find the operation.
const defaultMaxBody = 1 << 20

// offlineAccess is never asked for in a challenge or published as a
// resource scope: it is about refresh tokens, not this resource.
const offlineAccess = "offline_access"

// mcpRule is an MCPOperation made ready for requests.
type mcpRule struct {
	method     string
	pattern    mcprpc.Pattern
	hasPattern bool
	// needs holds, for each scope the operation needs (required_scopes
	// and the rule's), the scopes that satisfy it: itself and every
	// scope that implies it.
	needs [][]string
	// challenge is the insufficient_scope challenge naming every scope
	// the operation needs.
	challenge challenge
}

// mcpPolicy is a route's per-operation authorization; nil on routes
// without mcp_operation, which never read bodies.
type mcpPolicy struct {
	rules   []mcpRule
	maxBody int64
}

// match returns the first rule for m, or nil.
func (p *mcpPolicy) match(m *mcprpc.Message) *mcpRule {
	for i := range p.rules {
		r := &p.rules[i]
		if r.method != m.Method {
			continue
		}
		if !r.hasPattern {
			return r
		}
		if target, ok := m.Target(); ok && r.pattern.Match(target) {
			return r
		}
	}
	return nil
}

// satisfied reports whether the granted scope list meets every need.
func satisfied(scope string, needs [][]string) bool {
	for _, any := range needs {
		ok := false
		for _, s := range any {
			if hasScope(scope, s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// scopeSatisfiers returns, for a scope, the scopes that satisfy it: itself
// and every scope that implies it through implies, transitively. Cycles are
// fine: each scope is visited once.
func scopeSatisfiers(implies map[string][]string) func(string) []string {
	impliedBy := map[string][]string{}
	for broad, narrows := range implies {
		for _, n := range narrows {
			impliedBy[n] = append(impliedBy[n], broad)
		}
	}
	for _, list := range impliedBy {
		slices.Sort(list) // map order must not leak into the result
	}
	return func(scope string) []string {
		out := []string{scope}
		seen := map[string]bool{scope: true}
		for i := 0; i < len(out); i++ {
			for _, b := range impliedBy[out[i]] {
				if !seen[b] {
					seen[b] = true
					out = append(out, b)
				}
			}
		}
		return out
	}
}

// needsFor turns scopes into needs under satisfiers.
func needsFor(scopes []string, satisfiers func(string) []string) [][]string {
	needs := make([][]string, 0, len(scopes))
	for _, s := range scopes {
		needs = append(needs, satisfiers(s))
	}
	return needs
}

// union returns a's scopes then b's, each once, in order.
func union(a, b []string) []string {
	var out []string
	for _, s := range append(slices.Clone(a), b...) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// withoutOfflineAccess drops offline_access from a scope list.
func withoutOfflineAccess(scopes []string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == offlineAccess })
}

// validateMCP checks the per-operation settings; errors name the
// subdirective.
func (h *Handler) validateMCP() error {
	for i, op := range h.MCPOperations {
		where := fmt.Sprintf("mcp_operation %s", op.Method)
		switch {
		case op.Method == "":
			return fmt.Errorf("mcp_operations[%d].method: required (a JSON-RPC method such as tools/call)", i)
		case len(op.Scopes) == 0:
			return fmt.Errorf("%s: scopes: required (the scopes the operation needs on top of required_scopes)", where)
		case op.Name != "" && !mcprpc.HasTarget(op.Method):
			return fmt.Errorf("%s %s: a name pattern applies only to tools/call, prompts/get and resources/read", where, op.Name)
		}
		if op.Name != "" {
			if _, err := mcprpc.ParsePattern(op.Name); err != nil {
				return fmt.Errorf("%s %s: invalid pattern: %v", where, op.Name, err)
			}
		}
		for _, s := range op.Scopes {
			if !validScopeToken(s) {
				return fmt.Errorf("%s: scopes: %q is not a scope token", where, s)
			}
		}
	}
	for broad, narrows := range h.ScopeImplies {
		if !validScopeToken(broad) || len(narrows) == 0 {
			return fmt.Errorf("scope_implies: expected <broad scope> <narrow scope>..., got %q with %d narrow scopes", broad, len(narrows))
		}
		for _, n := range narrows {
			if !validScopeToken(n) {
				return fmt.Errorf("scope_implies %s: %q is not a scope token", broad, n)
			}
		}
	}
	if h.MaxBody < 0 {
		return errors.New("max_body: must be positive")
	}
	if h.MaxBody != 0 && len(h.MCPOperations) == 0 {
		return errors.New("max_body: only used with mcp_operation")
	}
	return nil
}

// validScopeToken reports whether s is an RFC 6749 scope-token:
// printable ASCII but for space, '"' and '\'.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// provisionMCP builds the route's per-operation policy; routes without
// mcp_operation get none.
func (h *Handler) provisionMCP(satisfiers func(string) []string, metadataURL string) {
	if len(h.MCPOperations) == 0 {
		return
	}
	p := &mcpPolicy{maxBody: h.MaxBody}
	if p.maxBody == 0 {
		p.maxBody = defaultMaxBody
	}
	for _, op := range h.MCPOperations {
		needed := union(h.RequiredScopes, op.Scopes)
		r := mcpRule{
			method:    op.Method,
			needs:     needsFor(needed, satisfiers),
			challenge: newChallenges(h.Realm, withoutOfflineAccess(needed), metadataURL, h.dpopChallenges()).insufficientScope,
		}
		if op.Name != "" {
			r.pattern, _ = mcprpc.ParsePattern(op.Name) // checked by validateMCP
			r.hasPattern = true
		}
		p.rules = append(p.rules, r)
	}
	h.mcp = p
}

// defaultScopesSupported is what the metadata publishes when
// scopes_supported is not configured on a route with mcp_operation:
// required_scopes and every rule's scopes, once each, in config order,
// without offline_access (and without the broad scopes that appear only in
// scope_implies).
func (h *Handler) defaultScopesSupported() []string {
	if len(h.ScopesSupported) > 0 || len(h.MCPOperations) == 0 {
		return h.ScopesSupported
	}
	all := h.RequiredScopes
	for _, op := range h.MCPOperations {
		all = union(all, op.Scopes)
	}
	return withoutOfflineAccess(union(all, nil))
}
