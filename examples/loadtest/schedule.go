package main

// measurement is one entry of a run's plan: scenario steps[step] in round
// round. Step 0 is the baseline (a).
type measurement struct{ step, round int }

// schedule plans rounds of the scenarios 1..others so that each one is
// measured right between two measurements of (a), step 0:
//
//	a X a Y a Z a | X' a Y' a Z' a … (one (a) ends a round and starts the next)
//
// The machine's speed drifts by tens of percent over seconds (other
// work on the host); a ratio to the mean of the two neighbouring (a)
// measurements cancels that drift where it is close to linear, which a
// ratio to one (a) measured several seconds away does not. The order of
// the others rotates each round, so that none always follows the same one.
func schedule(rounds, others int) []measurement {
	plan := []measurement{{0, 0}}
	for r := range rounds {
		for k := range others {
			plan = append(plan, measurement{1 + (k+r)%others, r}, measurement{0, r})
		}
	}
	return plan
}
