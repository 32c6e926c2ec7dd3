//go:build !linux

package promtest

import "syscall"

// childAttr is nil where there is no parent-death signal: the test's
// cleanup is what stops the server.
func childAttr() *syscall.SysProcAttr { return nil }
