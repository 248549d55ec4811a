package demoas

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/ory/fosite"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"
)

// store is fosite's in-memory storage with a client registry of its own,
// guarded by a mutex, so clients can be added while the server runs (fosite's
// MemoryStore.Clients map cannot be written safely once it serves).
type store struct {
	*storage.MemoryStore

	mu      sync.RWMutex
	clients map[string]*client
}

// client is a registered client: fosite's view plus the resources it may
// request.
type client struct {
	*fosite.DefaultClient
	resources []string
}

func newStore() *store {
	return &store{MemoryStore: storage.NewMemoryStore(), clients: map[string]*client{}}
}

// GetClient implements fosite.ClientManager.
func (s *store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fosite.ErrNotFound
	}
	return c, nil
}

// add registers c; its ID must be new.
func (s *store) add(c Client) error {
	fc, err := newClient(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.clients[c.ID]; dup {
		return fmt.Errorf("demoas: duplicate client %q", c.ID)
	}
	s.clients[c.ID] = fc
	return nil
}

// scopes returns every scope some client may request, sorted.
func (s *store) scopes() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, c := range s.clients {
		for _, sc := range c.Scopes {
			if !seen[sc] {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	slices.Sort(out)
	return out
}

// newClient converts c into a client with a hashed secret.
func newClient(c Client) (*client, error) {
	if c.ID == "" {
		return nil, errors.New("demoas: client with an empty ID")
	}
	if c.Secret == "" {
		return nil, fmt.Errorf("demoas: client %q has an empty secret", c.ID)
	}
	for _, r := range c.Resources {
		if err := checkResource(r); err != nil {
			return nil, fmt.Errorf("demoas: client %q: %w", c.ID, err)
		}
	}
	// The minimum bcrypt cost keeps tests fast; this is a demo server.
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Secret), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("demoas: hash secret of client %q: %w", c.ID, err)
	}
	return &client{
		DefaultClient: &fosite.DefaultClient{
			ID:         c.ID,
			Secret:     hash,
			Scopes:     append([]string(nil), c.Scopes...),
			Audience:   append([]string(nil), c.Audience...),
			GrantTypes: []string{"client_credentials"},
		},
		resources: append([]string(nil), c.Resources...),
	}, nil
}

// checkResource reports whether r is a valid RFC 8707 resource indicator:
// an absolute URI without a fragment.
func checkResource(r string) error {
	if strings.Contains(r, "#") {
		return fmt.Errorf("resource %q has a fragment", r)
	}
	if u, err := url.Parse(r); err != nil || !u.IsAbs() {
		return fmt.Errorf("resource %q is not an absolute URI", r)
	}
	return nil
}
