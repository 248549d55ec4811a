package caddymodule

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counterStripes is the number of copies of the request counters.
const counterStripes = 16

// requestCounter is caddy_phantom_token_requests_total: requests by result.
//
// A prometheus Counter is one atomic word, and every request adds to it:
// on a hit path that otherwise only reads, cores would fight over that
// cache line (measured: a seventh of the CPU of parallel hits on two
// cores). So each result is counted in counterStripes copies, one cache
// line apart, a request adds to a copy chosen at random (per-thread
// generator, no shared state), and a scrape sums them.
type requestCounter struct {
	desc    *prometheus.Desc
	stripes [counterStripes]struct {
		n [numResults]atomic.Uint64
		_ [64 - (8*numResults)%64]byte // one cache line each
	}
}

func newRequestCounter() *requestCounter {
	return &requestCounter{desc: prometheus.NewDesc(
		"caddy_phantom_token_requests_total",
		"Requests seen by phantom_token, by result of the token lookup.",
		[]string{"result"}, nil,
	)}
}

func (c *requestCounter) inc(r requestResult) {
	c.stripes[rand.Uint64()%counterStripes].n[r].Add(1)
}

// value sums the copies of one result's counter.
func (c *requestCounter) value(r requestResult) uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n[r].Load()
	}
	return sum
}

// Describe implements prometheus.Collector.
func (c *requestCounter) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: every result, zeros included,
// so that rates start from the first scrape.
func (c *requestCounter) Collect(ch chan<- prometheus.Metric) {
	for r := range numResults {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.value(r)), resultLabels[r])
	}
}
