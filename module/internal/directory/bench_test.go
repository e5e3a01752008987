package directory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/gatehouse-auth/gatehouse/module/internal/directory"
	"github.com/gatehouse-auth/gatehouse/module/internal/directory/dirtest"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/module/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dirtest.RemoveTemplates()
	os.Exit(code)
}

// BenchmarkStoredRefresh is what an instance spends when the store's
// directory version moves (any write through the management API, on any
// instance): Stored.Refresh rebuilds every domain's snapshot from its rows.
// Each iteration changes one policy (not timed) and refreshes.
//
// Run: go test ./module/internal/directory -run '^$' -bench StoredRefresh -benchmem
func BenchmarkStoredRefresh(b *testing.B) {
	for _, spec := range []dirtest.Spec{
		{Domain: "bench", Issuer: "https://auth.example.com/bench"},
		{Domain: "bench", Issuer: "https://auth.example.com/bench", Clients: 100},
		{Domain: "bench", Issuer: "https://auth.example.com/bench", Clients: 1000},
		{Domain: "bench", Issuer: "https://auth.example.com/bench", Users: 10000, Clients: 1000},
	} {
		b.Run(fmt.Sprintf("users=%d/clients=%d", spec.Users, spec.Clients), func(b *testing.B) {
			st, err := sqlite.Open(dirtest.SQLite(b, spec))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			d := directory.NewStored(st, func(err error) { b.Fatal(err) })
			if err := d.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			if snap, err := d.Snapshot(ctx, spec.Domain); err != nil || len(snap.Clients()) != spec.Clients {
				b.Fatalf("snapshot: %v, %v", snap, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				src, _ := json.Marshal(map[string]any{"all": []map[string]any{{"claim": "groups", "in": []string{fmt.Sprint("team", i)}}}})
				if _, err := st.PutPolicy(ctx, store.Policy{Domain: spec.Domain, ID: "churn", Source: src}, store.AnyVersion); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := d.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
