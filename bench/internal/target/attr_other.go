//go:build !linux

package target

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere Close (run on
// exit and on SIGINT/SIGTERM) stops the server.
func childAttr() *syscall.SysProcAttr { return nil }
