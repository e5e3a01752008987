package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
)

// Tests that need several Caddy processes (instances of one deployment on
// one database) run the binary cmd/caddy builds, each in its own process.

// postgresSchema returns the DSN of a fresh schema of the test database,
// dropped when t ends (after every process using it was stopped, since
// cleanups run last-registered first); see internal/pgtest.
func postgresSchema(t testing.TB) string {
	t.Helper()
	dsn, _ := pgtest.Schema(t, "gatehouse_it_")
	return dsn
}

var (
	caddyBinOnce sync.Once
	caddyBinPath string
	caddyBinErr  error
	// caddyBinDir holds the binary; TestMain removes it when the run ends.
	caddyBinDir string
)

// caddyBinary builds ./cmd/caddy once per test run and returns its path.
func caddyBinary(t *testing.T) string {
	t.Helper()
	caddyBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-caddy-")
		if err != nil {
			caddyBinErr = err
			return
		}
		caddyBinDir = dir
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		bin := filepath.Join(dir, "caddy")
		cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/caddy")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			caddyBinErr = &buildError{err: err, out: string(out)}
			return
		}
		caddyBinPath = bin
	})
	if caddyBinErr != nil {
		t.Fatalf("building ./cmd/caddy: %v", caddyBinErr)
	}
	return caddyBinPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// caddyProcess is one Caddy process started from a Caddyfile.
type caddyProcess struct {
	cmd *exec.Cmd
	log *lockedBuffer
}

// startCaddyProcess runs the built Caddy with caddyfile (the test globals
// of startCaddy added) and env, until t ends. Its output is kept and
// printed if t fails.
func startCaddyProcess(t *testing.T, name, caddyfile string, env ...string) *caddyProcess {
	t.Helper()
	return startCaddyProcessAdmin(t, name, caddyfile, "", env...)
}

// startCaddyProcessAdmin is startCaddyProcess with Caddy's admin endpoint
// on adminAddr (host:port) instead of off; "" leaves it off.
func startCaddyProcessAdmin(t *testing.T, name, caddyfile, adminAddr string, env ...string) *caddyProcess {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	src := withTestGlobals(caddyfile, "storage file_system "+filepath.Join(dir, "caddy")+"\n")
	if adminAddr != "" {
		src = strings.Replace(src, "admin off\n", "admin "+adminAddr+"\n", 1)
	}
	cfgPath := writeFile(t, dir, "Caddyfile", src)
	cmd := exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir)
	cmd.Env = append(cmd.Env, env...)
	p := &caddyProcess{cmd: cmd, log: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The process dies with the test binary even if cleanups never run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("output of %s (token audit entries left out):\n%s", name, tail(withoutTokenAudit(p.log.String()), 6000))
		}
	})
	return p
}

// exited waits up to d for the process to end by itself and returns its
// exit status; false (and the process killed) when it still ran.
func (p *caddyProcess) exited(d time.Duration) (code int, ok bool) {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-done
		return 0, false
	}
}

// withoutTokenAudit drops the audit entries of issued tokens, which would
// bury everything else in the output of a busy test.
func withoutTokenAudit(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.Contains(line, `"event":"token"`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
