package integration

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/pgtest"
)

// postgresDSN is the test database (the one the store suite uses), which
// must be a postgres:// URL; see internal/pgtest.
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatal("GATEHOUSE_TEST_POSTGRES_DSN must be a postgres:// URL for this test")
	}
	return dsn
}

// tcpProxy forwards loopback connections to a target, and can be cut: a cut
// closes every open connection and refuses new ones until it is restored —
// a database that went away, as seen from the application.
type tcpProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

func startTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *tcpProxy) handle(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		p.drop(c)
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	// Either side ending (or a cut) ends both.
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		p.drop(dst)
		p.drop(src)
	}
	go pipe(up, c)
	pipe(c, up)
}

func (p *tcpProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Cut closes every connection and refuses new ones.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// viaProxy returns dsn with its host and port replaced by addr.
func viaProxy(t testing.TB, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// postgresTarget is the host:port of dsn.
func postgresTarget(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}
