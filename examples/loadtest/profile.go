package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// startCPUProfile asks the gateway's admin endpoint for a CPU profile as
// long as one measurement, while the measurement runs, and returns a
// function that waits for it and writes it to cfg.CPUProfileDir/name.pprof.
// Without -cpuprofile it does nothing.
func startCPUProfile(cfg config, adminAddr, name string) (wait func() error) {
	if cfg.CPUProfileDir == "" {
		return func() error { return nil }
	}
	// The profile endpoint takes whole seconds; main refuses -cpuprofile
	// with a -d that is not a whole number of them.
	secs := max(1, int(cfg.Duration/time.Second))
	done := make(chan error, 1)
	go func() {
		done <- fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", adminAddr, secs),
			filepath.Join(cfg.CPUProfileDir, name+".pprof"))
	}()
	return func() error { return <-done }
}

func fetchProfile(url, path string) error {
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("cpu profile: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("cpu profile: %s: %s", resp.Status, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %v", err)
	}
	return f.Close()
}

// profileName turns a scenario name such as "(b')" into a file name part
// such as "b1".
func profileName(scenario string) string {
	return strings.NewReplacer("(", "", ")", "", "'", "1").Replace(scenario)
}
