package promtest

import "syscall"

// childAttr makes the kernel kill the prometheus server when the test
// binary dies, even by SIGKILL, so that none outlives its test.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
