package redisproc

import "syscall"

// childAttr makes the kernel kill the spawned redis-server when this
// process dies, even by SIGKILL, so no server outlives a test or benchmark.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
