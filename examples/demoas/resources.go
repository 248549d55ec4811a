package demoas

import (
	"fmt"
	"slices"
	"strings"
)

// Resource is a protected resource the authorization code grant and token
// exchange issue tokens for.
type Resource struct {
	// URL is the RFC 8707 resource indicator (absolute URI, no fragment);
	// tokens for the resource carry it as their audience.
	URL string
	// Name is shown on the consent page; optional.
	Name string
	// Scopes are the scopes this resource accepts; a token for the resource
	// carries no other.
	Scopes []string
}

// resources are the configured resources, validated.
type resources []Resource

// newResources validates and copies rs.
func newResources(rs []Resource) (resources, error) {
	out := make(resources, 0, len(rs))
	for _, r := range rs {
		if err := checkResource(r.URL); err != nil {
			return nil, fmt.Errorf("demoas: %w", err)
		}
		if out.find(r.URL) != nil {
			return nil, fmt.Errorf("demoas: duplicate resource %q", r.URL)
		}
		for _, sc := range r.Scopes {
			if sc == "" || strings.ContainsAny(sc, " \t\r\n\"\\") {
				return nil, fmt.Errorf("demoas: resource %q has an invalid scope %q", r.URL, sc)
			}
		}
		r.Scopes = slices.Clone(r.Scopes)
		out = append(out, r)
	}
	return out, nil
}

// find returns the resource whose URL is u (exact match), or nil.
func (rs resources) find(u string) *Resource {
	for i := range rs {
		if rs[i].URL == u {
			return &rs[i]
		}
	}
	return nil
}

// urls returns every resource's URL.
func (rs resources) urls() []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.URL)
	}
	return out
}

// allScopes returns the scopes of every resource, sorted, without
// duplicates.
func (rs resources) allScopes() []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Scopes...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// narrow returns the scopes of r that are in requested, in r's order, or all
// of r's scopes when nothing is requested. Requested scopes r does not
// accept are dropped: a token never carries more than its resource accepts.
func (r *Resource) narrow(requested []string) []string {
	if len(requested) == 0 {
		return slices.Clone(r.Scopes)
	}
	var out []string
	for _, sc := range r.Scopes {
		if slices.Contains(requested, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// label is what the consent page calls the resource.
func (r *Resource) label() string {
	if r.Name != "" {
		return r.Name
	}
	return r.URL
}
