//go:build !linux

package redisproc

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere the owner's
// Stop or Kill ends the server.
func childAttr() *syscall.SysProcAttr { return nil }
