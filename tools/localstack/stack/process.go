package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one program of the stack, run as its own OS process (in its own
// process group) on a fixed localhost port, restartable.
type process struct {
	name  string
	bin   string
	args  []string
	port  int
	env   []string
	ready string // path polled for readiness
	log   io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run exits
	err  error         // exit error of the last run
}

func (p *process) url() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// waitReady polls GET p.ready until the program answers with a status other
// than 503 (a lazy function still starting), or fails: the process exited,
// it answered 500 (a configuration error: the body says what is missing),
// or ctx ended.
func (p *process) waitReady(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	client := &http.Client{Timeout: 5 * time.Second}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url()+p.ready, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusServiceUnavailable:
				last = fmt.Sprintf("HTTP 503: %s", bytes.TrimSpace(body))
			case http.StatusInternalServerError:
				return fmt.Errorf("%s cannot start: %s", p.name, bytes.TrimSpace(body))
			default:
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-done:
			p.mu.Lock()
			err := p.err
			p.mu.Unlock()
			return fmt.Errorf("%s exited before it was ready: %v", p.name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %s)", p.name, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process to exit. It is a no-op when nothing runs.
func (p *process) stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	pgid := cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	return nil
}

// prefixWriter writes every complete, non-blank line it receives to out as
// "name | line". Writers sharing mu never interleave within a line.
type prefixWriter struct {
	prefix string
	mu     *sync.Mutex
	out    io.Writer
	buf    []byte
	own    sync.Mutex
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.own.Lock()
	defer w.own.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := w.buf[:i+1]
		if len(bytes.TrimSpace(line)) == 0 {
			w.buf = w.buf[i+1:]
			continue
		}
		w.mu.Lock()
		_, err := io.WriteString(w.out, w.prefix+string(line))
		w.mu.Unlock()
		w.buf = w.buf[i+1:]
		if err != nil {
			return len(b), nil // a broken log sink must not stop the program
		}
	}
	return len(b), nil
}

func newPrefixWriter(name string, width int, mu *sync.Mutex, out io.Writer) *prefixWriter {
	return &prefixWriter{prefix: fmt.Sprintf("%-*s | ", width, name), mu: mu, out: out}
}

// envList merges base ("K=V" entries) with overrides, overrides winning,
// sorted for stable output.
func envList(base []string, over map[string]string) []string {
	m := map[string]string{}
	var keys []string
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] = v
	}
	for k, v := range over {
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] = v
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}
