package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
)

// startPerf runs `perf record` on every function process for d, writing
// <dir>/<name>.perf.data (Config.PerfDir, the -perf flag): the CPU
// profiles docs/benchmarks.md cites. It returns a func that waits for the
// recorders. Without perf on PATH it logs and does nothing.
func (r *runner) startPerf(ctx context.Context, d time.Duration) func() {
	if r.cfg.PerfDir == "" {
		return func() {}
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		r.logf("-perf: no perf on PATH: %v", err)
		return func() {}
	}
	if err := os.MkdirAll(r.cfg.PerfDir, 0o755); err != nil {
		r.logf("-perf: %v", err)
		return func() {}
	}
	var cmds []*exec.Cmd
	pids := map[string]int{}
	for _, name := range r.functionNames() {
		pids[name] = r.st.Pid(name)
	}
	for name, pid := range pids {
		if pid == 0 {
			continue
		}
		out := filepath.Join(r.cfg.PerfDir, name+".perf.data")
		cmd := exec.CommandContext(ctx, perf, "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out, "--", "sleep", fmt.Sprint(d.Seconds()))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			r.logf("-perf %s: %v", name, err)
			continue
		}
		cmds = append(cmds, cmd)
	}
	// This process (dispatcher, pstest, load generator) profiles itself.
	var prof *os.File
	if f, err := os.Create(filepath.Join(r.cfg.PerfDir, "bench.pprof")); err == nil {
		if err := pprof.StartCPUProfile(f); err == nil {
			prof = f
		} else {
			f.Close()
		}
	}
	return func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	}
}
