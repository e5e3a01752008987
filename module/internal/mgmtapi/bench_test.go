package mgmtapi

import (
	"context"
	"testing"
)

// BenchmarkCheckKey: what checking a presented key costs — one lookup by
// ID in SQLite and one SHA-256 comparison — for the right key, a wrong
// secret, an unknown ID and no key shape at all. The four should cost the
// same (the timing must not tell which IDs exist).
func BenchmarkCheckKey(b *testing.B) {
	f := newFixture(b)
	unknown, _, _ := NewKey(KeySpec{}, f.now)
	wrong := f.key[:len(f.key)-1] + "a"
	if wrong == f.key {
		wrong = f.key[:len(f.key)-1] + "b"
	}
	for _, c := range []struct{ name, key string }{{"right", f.key}, {"wrong-secret", wrong}, {"unknown-id", unknown}, {"malformed", "hunter2"}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := checkKey(ctx, f.st, c.key, f.now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
