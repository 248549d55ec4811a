package main

import (
	"strings"
	"testing"
)

// TestQuickRun runs the harness in -quick mode with Caddy in-process (no
// second build of Caddy) and checks only what must hold whatever the
// machine: the stampede makes exactly one AS call, misses make one AS call
// per distinct token, hits make none, and no request fails. Timings and
// ratios are printed, never asserted.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Caddy and sends tens of thousands of requests")
	}
	cfg := defaultConfig().quick()
	cfg.Caddy = "inprocess"
	var out strings.Builder
	rep, err := run(cfg, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.structuralFailures() {
		t.Error(f)
	}
	if rep.d.asCalls != 1 {
		t.Errorf("stampede: %d AS calls, want 1", rep.d.asCalls)
	}
	if rep.c.tokens == 0 || rep.c.asCalls != rep.c.tokens {
		t.Errorf("misses: %d AS calls for %d tokens, want equal and > 0", rep.c.asCalls, rep.c.tokens)
	}
}
