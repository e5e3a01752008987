package integration

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/gatehouse-auth/gatehouse/module"
)

// caddyMu serialises tests: one Caddy process-wide config at a time.
var caddyMu sync.Mutex

// handedOut remembers every port freePort returned: the OS may offer a
// just-closed port again, and two servers of one test must never share one.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePort returns a port that was free a moment ago (on every interface:
// Caddy binds ":port") and that no earlier call returned. It is picked below
// the kernel's ephemeral range when it can be: a port from that range, free
// when tested, can be taken a moment later as the local port of any outgoing
// connection or ":0" listener (an "address already in use" flake seen under
// load); below it only explicit binds compete.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	if lo := ephemeralLow(); lo > 21000 {
		for range 1000 {
			port := 20000 + mrand.IntN(lo-20000)
			if handedOut[port] || !bindable(port) {
				continue
			}
			handedOut[port] = true
			return port
		}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] && bindable(port) {
			handedOut[port] = true
			return port
		}
	}
	t.Fatal("no fresh port found")
	return 0
}

// bindable reports whether port can be listened on, on every interface.
func bindable(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow is the lowest port the kernel hands out on its own (Linux),
// or 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// startCaddy adapts the Caddyfile and runs it in this process until the
// test ends. The global options block gets admin off, no automatic HTTPS
// and storage in a temporary directory prepended.
func startCaddy(t testing.TB, caddyfile string) {
	t.Helper()
	caddyMu.Lock()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	src := withTestGlobals(caddyfile, fmt.Sprintf("storage file_system %s\n", filepath.Join(dir, "caddy")))
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src+"\n"), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		caddyMu.Unlock()
		t.Fatalf("adapting the Caddyfile: %v\n%s", err, src)
	}
	for _, w := range warnings {
		t.Logf("caddyfile warning: %s", w.String())
	}
	if err := caddy.Load(cfg, true); err != nil {
		caddyMu.Unlock()
		t.Fatalf("loading Caddy: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping Caddy: %v", err)
		}
		caddyMu.Unlock()
	})
}

// withTestGlobals adds the global options every test server needs: no
// admin endpoint, no automatic HTTPS, no persisted config.
func withTestGlobals(caddyfile, extra string) string {
	globals := "admin off\n\tauto_https off\n\tpersist_config off\n\t" + extra
	src := strings.TrimSpace(caddyfile)
	// Skip leading comment lines to find a global options block.
	rest := src
	for strings.HasPrefix(rest, "#") {
		_, rest, _ = strings.Cut(rest, "\n")
		rest = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(rest, "{") {
		return "{\n\t" + globals + rest[1:] + "\n"
	}
	return "{\n\t" + globals + "}\n\n" + src + "\n"
}

// reloadCaddy loads a new Caddyfile into the running Caddy (a config
// reload) without stopping it first.
func reloadCaddy(t testing.TB, caddyfile string) {
	t.Helper()
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(withTestGlobals(caddyfile, "")), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	// The old servers close their idle keep-alive connections; a client
	// that reuses one in that instant reads EOF. Start from fresh ones.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see every hop.
func browser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// waitHTTP waits until url answers (any status).
func waitHTTP(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameOrigin marks a request as a browser does for a link or form on the
// site itself (the gate's logout acts at once only on such requests).
var sameOrigin = map[string]string{"Sec-Fetch-Site": "same-origin"}
