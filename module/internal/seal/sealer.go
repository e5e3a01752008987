package seal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// Errors returned by Sealer.Open. Callers treat any of them as "no session":
// the user logs in again and the next Seal overwrites the cookies.
var (
	// ErrNoSession means the request carries no session cookie at all.
	ErrNoSession = errors.New("session: no session cookie")
	// ErrInvalid means the cookies are present but cannot be trusted: a
	// wrong MAC (tampered, or sealed with a key no longer known), malformed
	// or oversized values, a missing chunk, or a payload of the wrong shape.
	ErrInvalid = errors.New("session: invalid session cookie")
	// ErrExpired means the cookies are authentic but their sealed expiry
	// has passed.
	ErrExpired = errors.New("session: session cookie expired")
	// ErrTooLarge is returned by Seal when the sealed value does not fit in
	// MaxChunks cookies.
	ErrTooLarge = errors.New("session: value too large for session cookies")
)

// ChunkSize is the largest cookie value Seal writes. With the name and the
// attributes a Set-Cookie stays under the 4096-byte limit browsers enforce.
const ChunkSize = 3800

// Defaults applied by NewSealer.
const (
	DefaultName      = "gatehouse"
	DefaultMaxAge    = 24 * time.Hour
	DefaultMaxChunks = 8
	DefaultPurpose   = "session"
	// HostPrefix is prepended to the cookie name when Secure is set, so the
	// browser pins the cookie to this exact host, Path=/ and HTTPS.
	HostPrefix = "__Host-"
)

// Config configures a Sealer.
type Config struct {
	// Name is the base cookie name; default "gatehouse". When Secure is set
	// the cookies are named HostPrefix+Name (and HostPrefix+Name+".1", ...).
	// Name must not itself start with "__Host-" or "__Secure-".
	Name string
	// Secure marks the cookies Secure and enables the "__Host-" prefix. It
	// should be false only for loopback development; see SecureFor.
	Secure bool
	// MaxAge bounds the lifetime of a sealed value (the expiry given to Seal
	// is capped to now+MaxAge); default 24h.
	MaxAge time.Duration
	// MaxChunks bounds how many cookies one value may be split across;
	// default 8, at most 9.
	MaxChunks int
	// Purpose separates cookie kinds: keys are derived per purpose, so a
	// value sealed for one purpose never opens under another. Default
	// "session".
	Purpose string
	// Now is the clock used for expiry; default time.Now.
	Now func() time.Time
}

// Sealer seals values into HttpOnly, SameSite=Lax, Path=/ cookies and opens
// them again. It is safe for concurrent use.
type Sealer struct {
	name      string
	secure    bool
	maxAge    time.Duration
	maxChunks int
	now       func() time.Time
	encoder   *securecookie.SecureCookie   // newest key, no length limit: Seal checks chunks itself
	codecs    []*securecookie.SecureCookie // every key, newest first, for Open
}

// NewSealer returns a Sealer using keys and cfg (zero fields take defaults).
func NewSealer(keys *Keys, cfg Config) (*Sealer, error) {
	if keys == nil {
		return nil, errors.New("session: keys are required")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if strings.HasPrefix(strings.ToLower(cfg.Name), "__host-") || strings.HasPrefix(strings.ToLower(cfg.Name), "__secure-") {
		return nil, fmt.Errorf("session: cookie name %q must not carry a prefix; %q is added when Secure is set", cfg.Name, HostPrefix)
	}
	if !validCookieName(cfg.Name) {
		return nil, fmt.Errorf("session: cookie name %q is not a valid cookie name", cfg.Name)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < time.Second {
		return nil, fmt.Errorf("session: cookie max age %v must be at least 1s", cfg.MaxAge)
	}
	if cfg.MaxChunks == 0 {
		cfg.MaxChunks = DefaultMaxChunks
	}
	if cfg.MaxChunks < 1 || cfg.MaxChunks > 9 {
		return nil, fmt.Errorf("session: max chunks %d must be between 1 and 9", cfg.MaxChunks)
	}
	if cfg.Purpose == "" {
		cfg.Purpose = DefaultPurpose
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	codecs, err := keys.codecs(cfg.Purpose)
	if err != nil {
		return nil, err
	}
	encoders, err := keys.codecs(cfg.Purpose)
	if err != nil {
		return nil, err
	}
	encoder := encoders[0].SetSerializer(securecookie.NopEncoder{}).MaxLength(0)
	for _, c := range codecs {
		c.SetSerializer(securecookie.NopEncoder{})
		// Backstop on the real clock; the exact expiry is inside the payload.
		c.MaxAge(int(cfg.MaxAge/time.Second) + 60)
		c.MaxLength(ChunkSize * cfg.MaxChunks)
	}
	name := cfg.Name
	if cfg.Secure {
		name = HostPrefix + name
	}
	return &Sealer{
		name:      name,
		secure:    cfg.Secure,
		maxAge:    cfg.MaxAge,
		maxChunks: cfg.MaxChunks,
		now:       cfg.Now,
		encoder:   encoder,
		codecs:    codecs,
	}, nil
}

// Name returns the name of the first cookie (chunks are Name()+".1", ...).
func (s *Sealer) Name() string { return s.name }

// envelope is the sealed payload: the expiry travels inside the MAC.
type envelope struct {
	Exp int64 `json:"x"`
	V   any   `json:"v"`
}

type openedEnvelope struct {
	Exp int64           `json:"x"`
	V   json.RawMessage `json:"v"`
}

// Seal serialises v as JSON, seals it with the newest key and sets the cookies
// on w, valid until expires (capped to now+MaxAge; a zero expires means
// now+MaxAge). Values larger than ChunkSize are split across Name(),
// Name()+".1", ...; deletions are sent for every higher chunk so a previous,
// larger session leaves nothing behind. Set-Cookie lines for these cookies
// already on w are replaced. Nothing is written when Seal fails.
func (s *Sealer) Seal(w http.ResponseWriter, v any, expires time.Time) error {
	now := s.now()
	enc, expires, err := s.encode(v, expires)
	if err != nil {
		return err
	}
	// The first cookie carries the chunk count: "<n>.<data>". base64 never
	// contains '.', so the prefix is unambiguous.
	n := (len(enc) + 2 + ChunkSize - 1) / ChunkSize
	if n > s.maxChunks {
		return ErrTooLarge
	}
	all := strconv.Itoa(n) + "." + enc
	maxAge := int(expires.Sub(now) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	s.dropPending(w.Header())
	for i := 0; i < s.maxChunks; i++ {
		if i < n {
			end := min((i+1)*ChunkSize, len(all))
			http.SetCookie(w, s.cookie(s.chunkName(i), all[i*ChunkSize:end], maxAge))
		} else {
			http.SetCookie(w, s.cookie(s.chunkName(i), "", -1))
		}
	}
	return nil
}

// encode seals v until expires (capped to now+MaxAge; zero means now+MaxAge)
// and returns the sealed value and the expiry it carries.
func (s *Sealer) encode(v any, expires time.Time) (string, time.Time, error) {
	now := s.now()
	if limit := now.Add(s.maxAge); expires.IsZero() || expires.After(limit) {
		expires = limit
	}
	if !expires.After(now) {
		return "", expires, fmt.Errorf("session: expiry %v is not in the future", expires)
	}
	payload, err := json.Marshal(envelope{Exp: expires.Unix(), V: v})
	if err != nil {
		return "", expires, fmt.Errorf("session: serialising value: %w", err)
	}
	enc, err := s.encoder.Encode(s.name, payload)
	if err != nil {
		return "", expires, fmt.Errorf("session: sealing value: %w", err)
	}
	return enc, expires, nil
}

// Open reassembles and opens the cookies on r into dst (a pointer, as for
// json.Unmarshal). It returns ErrNoSession when there is no session cookie,
// ErrExpired when the sealed expiry has passed and an error wrapping
// ErrInvalid for anything else that is wrong with the cookies.
func (s *Sealer) Open(r *http.Request, dst any) error {
	raw, err := s.joined(r)
	if err != nil {
		return err
	}
	_, err = s.decode(raw, dst)
	return err
}

// joined reassembles the sealed value from r's cookies, checking the chunk
// structure only.
func (s *Sealer) joined(r *http.Request) (string, error) {
	first, chunks := s.collect(r)
	if first == nil {
		return "", ErrNoSession
	}
	dot := strings.IndexByte(*first, '.')
	if dot != 1 {
		return "", fmt.Errorf("%w: malformed value", ErrInvalid)
	}
	n := int((*first)[0] - '0')
	if n < 1 || n > s.maxChunks {
		return "", fmt.Errorf("%w: bad chunk count", ErrInvalid)
	}
	if len(*first) > ChunkSize {
		return "", fmt.Errorf("%w: oversized cookie", ErrInvalid)
	}
	if n == 1 {
		return (*first)[2:], nil
	}
	var b strings.Builder
	b.WriteString((*first)[2:])
	for i := 1; i < n; i++ {
		c := chunks[i]
		if c == nil {
			return "", fmt.Errorf("%w: chunk %d of %d missing", ErrInvalid, i+1, n)
		}
		if len(*c) > ChunkSize || len(*c) == 0 {
			return "", fmt.Errorf("%w: bad chunk size", ErrInvalid)
		}
		b.WriteString(*c)
	}
	return b.String(), nil
}

// decode authenticates, decrypts and unmarshals a joined value into dst and
// returns its sealed expiry.
func (s *Sealer) decode(raw string, dst any) (time.Time, error) {
	var payload []byte
	var err error
	for _, c := range s.codecs {
		if err = c.Decode(s.name, raw, &payload); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var env openedEnvelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return time.Time{}, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	exp := time.Unix(env.Exp, 0)
	if !s.now().Before(exp) {
		return time.Time{}, ErrExpired
	}
	if len(env.V) == 0 {
		return time.Time{}, fmt.Errorf("%w: empty payload", ErrInvalid)
	}
	if err := json.Unmarshal(env.V, dst); err != nil {
		return time.Time{}, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	return exp, nil
}

// Clear deletes the session cookies: the first cookie always, and every chunk
// r carries. Set-Cookie lines for these cookies already on w are replaced.
func (s *Sealer) Clear(w http.ResponseWriter, r *http.Request) {
	s.dropPending(w.Header())
	_, chunks := s.collect(r)
	for i := 0; i < s.maxChunks; i++ {
		if i == 0 || chunks[i] != nil {
			http.SetCookie(w, s.cookie(s.chunkName(i), "", -1))
		}
	}
}

// collect returns the first session cookie's value and the values of chunks
// 1..maxChunks-1 (index 0 unused), nil where absent. The first occurrence of
// a name wins.
func (s *Sealer) collect(r *http.Request) (*string, []*string) {
	chunks := make([]*string, s.maxChunks)
	for _, c := range r.Cookies() {
		i := s.chunkIndex(c.Name)
		if i < 0 || chunks[i] != nil {
			continue
		}
		v := c.Value
		chunks[i] = &v
	}
	return chunks[0], chunks
}

// chunkIndex returns i when name is chunkName(i), or -1.
func (s *Sealer) chunkIndex(name string) int {
	if name == s.name {
		return 0
	}
	rest, ok := strings.CutPrefix(name, s.name+".")
	if !ok || len(rest) != 1 || rest[0] < '1' || rest[0] > '9' {
		return -1
	}
	i := int(rest[0] - '0')
	if i >= s.maxChunks {
		return -1
	}
	return i
}

func (s *Sealer) chunkName(i int) string {
	if i == 0 {
		return s.name
	}
	return s.name + "." + strconv.Itoa(i)
}

func (s *Sealer) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// dropPending removes Set-Cookie lines for this Sealer's cookies from h, so
// the last Seal or Clear in a response is the only one the browser sees.
func (s *Sealer) dropPending(h http.Header) {
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, l := range lines {
		name, _, _ := strings.Cut(l, "=")
		if s.chunkIndex(strings.TrimSpace(name)) >= 0 {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

func validCookieName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return name != ""
}

// SecureFor reports whether cookies for host must be Secure. It returns false
// only for loopback development hosts: "localhost" (any case, optional
// trailing dot), 127.0.0.0/8 and ::1 (an IPv4-mapped loopback counts too),
// with or without a port. Everything else, including names that merely
// resolve to loopback and malformed hosts, is Secure (fail closed).
func SecureFor(host string) bool {
	h := host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		h = hp
	}
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if strings.EqualFold(strings.TrimSuffix(h, "."), "localhost") {
		return false
	}
	if strings.Contains(h, "%") { // zone: fe80::1%eth0 is not loopback anyway
		return true
	}
	addr, err := netip.ParseAddr(h)
	if err != nil {
		return true
	}
	return !addr.Unmap().IsLoopback()
}
