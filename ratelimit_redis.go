package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"tokend/internal/limits"
)

// useRedis makes the three budgets shared through rdb (the one client of
// serve), keyed under prefix. secret keys the digests that name keys in
// Redis, so that neither a username nor an address appears there; every
// replica has the same one (derived from API_KEY_SECRET). now is nil in
// production: Redis's clock decides.
func (l *loginLimits) useRedis(rdb redis.UniversalClient, prefix string, secret []byte, lim Limits, now func() time.Time, log *slog.Logger, setUp func(bool)) {
	st := limits.NewStore(log, setUp)
	l.store = st
	l.pingStore = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	wrap := func(name string, t limits.Table, burst int, perSecond float64) limits.Table {
		local, ok := t.(*limits.Memory)
		if !ok || local == nil {
			return t // no limit stays no limit
		}
		return limits.NewShared(limits.NewRedis(rdb, prefix, name, secret, burst, perSecond, now), local, st)
	}
	l.requests = wrap("requests", l.requests, lim.AddrRequests, lim.AddrRequestsPerSecond)
	l.addrFails = wrap("addr_failures", l.addrFails, lim.AddrFailures, lim.AddrFailuresPerHour/3600)
	l.userFails = wrap("user_failures", l.userFails, lim.UserFailures, lim.UserFailuresPerHour/3600)
}

// limitsSecret derives the key of the Redis key digests from the API key
// secret, which every replica shares and which never leaves the process.
func limitsSecret(apiKeySecret string) []byte {
	mac := hmac.New(sha256.New, []byte(apiKeySecret))
	mac.Write([]byte("tokend login limits keys"))
	return mac.Sum(nil)
}
