package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// BenchmarkCreateConsumeAuthCode measures one authorization code's life in
// the store: created at authorize, consumed at the token endpoint.
func BenchmarkCreateConsumeAuthCode(b *testing.B, s store.Store) {
	ctx := context.Background()
	c := code("bench")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.ID = store.HashID(fmt.Sprintf("bench-code-%d", i))
		if err := s.CreateAuthCode(ctx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ConsumeAuthCode(ctx, c.ID, base); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotateRefreshToken measures one refresh_token grant's store work:
// read the presented token, rotate it to its successor.
func BenchmarkRotateRefreshToken(b *testing.B, s store.Store) {
	ctx := context.Background()
	cur := refresh("bench-rt-0", "bench-family")
	if err := s.CreateRefreshToken(ctx, cur); err != nil {
		b.Fatal(err)
	}
	now := base
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; b.Loop(); i++ {
		if _, err := s.RefreshToken(ctx, cur.ID, now); err != nil {
			b.Fatal(err)
		}
		next := refresh(fmt.Sprintf("bench-rt-%d", i), "bench-family")
		next.CreatedAt = now
		if _, err := s.RotateRefreshToken(ctx, cur.ID, now, next); err != nil {
			b.Fatal(err)
		}
		cur = next
		now = now.Add(time.Millisecond)
	}
}

// BenchmarkUserRead measures the directory reads of a sign-in and a token
// refresh among 1,000 users: the user by login name, then by subject.
func BenchmarkUserRead(b *testing.B, s store.Store) {
	ctx := context.Background()
	const users = 1000
	for i := range users {
		u := dirUser(fmt.Sprintf("sub-%04d", i), fmt.Sprintf("user-%04d", i), fmt.Sprintf("user-%04d@example.org", i))
		u.Identities = []store.ExternalIdentity{{Provider: "github", Subject: fmt.Sprint(i)}}
		if _, err := s.PutUser(ctx, u, store.Absent); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := i % users
		u, err := s.UserByLogin(ctx, "example", fmt.Sprintf("USER-%04d@example.org", n))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.User(ctx, "example", u.Subject); err != nil {
			b.Fatal(err)
		}
	}
}
