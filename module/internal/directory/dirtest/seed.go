// Package dirtest fills a store's directory with many users and clients,
// as a management API would have stored them, for benchmarks that measure
// what a large directory costs. It is imported by tests only.
package dirtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// Spec says what to seed: a stored domain (its row: name and issuer) with
// Users users and Clients clients.
type Spec struct {
	Domain, Issuer string
	Users, Clients int
}

// Password is the password of every seeded user (stored as a bcrypt hash
// of the lowest cost: seeding is not what is measured).
const Password = "seeded user password"

// ClientSecret is the secret of every seeded confidential client.
const ClientSecret = "seeded-client-secret-0123456789"

// UserSubject, UserLogin and ClientID name the i-th seeded user and client.
func UserSubject(i int) string { return fmt.Sprintf("seed-user-%05d", i) }
func UserLogin(i int) string   { return fmt.Sprintf("user%05d", i) }
func ClientID(i int) string    { return fmt.Sprintf("seed-client-%04d", i) }

// ClientRedirect is the redirect URI of the i-th seeded client.
func ClientRedirect(i int) string { return fmt.Sprintf("https://app%04d.example.com/callback", i) }

// Client is the i-th seeded client: even ones sign users in (confidential,
// authorization code and refresh token, with a redirect URI, an origin and
// an audience of their own), odd ones are services (client credentials).
func Client(i int) *identity.Client {
	c := &identity.Client{ID: ClientID(i), Type: identity.Confidential, SecretHash: identity.HashSecret(ClientSecret),
		Scopes: []string{fmt.Sprintf("app%04d:read", i), "orders:read"}, Audiences: []string{fmt.Sprintf("https://api%04d.example.com", i)}}
	if i%2 == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
		c.RedirectURIs = []string{ClientRedirect(i)}
		c.AllowedOrigins = []string{fmt.Sprintf("https://app%04d.example.com", i)}
		c.AllowLocalLogin = true
	} else {
		c.GrantTypes = []string{"client_credentials"}
	}
	return c
}

// batch is how many rows Seed writes between context checks and progress.
const batch = 500

// Seed writes spec's domain row, users and clients into st through the
// store's own writes (each row is one transaction that bumps the directory
// version, as a management API's write would be), in batches of 500 rows,
// stopping at the first error or when ctx is done. Every user has a
// password and two custom claims; clients are Client(i).
func Seed(ctx context.Context, st store.Directory, spec Spec) error {
	if _, err := st.PutDomain(ctx, store.Domain{Name: spec.Domain, Issuer: spec.Issuer}, store.AnyVersion); err != nil {
		return fmt.Errorf("seeding domain %q: %w", spec.Domain, err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	for from := 0; from < spec.Users; from += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := from; i < min(from+batch, spec.Users); i++ {
			claims, _ := json.Marshal([]map[string]any{
				{"name": "groups", "value": []string{"staff", fmt.Sprintf("team%03d", i%100)}, "in": identity.ClaimAccess},
				{"name": "department", "value": fmt.Sprintf("dept%02d", i%20), "in": identity.ClaimIdentity},
			})
			u := store.User{Domain: spec.Domain, Subject: UserSubject(i), PreferredUsername: UserLogin(i), Name: fmt.Sprintf("User %d", i),
				Email: UserLogin(i) + "@example.org", EmailVerified: true, Active: true, PasswordHash: string(hash), Claims: claims}
			if _, err := st.PutUser(ctx, u, store.Absent); err != nil {
				return fmt.Errorf("seeding user %d: %w", i, err)
			}
		}
	}
	for from := 0; from < spec.Clients; from += batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := from; i < min(from+batch, spec.Clients); i++ {
			c := Client(i)
			data, err := directory.EncodeClient(c)
			if err != nil {
				return err
			}
			if _, err := st.PutClient(ctx, store.Client{Domain: spec.Domain, ID: c.ID, Data: data, SecretHash: c.SecretHash}, store.Absent); err != nil {
				return fmt.Errorf("seeding client %d: %w", i, err)
			}
		}
	}
	return nil
}

// templates holds, per Spec, a SQLite file seeded once per test binary;
// RemoveTemplates deletes them.
var (
	templates sync.Map // Spec → *template
	dirsMu    sync.Mutex
	dirs      []string
)

// RemoveTemplates deletes the seeded files SQLite made. Call it from the
// TestMain of a package that uses SQLite, after the tests ran.
func RemoveTemplates() {
	dirsMu.Lock()
	defer dirsMu.Unlock()
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	dirs = nil
}

type template struct {
	once sync.Once
	path string
	err  error
}

// SQLite returns the path of a fresh SQLite store (in tb's temporary
// directory) whose directory holds spec: a copy of a file seeded once per
// test binary, so that each benchmark starts from the same rows without
// seeding them again.
func SQLite(tb testing.TB, spec Spec) string {
	tb.Helper()
	v, _ := templates.LoadOrStore(spec, new(template))
	tp := v.(*template)
	tp.once.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-dirtest-")
		if err != nil {
			tp.err = err
			return
		}
		dirsMu.Lock()
		dirs = append(dirs, dir)
		dirsMu.Unlock()
		tp.path = filepath.Join(dir, "seeded.db")
		st, err := sqlite.Open(tp.path)
		if err != nil {
			tp.err = err
			return
		}
		tp.err = Seed(context.Background(), st, spec)
		// Closing checkpoints the WAL into the file, which is then whole.
		if err := st.Close(); tp.err == nil {
			tp.err = err
		}
	})
	if tp.err != nil {
		tb.Fatalf("seeding %+v: %v", spec, tp.err)
	}
	dst := filepath.Join(tb.TempDir(), "gatehouse.db")
	if err := copyFile(tp.path, dst); err != nil {
		tb.Fatal(err)
	}
	return dst
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
