package main

import (
	"math"
	"testing"
	"time"
)

// TestScheduleSurroundsEveryMeasurementWithBaselines checks the property
// the ratios rely on: every scenario other than (a) is measured exactly
// once per round, right between two measurements of (a), also across
// two joined plans (the hits, then the misses, as run does).
func TestScheduleSurroundsEveryMeasurementWithBaselines(t *testing.T) {
	const rounds, missRounds = 5, 2
	hits := []int{1, 2, 4}
	plan := schedule(rounds, hits...)
	plan = append(plan, schedule(missRounds, 3)[1:]...)
	if got, want := len(plan), 1+2*rounds*len(hits)+2*missRounds; got != want {
		t.Fatalf("plan has %d measurements, want %d", got, want)
	}
	seen := map[[2]int]int{}
	for i, m := range plan {
		if m.step == 0 {
			continue
		}
		if i == 0 || i == len(plan)-1 || plan[i-1].step != 0 || plan[i+1].step != 0 {
			t.Fatalf("measurement %d (step %d) is not between two of (a): %v", i, m.step, plan)
		}
		seen[[2]int{m.step, m.round}]++
	}
	for _, s := range hits {
		for r := range rounds {
			if seen[[2]int{s, r}] != 1 {
				t.Errorf("step %d measured %d times in round %d, want 1", s, seen[[2]int{s, r}], r)
			}
		}
	}
	for r := range missRounds {
		if seen[[2]int{3, r}] != 1 {
			t.Errorf("step 3 measured %d times in miss round %d, want 1", seen[[2]int{3, r}], r)
		}
	}
	// The order rotates: round r starts with hits[r % 3].
	for r := range rounds {
		if got, want := plan[1+2*len(hits)*r].step, hits[r%len(hits)]; got != want {
			t.Errorf("round %d starts with step %d, want %d", r, got, want)
		}
	}
}

// TestPairedCancelsLinearDrift runs the plan on a machine whose speed
// falls steadily by half over the run: the baseline's req/s drifts from
// 10,000 to 5,000 and its p99 from 4 to 8 ms, and a scenario that always
// costs 10 % more answers 0.9 times what (a) would at that moment, with a
// p99 0.1 ms above. Paired
// with the (a)s around it, every round gives exactly 0.9 and +0.1 ms; a
// ratio to a single (a) elsewhere in the round would not.
func TestPairedCancelsLinearDrift(t *testing.T) {
	const rounds, others = 6, 4
	plan := schedule(rounds, 1, 2, 3, 4)
	rps := make([]float64, len(plan))
	p99 := make([]time.Duration, len(plan))
	for i, m := range plan {
		frac := float64(i) / float64(len(plan)-1)
		rps[i] = 10_000 - 5_000*frac
		p99[i] = 4*time.Millisecond + time.Duration(frac*float64(4*time.Millisecond))
		if m.step != 0 {
			rps[i] *= 0.9
			p99[i] += 100 * time.Microsecond
		}
	}
	ratios, deltas := paired(plan, rps, p99)
	for step := 1; step <= others; step++ {
		if len(ratios[step]) != rounds || len(deltas[step]) != rounds {
			t.Fatalf("step %d: %d ratios and %d p99 deltas, want %d each", step, len(ratios[step]), len(deltas[step]), rounds)
		}
		for r, got := range ratios[step] {
			if math.Abs(got-0.9) > 1e-9 {
				t.Errorf("step %d round %d: ratio %.6f, want 0.9", step, r, got)
			}
		}
		for r, got := range deltas[step] {
			if d := got - 100*time.Microsecond; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("step %d round %d: p99 delta %v, want 100µs", step, r, got)
			}
		}
	}
}

// TestPairedSkipsDeadBaselines checks that a measurement between two (a)s
// that answered nothing gives no ratio rather than +Inf.
func TestPairedSkipsDeadBaselines(t *testing.T) {
	plan := schedule(1, 1) // a X a
	ratios, _ := paired(plan, []float64{0, 5, 0}, make([]time.Duration, 3))
	if len(ratios[1]) != 0 {
		t.Errorf("ratios %v, want none", ratios[1])
	}
}
