package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// coldStart starts bin with env (PORT replaced by a free port) and returns
// the time from exec to the first 2xx answer to the request newReq builds
// for the process's base URL, polled every millisecond. The process is
// killed before it returns.
//
// listening is when the port first accepted a connection: the process's
// own start (exec, runtime and package initialisation, the framework's
// listener); the rest is the first request, which builds the function's
// handler (connects, checks migrations) and answers it.
func coldStart(ctx context.Context, bin string, env []string, newReq func(ctx context.Context, base string) (*http.Request, error), timeout time.Duration) (total, listening time.Duration, err error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PORT=") {
			out = append(out, kv)
		}
	}
	out = append(out, "PORT="+strconv.Itoa(port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.Command(bin)
	cmd.Env = out
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for listening == 0 {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			listening = time.Since(start)
			c.Close()
			break
		}
		select {
		case err := <-exited:
			return 0, 0, fmt.Errorf("%s exited before it listened: %v", filepath.Base(bin), err)
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("%s: not listening within %s", filepath.Base(bin), timeout)
		case <-time.After(500 * time.Microsecond):
		}
	}
	last := ""
	for {
		req, err := newReq(ctx, base)
		if err != nil {
			return 0, 0, err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return time.Since(start), listening, nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case err := <-exited:
			return 0, 0, fmt.Errorf("%s exited before its first 2xx: %v (last: %s)", filepath.Base(bin), err, last)
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("%s: no 2xx within %s (last: %s)", filepath.Base(bin), timeout, last)
		case <-time.After(time.Millisecond):
		}
	}
}

// buildBare builds the bare functions-framework function
// (testdata/bare) the way the stack builds the functions: go build with
// GOWORK=off in its module.
func buildBare(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "bare")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd")
	cmd.Dir = filepath.Join(root, "tools", "bench", "testdata", "bare")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the bare function: %w\n%s", err, b)
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func medianDur(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
