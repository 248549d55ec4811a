//go:build !unix

package hydra

import "os/exec"

func setProcAttr(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

func lockFile(string) (func(), error) { return func() {}, nil }
