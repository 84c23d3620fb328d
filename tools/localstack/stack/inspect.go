package stack

// Accessors for measuring the processes of a running stack (the benchmark
// suite, tools/cmd/bench, reads their CPU time from /proc and starts
// copies of them to time a cold start).

// Pid returns the OS process id of the named process while it runs, or 0.
func (s *Stack) Pid(name string) int {
	p, ok := s.procs[name]
	if !ok {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Command returns the built binary, the environment ("K=V") and the
// readiness path the named process runs with, so that a copy of it can be
// started (on another PORT); ok is false for an unknown name.
func (s *Stack) Command(name string) (bin string, env []string, ready string, ok bool) {
	p, ok := s.procs[name]
	if !ok {
		return "", nil, "", false
	}
	return p.bin, append([]string(nil), p.env...), p.ready, true
}
