package caddymodule

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Concurrent increments land in random stripes; a scrape must see them
// all, per result, with the results not counted show as 0.
func TestRequestCounterSumsItsStripes(t *testing.T) {
	c := newRequestCounter()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.inc(resultHit)
			}
			c.inc(resultASError)
		}()
	}
	wg.Wait()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil || len(families) != 1 {
		t.Fatalf("scrape: %d families, %v", len(families), err)
	}
	scraped := map[string]float64{}
	for _, m := range families[0].GetMetric() {
		scraped[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if len(scraped) != int(numResults) {
		t.Fatalf("scrape has %v, want one series per result", scraped)
	}
	for label, want := range map[string]float64{"hit": 8000, "as_error": 8, "miss": 0} {
		if got := scraped[label]; got != want {
			t.Errorf("%s = %v, want %v", label, got, want)
		}
	}
}
