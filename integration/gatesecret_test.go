package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestGate_EmbeddedLoginWithTheClientSecretOnlyHashed: the embedded gate
// signs in through its own issuer with a confidential client whose secret
// the process keeps only as a hash. Before, the gate re-presented the
// client's plaintext secret to the issuer in-process, so every secret had to
// stay in memory as configured; secrets that exist only as hashes (those of
// the management API) would have broken the embedded login. The gate now
// redeems through the issuer's trusted in-process relying party, and the
// directory's clients carry nothing but the secret's SHA-256.
func TestGate_EmbeddedLoginWithTheClientSecretOnlyHashed(t *testing.T) {
	const secret = "webapp-secret-from-the-environment-0123"
	t.Setenv("GATEHOUSE_TEST_WEBAPP_SECRET", secret)
	env := startGate(t, "\t\t\tlogin webapp\n\t\t\tforward X-Auth-Subject sub", func(cf string) string {
		return strings.Replace(cf, "secret webapp-secret-0123456789abcdef", "secret {env.GATEHOUSE_TEST_WEBAPP_SECRET}", 1)
	})
	b := browser(t)
	if code := signInAt(t, b, env.app, "alice"); code != 302 {
		t.Fatalf("the gate's callback answered %d", code)
	}
	if resp, _ := do(t, b, "GET", env.app+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 || env.upstream.header().Get("X-Auth-Subject") != "alice" {
		t.Fatalf("signed in through the embedded gate: %d, upstream saw %q", resp.StatusCode, env.upstream.header().Get("X-Auth-Subject"))
	}
	// Over HTTP the client still authenticates with the secret (its hash is
	// compared), and a wrong one is refused.
	junk := url.Values{"token": {"not-a-token"}}
	if resp := postForm(t, env.issuer+"/revoke", "webapp", secret, junk); resp.StatusCode != 200 {
		t.Fatalf("the configured secret at the revocation endpoint: %d", resp.StatusCode)
	}
	if resp := postForm(t, env.issuer+"/revoke", "webapp", secret+"x", junk); resp.StatusCode != 401 {
		t.Fatalf("a wrong secret at the revocation endpoint: %d", resp.StatusCode)
	}

	app, err := caddy.ActiveContext().App("gatehouse")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	w := &secretWalk{needles: [][]byte{[]byte(secret), []byte(env.redirect), []byte("sha256:" + base64.RawURLEncoding.EncodeToString(sum[:]))}, seen: map[uintptr]bool{}}
	state := reflect.ValueOf(app).Elem()
	for _, f := range []string{"directory", "domains"} {
		w.walk(state.FieldByName(f), "App."+f, 0)
	}
	if w.found[0] != "" {
		t.Fatalf("the client secret is reachable from the domain state at %s", w.found[0])
	}
	if len(w.secretFields) > 0 {
		t.Fatalf("identity types keep a field named like a plaintext secret: %v", w.secretFields)
	}
	if w.found[1] == "" || w.found[2] == "" {
		t.Fatalf("the walk did not reach the client (redirect URI at %q, secret hash at %q): it proves nothing", w.found[1], w.found[2])
	}
}

// secretWalk looks through a value graph (Gatehouse's own types and the
// containers holding them) for byte strings, reading unexported fields.
type secretWalk struct {
	needles      [][]byte
	found        [3]string // where each needle was first seen
	seen         map[uintptr]bool
	secretFields []string
}

func (w *secretWalk) check(b []byte, path string) {
	for i, n := range w.needles {
		if w.found[i] == "" && bytes.Contains(b, n) {
			w.found[i] = path
		}
	}
}

func (w *secretWalk) walk(v reflect.Value, path string, depth int) {
	if !v.IsValid() || depth > 40 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		w.check([]byte(v.String()), path)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Pointer {
			if w.seen[v.Pointer()] {
				return
			}
			w.seen[v.Pointer()] = true
		}
		w.walk(v.Elem(), path, depth+1)
	case reflect.Struct:
		t := v.Type()
		if !strings.HasPrefix(t.PkgPath(), "github.com/gatehouse-auth/gatehouse") {
			return // another library's internals (loggers, database handles, keys)
		}
		for i := range v.NumField() {
			if f := t.Field(i); strings.HasSuffix(t.PkgPath(), "/identity") && (f.Name == "Secret" || f.Name == "ClientSecret") {
				w.secretFields = append(w.secretFields, t.Name()+"."+f.Name)
			}
			w.walk(v.Field(i), path+"."+t.Field(i).Name, depth+1)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			w.check(b, path)
			return
		}
		for i := range v.Len() {
			w.walk(v.Index(i), path+"[]", depth+1)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Key(), path+"{key}", depth+1)
			w.walk(it.Value(), path+"{}", depth+1)
		}
	}
}
