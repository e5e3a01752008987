package module

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
)

// TestProvisionFailsFastWhenPostgresIsUnreachable checks that a PostgreSQL
// store that cannot be reached fails provisioning (start-up, a reload,
// `caddy validate`) within seconds, naming the host:port and never the
// password. Before the bound, a server that accepts TCP connections but never
// answers stalled provisioning for good, and an unreachable host for the
// operating system's connect timeout (about two minutes).
func TestProvisionFailsFastWhenPostgresIsUnreachable(t *testing.T) {
	const password = "s3cret-pw"
	silent := silentListener(t)
	closed := closedPort(t)
	dsn := func(addr, params string) string {
		return fmt.Sprintf("postgres://gatehouse:%s@%s/gatehouse%s", password, addr, params)
	}
	cases := []struct {
		name, dsn, want string
		within          time.Duration
	}{
		{"a server that accepts connections but never answers", dsn(silent, ""),
			"no answer from " + silent + " within 10s", 15 * time.Second},
		{"a smaller connect_timeout in the DSN wins", dsn(silent, "?connect_timeout=1"),
			"no answer from " + silent + " within 1s", 5 * time.Second},
		{"nothing listens on the port", dsn(closed, "?sslmode=disable"),
			"connecting to " + closed, 15 * time.Second},
	}
	for _, tc := range cases {
		// Not parallel: caddy.Validate shares Caddy's global state (the
		// race detector sees concurrent calls race inside Caddy).
		t.Run(tc.name, func(t *testing.T) {
			caddyfile := fmt.Sprintf("{\n\tgatehouse {\n\t\tstore postgres %q\n\t\tdomain {\n\t\t\tissuer https://auth.example.com\n\t\t}\n\t}\n}\n", tc.dsn)
			cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			start := time.Now()
			err = caddy.Validate(mustConfig(t, cfg))
			took := time.Since(start)
			if err == nil {
				t.Fatal("provisioning succeeded against an unreachable database")
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if took > tc.within {
				t.Errorf("provisioning took %v, want at most %v", took, tc.within)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// TestPostgresStoreOpensAReachableDatabase checks that the reachability check
// lets a real database through, with a pool_* parameter in the DSN (which
// only the pool understands) and a schema of its own.
func TestPostgresStoreOpensAReachableDatabase(t *testing.T) {
	dsn, schema := pgtest.Schema(t, "gatehouse_reach_")
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(dsn, "postgres") {
		t.Fatalf("%s must be a postgres:// URL for this test", pgtest.DSNEnv)
	}
	q := u.Query()
	if q.Get("search_path") != schema {
		t.Fatalf("the schema's DSN does not name it")
	}
	q.Set("pool_max_conns", "2")
	u.RawQuery = q.Encode()
	ctx := context.Background()

	s := &PostgresStore{DSN: u.String()}
	if err := s.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	st, err := s.OpenStore(ctx)
	if err != nil {
		t.Fatalf("opening a reachable database: %v", err)
	}
	defer st.Close()
	if err := st.Revoke(ctx, "reach-check", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("the opened store does not work: %v", err)
	}
}

// silentListener accepts TCP connections on a loopback port and never writes
// to them; it returns the address.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
