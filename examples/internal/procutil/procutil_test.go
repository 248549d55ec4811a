package procutil

import (
	"path/filepath"
	"testing"
)

func TestFreeLoopbackPortsAreDistinct(t *testing.T) {
	ports, err := FreeLoopbackPorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 3 distinct positive ports", ports)
		}
		seen[p] = true
	}
}

func TestLockFileCanBeRetaken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	for i := 0; i < 2; i++ {
		unlock, err := LockFile(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
}
