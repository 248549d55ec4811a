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

	// loginClients is what clients that log users in (registered or
	// resolved from a metadata document) may request; nil when the
	// authorization code grant is off.
	loginClients *clientTemplate
	// cimd resolves Client ID Metadata Documents; nil when the
	// authorization code grant is off, so no URL is ever fetched.
	cimd *cimdResolver
}

// clientTemplate holds the scopes and audiences of clients that log users in.
type clientTemplate struct {
	scopes   []string
	audience []string
}

// client is a registered client: fosite's view plus the resources it may
// request (client credentials), and, for clients that log users in, their
// registered metadata.
type client struct {
	*fosite.DefaultClient
	resources []string
	// meta is the metadata of a client registered by RFC 7591 or resolved
	// from a Client ID Metadata Document; nil for Config.Clients.
	meta *clientMetadata
}

// name is the client's display name: client_name, else its ID.
func (c *client) name() string {
	if c.meta != nil && c.meta.ClientName != "" {
		return c.meta.ClientName
	}
	return c.ID
}

func newStore() *store {
	return &store{MemoryStore: storage.NewMemoryStore(), clients: map[string]*client{}}
}

// GetClient implements fosite.ClientManager. Besides registered clients it
// resolves client IDs that are Client ID Metadata Document URLs, and accepts
// a loopback redirect URI on another port (see withRedirectURI).
func (s *store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	s.mu.RLock()
	c, ok := s.clients[id]
	s.mu.RUnlock()
	if !ok {
		if s.cimd == nil || !isMetadataDocumentURL(id) {
			return nil, fosite.ErrNotFound
		}
		var err error
		if c, err = s.cimd.resolve(ctx, id, s.loginClients); err != nil {
			return nil, fmt.Errorf("%w: %w", fosite.ErrNotFound, err)
		}
	}
	return withLoopbackPort(ctx, c), nil
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

// register stores a dynamically registered client under a new ID.
func (s *store) register(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
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
