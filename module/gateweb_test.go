package module

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

// TestCookieKeysAreSharedThroughTheStore: every gate (and every instance on
// the same store) derives its cookie keys from one secret, made by the first
// to ask; a store that cannot answer fails the gate's provisioning, naming
// what it was reading.
func TestCookieKeysAreSharedThroughTheStore(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "gh.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := cookieKeys(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	second, err := cookieKeys(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := first.Bind("aud").MAC("p", []byte("x"))
	b, _ := second.Bind("aud").MAC("p", []byte("x"))
	if !bytes.Equal(a, b) {
		t.Fatal("two gates on one store derived different cookie keys: a session sealed by one would not open at the other")
	}
	st.Close()
	if _, err := cookieKeys(ctx, st); err == nil || !strings.Contains(err.Error(), "reading the cookie keys from the store") {
		t.Fatalf("a store that cannot answer: %v", err)
	}
}
