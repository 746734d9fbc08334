// Package limits keeps the login budgets: token buckets per key, with
// attempts in flight charged provisionally. Memory keeps them in this
// process; Shared keeps them in Redis, so that every tokend replica using
// the same Redis shares them, and falls back to a Memory while Redis does
// not answer.
package limits

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hold bounds how long an attempt in flight holds its event when its
// replica never ends it (a crash): a bcrypt check takes well under this.
const Hold = 30 * time.Second

// ErrBusy is Begin's answer when every event left is held by attempts in
// flight (on any replica); the caller waits and asks again.
var ErrBusy = errors.New("limits: the budget is held by attempts in flight")

// Redis is one budget kept in Redis: a token bucket per key of burst events
// refilled at perSecond, and a sorted set of the attempts in flight.
type Redis struct {
	rdb      redis.Scripter
	prefix   string // REDIS_PREFIX + "limits:" + the budget's name + ":"
	secret   []byte // keys are HMAC digests: no username or address in Redis
	burst    int
	interval float64 // milliseconds per event
	// now, when set, is the clock (tests); otherwise Redis's TIME decides,
	// so that replicas with skewed clocks still agree.
	now func() time.Time
}

// NewRedis returns the budget name of burst events refilled at perSecond.
func NewRedis(rdb redis.Scripter, prefix, name string, secret []byte, burst int, perSecond float64, now func() time.Time) *Redis {
	return &Redis{rdb: rdb, prefix: prefix + "limits:" + name + ":", secret: secret,
		burst: burst, interval: 1000 / perSecond, now: now}
}

// The one script does every operation on a key's two Redis keys (the bucket
// and the attempts in flight), atomically. Both keys carry the same hash tag
// so they live in one Redis Cluster slot. Replies: {code, wait ms}; code 0
// is yes (taken, begun, not locked, was not locked), 1 is no (refused,
// locked, was locked), 2 is busy (Begin: the events left are in flight).
var script = redis.NewScript(`
local op, burst, interval = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local hold = tonumber(ARGV[5])
local tokens = burst
local h = redis.call('HMGET', KEYS[1], 't', 'ts')
if h[1] then
  tokens = math.min(burst, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) / interval)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local pending = redis.call('ZCARD', KEYS[2])
local function save()
  if tokens >= burst then
    redis.call('DEL', KEYS[1])
    return
  end
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * interval) + 1000)
end
local function wait()
  return math.max(1, math.ceil((1 - tokens) * interval - 1e-6))
end
if op == 'take' then
  if tokens < 1 then return {1, wait()} end
  tokens = tokens - 1
  save()
  return {0, 0}
elseif op == 'locked' then
  if tokens < 1 then return {1, wait()} end
  return {0, 0}
elseif op == 'begin' then
  if tokens < 1 then return {1, wait()} end
  if tokens - pending < 1 then return {2, 0} end
  redis.call('ZADD', KEYS[2], now + hold, ARGV[6])
  redis.call('PEXPIRE', KEYS[2], hold)
  return {0, 0}
elseif op == 'end' then
  redis.call('ZPOPMIN', KEYS[2])
  if ARGV[6] == '1' then
    tokens = tokens - 1
    save()
  end
  return {0, 0}
elseif op == 'reset' then
  redis.call('DEL', KEYS[1])
  if tokens < 1 then return {1, 0} end
  return {0, 0}
end
return redis.error_reply('limits: unknown operation')
`)

func (r *Redis) run(ctx context.Context, op, key, arg string) (code int64, wait time.Duration, err error) {
	mac := hmac.New(sha256.New, r.secret)
	mac.Write([]byte(key))
	tag := "{" + hex.EncodeToString(mac.Sum(nil)[:16]) + "}"
	var now int64
	if r.now != nil {
		now = r.now().UnixMilli()
	}
	res, err := script.Run(ctx, r.rdb, []string{r.prefix + tag, r.prefix + tag + ":inflight"},
		op, r.burst, r.interval, now, Hold.Milliseconds(), arg).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, errors.New("limits: unexpected reply from the Redis script")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Take spends one event of key's budget, or says how long until one is there.
func (r *Redis) Take(ctx context.Context, key string) (wait time.Duration, ok bool, err error) {
	code, wait, err := r.run(ctx, "take", key, "")
	return wait, code == 0, err
}

// Locked reports whether failures already charged spent key's budget.
func (r *Redis) Locked(ctx context.Context, key string) (wait time.Duration, locked bool, err error) {
	code, wait, err := r.run(ctx, "locked", key, "")
	return wait, code == 1, err
}

// Begin starts an attempt, holding one event until End (or Hold). It
// returns locked with the wait when failures spent the budget, ErrBusy when
// the events left are all held by attempts in flight.
func (r *Redis) Begin(ctx context.Context, key string) (wait time.Duration, locked bool, err error) {
	code, wait, err := r.run(ctx, "begin", key, rand.Text())
	switch {
	case err != nil:
		return 0, false, err
	case code == 2:
		return 0, false, ErrBusy
	}
	return wait, code == 1, nil
}

// End finishes an attempt: a failure is charged, a success gives its event back.
func (r *Redis) End(ctx context.Context, key string, failed bool) error {
	arg := "0"
	if failed {
		arg = "1"
	}
	_, _, err := r.run(ctx, "end", key, arg)
	return err
}

// Reset fills key's bucket again; attempts in flight still end as usual.
func (r *Redis) Reset(ctx context.Context, key string) (wasLocked bool, err error) {
	code, _, err := r.run(ctx, "reset", key, "")
	return code == 1, err
}
