package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procTimes are the CPU times of one process from /proc/<pid>/stat.
type procTimes struct {
	ppid                         int
	utime, stime, cutime, cstime time.Duration
}

// CPU is the process's own user+system time.
func (p procTimes) CPU() time.Duration { return p.utime + p.stime }

// readProc reads /proc/<pid>/stat ("self" for pid 0).
func readProc(pid int) (procTimes, error) {
	name := "self"
	if pid > 0 {
		name = strconv.Itoa(pid)
	}
	b, err := os.ReadFile(filepath.Join("/proc", name, "stat"))
	if err != nil {
		return procTimes{}, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start behind the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procTimes{}, fmt.Errorf("/proc/%s/stat: no command name", name)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("/proc/%s/stat: %d fields", name, len(f))
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	return procTimes{
		ppid:   int(num(1)),
		utime:  time.Duration(num(11)) * clockTick,
		stime:  time.Duration(num(12)) * clockTick,
		cutime: time.Duration(num(13)) * clockTick,
		cstime: time.Duration(num(14)) * clockTick,
	}, nil
}

// processCPU is the user+system time of pid, 0 when it cannot be read.
func processCPU(pid int) time.Duration {
	t, err := readProc(pid)
	if err != nil {
		return 0
	}
	return t.CPU()
}

// postgresCPU is the CPU time of the PostgreSQL server whose data
// directory is dataDir: the postmaster, its live children (backends,
// background workers) and its children that have exited (cutime+cstime of
// the postmaster, which waits for them). 0 when no such server is found
// (e.g. DATABASE_URL points at a server elsewhere).
func postgresCPU(dataDir string) time.Duration {
	if dataDir == "" {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	type proc struct {
		pid int
		t   procTimes
	}
	var all []proc
	master := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !bytes.HasPrefix(comm, []byte("postgres")) {
			continue
		}
		t, err := readProc(pid)
		if err != nil {
			continue
		}
		all = append(all, proc{pid, t})
		if master == 0 {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if bytes.Contains(cmd, []byte(dataDir)) {
				master = pid
			}
		}
	}
	if master == 0 {
		return 0
	}
	var sum time.Duration
	for _, p := range all {
		switch {
		case p.pid == master:
			sum += p.t.CPU() + p.t.cutime + p.t.cstime
		case p.t.ppid == master:
			sum += p.t.CPU()
		}
	}
	return sum
}
