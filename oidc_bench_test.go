package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLoginOIDC is a verified ID token login through the login
// limits: go-oidc's checks, the signature with a cached key, the claims
// and the identity rules, no HTTP. Compare with BenchmarkLoginCached (a
// repeat password login answered by the verification cache).
func BenchmarkLoginOIDC(b *testing.B) {
	idp := newTestIdP(b)
	idp.addKey(b, "ec-1")
	for _, kid := range []string{"key-1", "ec-1"} {
		b.Run(algOf(idp.key(kid)), func(b *testing.B) {
			oc := testOIDCConfig(idp.srv.URL)
			login := newOIDCLogin(oc, slog.New(slog.NewTextHandler(io.Discard, nil)), idp.srv.Client(), time.Now)
			if _, err := login.discover(context.Background()); err != nil {
				b.Fatal(err)
			}
			limits := newLoginLimits(unlimited(benchConfig(b)).Limits, time.Now)
			ctx := withClient(netip.MustParseAddr("198.51.100.7"))
			raw := signIDToken(b, idp.key(kid), kid, idp.claims(time.Now(), "user_42"))
			start := time.Now()
			for b.Loop() {
				if id, _, err := login.login(ctx, limits, raw); err != nil || id != "user_42" {
					b.Fatal(id, err)
				}
			}
			b.ReportMetric(time.Since(start).Seconds()*1e6/float64(b.N), "µs/login")
		})
	}
}
