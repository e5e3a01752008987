package seal

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, SecretSize) }

func mustKeys(t testing.TB, secrets ...[]byte) *Keys {
	t.Helper()
	k, err := NewKeys(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealer(t testing.TB, k *Keys, cfg Config) *Sealer {
	t.Helper()
	s, err := NewSealer(k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// browser is a cookie jar bound to one origin.
type browser struct {
	jar *cookiejar.Jar
	u   *url.URL
}

func newBrowser(t testing.TB, origin string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{jar: jar, u: u}
}

func (b *browser) receive(rec *httptest.ResponseRecorder) {
	b.jar.SetCookies(b.u, rec.Result().Cookies())
}

func (b *browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, b.u.String(), nil)
	for _, c := range b.jar.Cookies(b.u) {
		r.AddCookie(c)
	}
	return r
}

func (b *browser) names() []string {
	var out []string
	for _, c := range b.jar.Cookies(b.u) {
		out = append(out, c.Name)
	}
	return out
}

func sampleSession() Session {
	return Session{
		Subject:       "user-123",
		Issuer:        "https://auth.example.com",
		Claims:        map[string]any{"email": "a@example.com", "groups": []any{"admins", "dev"}, "n": 3.0},
		AccessToken:   "at." + strings.Repeat("a", 100),
		RefreshToken:  "rt-xyz",
		IDToken:       "id." + strings.Repeat("i", 100),
		Expiry:        t0.Add(5 * time.Minute),
		SessionExpiry: t0.Add(8 * time.Hour),
	}
}

// sealTo seals v into a fresh recorder and returns it.
func sealTo(t testing.TB, s *Sealer, v any, exp time.Time) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := s.Seal(rec, v, exp); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestSealedSessionRoundTrips(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: true, Now: clk.Now})
	b := newBrowser(t, "https://app.example.com/")
	in := sampleSession()
	b.receive(sealTo(t, s, in, in.SessionExpiry))

	var out Session
	if err := s.Open(b.request(), &out); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !out.Expiry.Equal(in.Expiry) || !out.SessionExpiry.Equal(in.SessionExpiry) {
		t.Fatalf("times differ: %v %v", out.Expiry, out.SessionExpiry)
	}
	out.Expiry, out.SessionExpiry = in.Expiry, in.SessionExpiry
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip mismatch:\n in=%#v\nout=%#v", in, out)
	}
}

func TestOpenRejects(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now})
	rec := sealTo(t, s, sampleSession(), t0.Add(time.Hour))
	good := rec.Result().Cookies()[0].Value

	tamper := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		cookie string // raw Cookie header; "" for none
		want   error
	}{
		{"request without cookie has no session", "", ErrNoSession},
		{"unrelated cookies are no session", "other=1; gatehouse.1=abc", ErrNoSession},
		{"one tampered byte in the middle is invalid", "gatehouse=" + tamper(good, len(good)/2), ErrInvalid},
		{"one tampered byte at the end is invalid", "gatehouse=" + tamper(good, len(good)-2), ErrInvalid},
		{"truncated value is invalid", "gatehouse=" + good[:len(good)-10], ErrInvalid},
		{"value without chunk count is invalid", "gatehouse=" + good[2:], ErrInvalid},
		{"chunk count above the bound is invalid", "gatehouse=9" + good[1:], ErrInvalid},
		{"zero chunk count is invalid", "gatehouse=0" + good[1:], ErrInvalid},
		{"claimed extra chunk that is absent is invalid", "gatehouse=2" + good[1:], ErrInvalid},
		{"garbage is invalid", "gatehouse=1.!!notbase64!!", ErrInvalid},
		{"empty value is invalid", "gatehouse=", ErrInvalid},
		{"oversized first cookie is invalid", "gatehouse=1." + strings.Repeat("A", ChunkSize), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			var out Session
			err := s.Open(r, &out)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	// Sanity: the untampered value opens, so the failures above are due to the change.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "gatehouse="+good)
	var out Session
	if err := s.Open(r, &out); err != nil {
		t.Fatalf("untampered value: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Duration // from t0 at seal time
		advance time.Duration // clock advance before Open
		want    error
	}{
		{"session before its expiry opens", time.Hour, 59 * time.Minute, nil},
		{"session at its expiry is expired", time.Hour, time.Hour, ErrExpired},
		{"session after its expiry is expired", time.Hour, 2 * time.Hour, ErrExpired},
		{"expiry beyond max age is capped to max age", 100 * time.Hour, 25 * time.Hour, ErrExpired},
		{"zero expiry means max age", 0, 23 * time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t0}
			s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now, MaxAge: 24 * time.Hour})
			b := newBrowser(t, "http://localhost/")
			exp := time.Time{}
			if tt.expires != 0 {
				exp = t0.Add(tt.expires)
			}
			rec := sealTo(t, s, sampleSession(), exp)
			c := rec.Result().Cookies()[0]
			if c.MaxAge <= 0 || time.Duration(c.MaxAge)*time.Second > 24*time.Hour {
				t.Fatalf("cookie Max-Age %d not within (0, 24h]", c.MaxAge)
			}
			b.receive(rec)
			clk.now = t0.Add(tt.advance)
			var out Session
			if err := s.Open(b.request(), &out); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSealRejectsPastExpiry(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now})
	rec := httptest.NewRecorder()
	if err := s.Seal(rec, sampleSession(), t0.Add(-time.Second)); err == nil {
		t.Fatal("Seal with past expiry succeeded")
	}
	if len(rec.Header().Values("Set-Cookie")) != 0 {
		t.Fatal("failed Seal wrote cookies")
	}
}

func TestKeyRotation(t *testing.T) {
	clk := &clock{t0}
	oldKeys := mustKeys(t, secret(1))
	rotated := mustKeys(t, secret(2), secret(1))
	newOnly := mustKeys(t, secret(2))
	oldS := mustSealer(t, oldKeys, Config{Now: clk.Now})
	rotS := mustSealer(t, rotated, Config{Now: clk.Now})
	newS := mustSealer(t, newOnly, Config{Now: clk.Now})

	open := func(s *Sealer, rec *httptest.ResponseRecorder) error {
		b := newBrowser(t, "http://localhost/")
		b.receive(rec)
		var out Session
		return s.Open(b.request(), &out)
	}
	sealedOld := sealTo(t, oldS, sampleSession(), time.Time{})
	sealedRot := sealTo(t, rotS, sampleSession(), time.Time{})

	t.Run("cookie sealed with the old key opens after rotation", func(t *testing.T) {
		if err := open(rotS, sealedOld); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("after rotation the new key seals", func(t *testing.T) {
		if err := open(newS, sealedRot); err != nil {
			t.Fatalf("new-key-only sealer cannot open: %v", err)
		}
		if err := open(oldS, sealedRot); !errors.Is(err, ErrInvalid) {
			t.Fatalf("old-key-only sealer opened a new cookie: %v", err)
		}
	})
	t.Run("cookie sealed with a retired key is invalid", func(t *testing.T) {
		if err := open(newS, sealedOld); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open = %v, want ErrInvalid", err)
		}
	})
}

func TestCookiesAreBoundToPurposeAndName(t *testing.T) {
	k := mustKeys(t, secret(1))
	clk := &clock{t0}
	sess := mustSealer(t, k, Config{Now: clk.Now})
	login := mustSealer(t, k, Config{Now: clk.Now, Purpose: "login"})
	renamed := mustSealer(t, k, Config{Now: clk.Now, Name: "other"})
	otherAudience := mustSealer(t, k.Bind(`gate of "tenant2"`), Config{Now: clk.Now})
	v := sealTo(t, sess, sampleSession(), time.Time{}).Result().Cookies()[0].Value

	for _, tc := range []struct {
		name   string
		s      *Sealer
		cookie string
	}{
		{"session cookie does not open as a login cookie", login, "gatehouse=" + v},
		{"cookie value moved to another name is invalid", renamed, "other=" + v},
		{"cookie of one audience does not open under another of the same name", otherAudience, "gatehouse=" + v},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Cookie", tc.cookie)
			var out Session
			if err := tc.s.Open(r, &out); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open = %v, want ErrInvalid", err)
			}
		})
	}
}

// bigSession returns a session whose sealed form needs about n chunks.
func bigSession(n int) Session {
	s := sampleSession()
	// Sealing grows the payload by about 16/9 (two base64 passes).
	size := (n-1)*ChunkSize*9/16 + 500
	s.IDToken = strings.Repeat("x", size)
	return s
}

func TestLargeSessionSplitsIntoChunks(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: true, Now: clk.Now})
	in := bigSession(3)
	rec := sealTo(t, s, in, time.Time{})

	var set []*http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge > 0 {
			set = append(set, c)
		}
	}
	if len(set) != 3 {
		t.Fatalf("sealed into %d cookies, want 3", len(set))
	}
	for i, want := range []string{"__Host-gatehouse", "__Host-gatehouse.1", "__Host-gatehouse.2"} {
		if set[i].Name != want {
			t.Errorf("cookie %d named %q, want %q", i, set[i].Name, want)
		}
		if len(set[i].Value) > ChunkSize {
			t.Errorf("cookie %d value is %d bytes, over %d", i, len(set[i].Value), ChunkSize)
		}
	}
	for _, line := range rec.Header().Values("Set-Cookie") {
		if len(line) >= 4096 {
			t.Errorf("Set-Cookie line is %d bytes, browsers cap at 4096", len(line))
		}
	}

	b := newBrowser(t, "https://app.example.com/")
	b.receive(rec)
	var out Session
	if err := s.Open(b.request(), &out); err != nil {
		t.Fatalf("reassembly: %v", err)
	}
	if out.IDToken != in.IDToken || out.Subject != in.Subject {
		t.Fatal("reassembled session differs")
	}

	t.Run("missing middle chunk is invalid", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(set[0])
		r.AddCookie(set[2])
		if err := s.Open(r, &out); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open = %v, want ErrInvalid", err)
		}
	})
	t.Run("missing last chunk is invalid", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(set[0])
		r.AddCookie(set[1])
		if err := s.Open(r, &out); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open = %v, want ErrInvalid", err)
		}
	})
	t.Run("swapped chunks are invalid", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(set[0])
		r.AddCookie(&http.Cookie{Name: set[1].Name, Value: set[2].Value})
		r.AddCookie(&http.Cookie{Name: set[2].Name, Value: set[1].Value})
		if err := s.Open(r, &out); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open = %v, want ErrInvalid", err)
		}
	})
	t.Run("oversized chunk is invalid", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(set[0])
		r.AddCookie(&http.Cookie{Name: set[1].Name, Value: set[1].Value + strings.Repeat("A", ChunkSize)})
		r.AddCookie(set[2])
		if err := s.Open(r, &out); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open = %v, want ErrInvalid", err)
		}
	})
}

func TestSmallerSessionClearsStaleChunks(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now})
	b := newBrowser(t, "http://localhost/")
	b.receive(sealTo(t, s, bigSession(3), time.Time{}))
	if got := len(b.names()); got != 3 {
		t.Fatalf("browser holds %d cookies after a 3-chunk seal", got)
	}
	small := sampleSession()
	b.receive(sealTo(t, s, small, time.Time{}))
	if got := b.names(); !reflect.DeepEqual(got, []string{"gatehouse"}) {
		t.Fatalf("browser holds %v after a 1-chunk seal, want only gatehouse", got)
	}
	var out Session
	if err := s.Open(b.request(), &out); err != nil || out.IDToken != small.IDToken {
		t.Fatalf("Open after shrink: %v", err)
	}
}

func TestStaleExtraChunksDoNotBreakASession(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(sealTo(t, s, sampleSession(), time.Time{}).Result().Cookies()[0])
	r.AddCookie(&http.Cookie{Name: "gatehouse.1", Value: "leftover"})
	var out Session
	if err := s.Open(r, &out); err != nil {
		t.Fatalf("Open with a stale chunk = %v", err)
	}
}

func TestSealTooLarge(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now, MaxChunks: 2})
	rec := httptest.NewRecorder()
	if err := s.Seal(rec, bigSession(3), time.Time{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal = %v, want ErrTooLarge", err)
	}
	if len(rec.Header().Values("Set-Cookie")) != 0 {
		t.Fatal("failed Seal wrote cookies")
	}
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name     string
		secure   bool
		wantName string
		wantSec  bool
	}{
		{"secure cookies use the __Host- prefix", true, "__Host-gatehouse", true},
		{"loopback dev cookies have no prefix and no Secure", false, "gatehouse", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: tt.secure, Now: (&clock{t0}).Now})
			if s.Name() != tt.wantName {
				t.Fatalf("Name() = %q, want %q", s.Name(), tt.wantName)
			}
			rec := sealTo(t, s, sampleSession(), time.Time{})
			for _, line := range rec.Header().Values("Set-Cookie") {
				for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Lax"} {
					if !strings.Contains(line, "; "+attr) {
						t.Errorf("%q lacks %s", line, attr)
					}
				}
				if strings.Contains(strings.ToLower(line), "domain=") {
					t.Errorf("%q sets Domain, which __Host- forbids", line)
				}
				if got := strings.Contains(line, "; Secure"); got != tt.wantSec {
					t.Errorf("%q Secure=%v, want %v", line, got, tt.wantSec)
				}
			}
		})
	}
}

func TestNewSealerRejectsBadConfig(t *testing.T) {
	k := mustKeys(t, secret(1))
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"name with __Host- prefix is rejected", Config{Name: "__Host-x"}},
		{"name with __Secure- prefix is rejected", Config{Name: "__secure-x"}},
		{"name with separator is rejected", Config{Name: "a;b"}},
		{"max age below a second is rejected", Config{MaxAge: time.Millisecond}},
		{"too many chunks are rejected", Config{MaxChunks: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSealer(k, tc.cfg); err == nil {
				t.Fatal("NewSealer accepted bad config")
			}
		})
	}
	if _, err := NewSealer(nil, Config{}); err == nil {
		t.Fatal("NewSealer accepted nil keys")
	}
}

func TestNewKeys(t *testing.T) {
	if _, err := NewKeys(nil); err == nil {
		t.Error("no secrets accepted")
	}
	if _, err := NewKeys([][]byte{secret(1), make([]byte, MinSecretSize-1)}); err == nil {
		t.Error("short secret accepted")
	}
	g, err := GenerateSecret()
	if err != nil || len(g) != SecretSize {
		t.Fatalf("GenerateSecret = %d bytes, %v", len(g), err)
	}
	src := secret(7)
	k := mustKeys(t, src)
	src[0] ^= 0xff // the caller's slice is copied
	if k.secrets[0][0] != 7 {
		t.Error("NewKeys kept the caller's slice")
	}
}

func TestClear(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Secure: true, Now: clk.Now})
	b := newBrowser(t, "https://app.example.com/")
	b.receive(sealTo(t, s, bigSession(2), time.Time{}))
	if len(b.names()) != 2 {
		t.Fatalf("setup: %v", b.names())
	}
	rec := httptest.NewRecorder()
	s.Clear(rec, b.request())
	lines := rec.Header().Values("Set-Cookie")
	if len(lines) != 2 {
		t.Fatalf("Clear sent %d Set-Cookie lines, want 2: %v", len(lines), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, "Max-Age=0") || !strings.Contains(l, "; Secure") || !strings.Contains(l, "Path=/") {
			t.Errorf("deletion %q lacks Max-Age=0 / Secure / Path=/", l)
		}
	}
	b.receive(rec)
	if n := b.names(); len(n) != 0 {
		t.Fatalf("browser still holds %v", n)
	}
	var out Session
	if err := s.Open(b.request(), &out); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Open after Clear = %v", err)
	}
}

func TestSealAfterClearInOneResponseKeepsOnlyTheSeal(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now})
	rec := httptest.NewRecorder()
	http.SetCookie(rec, &http.Cookie{Name: "unrelated", Value: "1"})
	s.Clear(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if err := s.Seal(rec, sampleSession(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	var ours, other int
	for _, c := range rec.Result().Cookies() {
		switch {
		case c.Name == "gatehouse":
			ours++
			if c.MaxAge <= 0 {
				t.Error("the Clear deletion survived the Seal")
			}
		case c.Name == "unrelated":
			other++
		}
	}
	if ours != 1 || other != 1 {
		t.Fatalf("got %d gatehouse and %d unrelated Set-Cookie lines, want 1 and 1", ours, other)
	}
}

func TestSecureFor(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", false},
		{"LOCALHOST", false},
		{"localhost.", false},
		{"localhost:8080", false},
		{"127.0.0.1", false},
		{"127.0.0.1:2015", false},
		{"127.255.3.4", false},
		{"::1", false},
		{"[::1]", false},
		{"[::1]:443", false},
		{"::ffff:127.0.0.1", false},
		{"app.example.com", true},
		{"app.example.com:443", true},
		{"localhost.example.com", true},
		{"evil-localhost", true},
		{"foo.localhost", true},
		{"128.0.0.1", true},
		{"10.0.0.1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"fe80::1%lo", true},
		{"", true},
		{"[::1", true},
	}
	for _, tt := range tests {
		if got := SecureFor(tt.host); got != tt.want {
			t.Errorf("SecureFor(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestKeysBoundToAnAudience: a gate's session keys are bound to its domain,
// issuer and client, so a session sealed for one gate never opens at a gate
// of another domain or client, even under the same secret and cookie name
// (the cross-domain session bug), while gates of one audience share.
func TestKeysBoundToAnAudience(t *testing.T) {
	k := mustKeys(t, secret(1), secret(2))
	clk := &clock{t0}
	a := `issuer="https://auth.example.com" client="webapp"`
	seal := mustSealer(t, k.Bind(a), Config{Now: clk.Now})
	cookie := sealTo(t, seal, sampleSession(), time.Time{}).Result().Cookies()[0]
	open := func(keys *Keys) error {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookie)
		var out Session
		return mustSealer(t, keys, Config{Now: clk.Now}).Open(r, &out)
	}
	if err := open(k.Bind(a)); err != nil {
		t.Fatalf("the same audience (another gate of it): %v", err)
	}
	for name, other := range map[string]string{
		"another domain": `domain="tenant2" issuer="https://auth.example.com" client="webapp"`,
		"another issuer": `issuer="https://other.example.com" client="webapp"`,
		"another client": `issuer="https://auth.example.com" client="admin-console"`,
	} {
		if err := open(k.Bind(other)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Open = %v, want ErrInvalid", name, err)
		}
	}
	if err := open(k); !errors.Is(err, ErrInvalid) {
		t.Errorf("unbound keys: Open = %v, want ErrInvalid", err)
	}
	if k.Bind("") != k {
		t.Error("binding to no audience changed the keys")
	}
}

func TestMAC(t *testing.T) {
	old := mustKeys(t, secret(1))
	k := mustKeys(t, secret(2), secret(1)) // rotated: secret(2) is newest
	mac, err := old.MAC("logout", []byte("sid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !k.VerifyMAC("logout", []byte("sid-1"), mac) {
		t.Fatal("a MAC under an older secret does not verify")
	}
	for name, ok := range map[string]bool{
		"another message":  k.VerifyMAC("logout", []byte("sid-2"), mac),
		"another purpose":  k.VerifyMAC("other", []byte("sid-1"), mac),
		"another audience": k.Bind("aud").VerifyMAC("logout", []byte("sid-1"), mac),
		"truncated":        k.VerifyMAC("logout", []byte("sid-1"), mac[:16]),
	} {
		if ok {
			t.Errorf("%s verifies", name)
		}
	}
}
