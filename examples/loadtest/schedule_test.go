package main

import "testing"

// TestScheduleSurroundsEveryMeasurementWithBaselines checks the property
// the ratios rely on: every scenario other than (a) is measured exactly
// once per round, right between two measurements of (a).
func TestScheduleSurroundsEveryMeasurementWithBaselines(t *testing.T) {
	const rounds, others = 5, 4
	plan := schedule(rounds, others)
	if got, want := len(plan), 1+2*rounds*others; got != want {
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
	for s := 1; s <= others; s++ {
		for r := range rounds {
			if seen[[2]int{s, r}] != 1 {
				t.Errorf("step %d measured %d times in round %d, want 1", s, seen[[2]int{s, r}], r)
			}
		}
	}
	// The order rotates: over the rounds, every scenario comes first once
	// (with rounds ≥ others).
	for r := range rounds {
		if got, want := plan[1+2*others*r].step, 1+r%others; got != want {
			t.Errorf("round %d starts with step %d, want %d", r, got, want)
		}
	}
}
