package caddymodule

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phantomgate/caddy-phantom-token/asguard"
)

// breakerStates is caddy_phantom_token_circuit_breakers: how many AS
// circuit breakers (one per handler identity with the breaker on) are in
// each state. It reads the live breakers at scrape time, so it cannot
// drift from them, and costs the request path nothing.
var breakerStates = newBreakerCollector("caddy_phantom_token_circuit_breakers",
	"Circuit breakers for authorization servers, by state (closed, open, half_open).")

// sharedCacheBreakerStates is caddy_phantom_token_shared_cache_breakers:
// the same for the breakers in front of the shared Redis caches (one per
// distinct redis configuration).
var sharedCacheBreakerStates = newBreakerCollector("caddy_phantom_token_shared_cache_breakers",
	"Circuit breakers for the shared Redis caches, by state (closed, open, half_open).")

func newBreakerCollector(name, help string) *breakerCollector {
	return &breakerCollector{
		desc: prometheus.NewDesc(name, help, []string{"state"}, nil),
		live: map[*asguard.Breaker]struct{}{},
	}
}

type breakerCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	live map[*asguard.Breaker]struct{}
}

func (c *breakerCollector) add(b *asguard.Breaker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[b] = struct{}{}
}

// remove forgets b; nil (a guard without a breaker) is fine.
func (c *breakerCollector) remove(b *asguard.Breaker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, b)
}

// Describe implements prometheus.Collector.
func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: every state, zeros included.
func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	var n [asguard.NumStates]int
	c.mu.Lock()
	for b := range c.live {
		n[b.State()]++
	}
	c.mu.Unlock()
	for s := range asguard.NumStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n[s]), s.String())
	}
}
