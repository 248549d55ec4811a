package main

import "time"

// measurement is one entry of a run's plan: scenario steps[step] in round
// round. Step 0 is the baseline (a).
type measurement struct{ step, round int }

// schedule plans rounds of the given steps (indexes of scenarios other
// than the baseline) so that each one is measured right between two
// measurements of (a), step 0:
//
//	a X a Y a Z a | Y a Z a X a | … (one (a) ends a round and starts the next)
//
// The machine's speed drifts by tens of percent over seconds (other
// work on the host); a ratio to the mean of the two neighbouring (a)
// measurements cancels that drift where it is close to linear, which a
// ratio to one (a) measured several seconds away does not. The order of
// the steps rotates each round, so that none always follows the same one.
// Two plans join into one with append(p, q[1:]...): q's first (a) is p's
// last.
func schedule(rounds int, steps ...int) []measurement {
	plan := []measurement{{0, 0}}
	for r := range rounds {
		for k := range steps {
			plan = append(plan, measurement{steps[(k+r)%len(steps)], r}, measurement{0, r})
		}
	}
	return plan
}

// paired compares each measurement of plan other than (a) with the two (a)
// around it: its req/s divided by their mean req/s, and its p99 minus their
// mean p99. Results are per step, in round order. A measurement whose two
// (a)s both answered nothing gives no result (their failed requests are
// reported elsewhere).
func paired(plan []measurement, rps []float64, p99 []time.Duration) (ratios map[int][]float64, p99Deltas map[int][]time.Duration) {
	ratios, p99Deltas = map[int][]float64{}, map[int][]time.Duration{}
	for i, m := range plan {
		if m.step == 0 || i == 0 || i == len(plan)-1 {
			continue
		}
		if base := (rps[i-1] + rps[i+1]) / 2; base > 0 {
			ratios[m.step] = append(ratios[m.step], rps[i]/base)
			p99Deltas[m.step] = append(p99Deltas[m.step], p99[i]-(p99[i-1]+p99[i+1])/2)
		}
	}
	return ratios, p99Deltas
}
