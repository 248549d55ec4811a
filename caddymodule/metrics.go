package caddymodule

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phantomgate/caddy-phantom-token/introspect"
)

// requestResult is a value of the "result" label of
// caddy_phantom_token_requests_total, and of the phantom_token_cache access
// log field. The label set is fixed: never a token, subject or client. It
// is an index rather than the label string so that a request finds its
// counter and log field by indexing, with no hashing or map lookup.
type requestResult uint8

const (
	resultHit         requestResult = iota // active entry from the cache
	resultMiss                             // introspected now (active or not)
	resultNegativeHit                      // inactive entry from the cache
	resultRejected                         // no or malformed credentials; the AS was not asked
	resultASError                          // the AS was unreachable or misbehaved
	resultOverloaded                       // a miss refused by the AS concurrency limit; the AS was not asked
	resultCircuitOpen                      // a miss refused by the open AS circuit breaker; the AS was not asked
	numResults
)

// resultLabels are the label values, by requestResult.
var resultLabels = [numResults]string{
	resultHit:         "hit",
	resultMiss:        "miss",
	resultNegativeHit: "negative_hit",
	resultRejected:    "rejected",
	resultASError:     "as_error",
	resultOverloaded:  "overloaded",
	resultCircuitOpen: "circuit_open",
}

// Values of the "outcome" label of the introspection latency histogram.
const (
	outcomeActive      = "active"
	outcomeInactive    = "inactive"
	outcomeUnavailable = "unavailable"
	outcomeBadResponse = "bad_response"
)

// The collectors are built once per process and registered into each
// config's registry: a second handler must not panic on a duplicate
// registration, and counts must carry on across config reloads.
var metrics = struct {
	once          sync.Once
	requests      *requestCounter
	introspection *prometheus.HistogramVec
}{}

func initMetrics() {
	metrics.once.Do(func() {
		metrics.requests = newRequestCounter()
		metrics.introspection = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "caddy",
			Subsystem: "phantom_token",
			Name:      "introspection_duration_seconds",
			Help:      "Latency of calls to the authorization server, by outcome.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"})
	})
}

// registerMetrics makes the collectors visible through one config's
// registry. A nil registry (some tests) is fine.
func registerMetrics(reg *prometheus.Registry) error {
	initMetrics()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.requests, metrics.introspection, breakerStates, sharedCacheBreakerStates, sharedResults, bindingRejections} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func countRequest(result requestResult) {
	metrics.requests.inc(result)
}

func observeIntrospection(outcome string, d time.Duration) {
	metrics.introspection.WithLabelValues(outcome).Observe(d.Seconds())
}

func outcomeOf(res *introspect.Result, err error) string {
	var ie *introspect.Error
	switch {
	case err == nil && res.Active:
		return outcomeActive
	case err == nil:
		return outcomeInactive
	case errors.As(err, &ie) && ie.Kind == introspect.KindUnavailable:
		return outcomeUnavailable
	}
	return outcomeBadResponse
}
