package stack

import "syscall"

// sysProcAttr puts the child in its own process group (so the whole group
// can be signalled) and has the kernel kill it if the stack dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
