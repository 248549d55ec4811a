package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// caddyfileName is the operator-ready config at the repository root.
const caddyfileName = "Caddyfile.example"

// locateCaddyfile returns path when it is set, else the first
// Caddyfile.example found in the parent directory, the working directory, or
// the repository root as seen from this source file.
func locateCaddyfile(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("read -config: %w", err)
		}
		return path, nil
	}
	candidates := []string{filepath.Join("..", caddyfileName), caddyfileName}
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", caddyfileName))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			if abs, err := filepath.Abs(c); err == nil {
				return abs, nil
			}
			return c, nil
		}
	}
	return "", fmt.Errorf("find %s: tried %s; pass -config", caddyfileName, strings.Join(candidates, ", "))
}
