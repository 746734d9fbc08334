package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis timeouts: Redis answers in well under a millisecond, so anything
// slower is a Redis in trouble, and a request must not wait on it.
const (
	redisDialTimeout = time.Second
	redisIOTimeout   = 500 * time.Millisecond
)

// newRedisClient returns the one Redis client a tokend process uses for
// everything it keeps in Redis (REDIS_URL). Timeouts the URL does not set
// are short; connections are made when first needed, so a Redis that is
// down at start-up does not stop tokend.
func newRedisClient(rawURL string) (*redis.Client, error) {
	quietRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// The parser's message may quote the URL's password.
		return nil, fmt.Errorf("REDIS_URL is not a Redis URL: use redis://[:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS")
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = redisDialTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = redisIOTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = redisIOTimeout
	}
	if opt.MaxRetries == 0 {
		// One retry covers a pooled connection that a Redis restart
		// closed; more only hold the request longer.
		opt.MaxRetries = 1
	}
	if opt.DialerRetries == 0 {
		// go-redis would try a refused dial 5 times, 100ms apart: a
		// request waits for none of that; the next request dials again.
		opt.DialerRetries = 1
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = redisDialTimeout
	}
	opt.ClientName = "tokend"
	return redis.NewClient(opt), nil
}

// quietRedis silences go-redis's own log, which has only a process-wide
// setting: it writes a line for every failed dial, one per request while
// Redis is down. tokend says it itself, once when Redis stops answering and
// once when it answers again (backend.Health).
var quietRedis sync.Once

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
