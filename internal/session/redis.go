package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps sessions in Redis, so every replica that shares the
// Redis knows them: a session started on one renews on another, and a
// logout on one ends it everywhere.
//
// A session is a hash at PREFIX s:KEY that expires by itself at its idle
// deadline; each user's sessions are indexed in a sorted set at
// PREFIX u:HASH-OF-USER, scored by creation time, so a user's sessions
// are listed and ended without a scan, and the per-user cap ends the
// oldest. Usernames appear only hashed in key names. Renewals and
// creations are Lua scripts (go-redis's Script, so a NOSCRIPT after a
// Redis restart is handled), so two replicas renewing at once never
// revive an ended session.
//
// The scripts touch the index and session keys together, so the store
// needs one Redis (or a primary with replicas), not Redis Cluster.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store that keeps its keys under prefix in rdb,
// which the caller owns (and may share with other users of the Redis).
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

func (r *RedisStore) sessionKey(key string) string { return r.prefix + "s:" + key }

func (r *RedisStore) userKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return r.prefix + "u:" + hex.EncodeToString(sum[:16])
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// createScript stores a session, drops index entries whose session has
// expired, and ends the user's oldest sessions beyond the cap.
var createScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'cred', ARGV[3], 'created', ARGV[4], 'seen', ARGV[5], 'idle', ARGV[6], 'ends', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', ARGV[9] .. m) == 0 then redis.call('ZREM', KEYS[2], m) end
end
local evicted = 0
local n = redis.call('ZCARD', KEYS[2])
local per = tonumber(ARGV[8])
if per > 0 and n > per then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - per - 1)) do
    redis.call('DEL', ARGV[9] .. m)
    redis.call('ZREM', KEYS[2], m)
    evicted = evicted + 1
  end
end
redis.call('PEXPIREAT', KEYS[2], ARGV[7])
return evicted
`)

func (r *RedisStore) Create(ctx context.Context, key string, s Session, perUser int) (int, error) {
	n, err := createScript.Run(ctx, r.rdb, []string{r.sessionKey(key), r.userKey(s.User)},
		key, s.User, s.Credential, ms(s.Created), ms(s.LastSeen), ms(s.IdleUntil), ms(s.EndsAt), perUser, r.prefix+"s:").Int()
	if err != nil {
		return 0, fmt.Errorf("redis: create session: %w", err)
	}
	return n, nil
}

// touchScript renews a session that has not ended, or deletes one that has.
var touchScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'idle', 'ends')
if not f[1] or not f[2] then return false end
local now = tonumber(ARGV[1])
if now >= tonumber(f[1]) or now >= tonumber(f[2]) then
  redis.call('DEL', KEYS[1])
  return false
end
local idle = ARGV[2]
if tonumber(idle) > tonumber(f[2]) then idle = f[2] end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'idle', idle)
redis.call('PEXPIREAT', KEYS[1], idle)
return redis.call('HGETALL', KEYS[1])
`)

func (r *RedisStore) Touch(ctx context.Context, key string, now, idleUntil time.Time) (Session, error) {
	v, err := touchScript.Run(ctx, r.rdb, []string{r.sessionKey(key)}, ms(now), ms(idleUntil)).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return Session{}, ErrNotFound
	case err != nil:
		return Session{}, fmt.Errorf("redis: renew session: %w", err)
	}
	fields := map[string]string{}
	for i := 0; i+1 < len(v); i += 2 {
		fields[v[i]] = v[i+1]
	}
	return decode(key, fields)
}

// decode reads a session hash.
func decode(key string, f map[string]string) (Session, error) {
	s := Session{ID: IDOf(key), User: f["user"], Credential: f["cred"]}
	for _, t := range []struct {
		field string
		into  *time.Time
	}{{"created", &s.Created}, {"seen", &s.LastSeen}, {"idle", &s.IdleUntil}, {"ends", &s.EndsAt}} {
		n, err := strconv.ParseInt(f[t.field], 10, 64)
		if err != nil {
			return Session{}, fmt.Errorf("redis: session %s has a malformed %s field", s.ID, t.field)
		}
		*t.into = time.UnixMilli(n)
	}
	return s, nil
}

func (r *RedisStore) Delete(ctx context.Context, key string) error {
	n, err := r.rdb.Del(ctx, r.sessionKey(key)).Result()
	if err != nil {
		return fmt.Errorf("redis: delete session: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (r *RedisStore) List(ctx context.Context, user string, now time.Time) ([]Session, error) {
	var keys []string
	if user != "" {
		members, err := r.rdb.ZRange(ctx, r.userKey(user), 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: list sessions: %w", err)
		}
		keys = members
	} else {
		// Every user's: an operator's occasional question, so a SCAN
		// (which never blocks Redis) rather than one more index to keep.
		prefix := r.sessionKey("")
		iter := r.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val()[len(prefix):])
		}
		if err := iter.Err(); err != nil {
			return nil, fmt.Errorf("redis: list sessions: %w", err)
		}
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, r.sessionKey(k))
	}
	if len(keys) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redis: list sessions: %w", err)
		}
	}
	var out []Session
	for i, cmd := range cmds {
		f := cmd.Val()
		if len(f) == 0 {
			continue // ended since it was listed
		}
		s, err := decode(keys[i], f)
		if err != nil {
			return nil, err
		}
		if (user == "" || s.User == user) && !s.endedAt(now) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, byCreated)
	return out, nil
}

// deleteUserScript ends every session in a user's index, and the index.
var deleteUserScript = redis.NewScript(`
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
`)

func (r *RedisStore) DeleteUser(ctx context.Context, user string) (int, error) {
	n, err := deleteUserScript.Run(ctx, r.rdb, []string{r.userKey(user)}, r.sessionKey("")).Int()
	if err != nil {
		return 0, fmt.Errorf("redis: end the user's sessions: %w", err)
	}
	return n, nil
}

func (r *RedisStore) DeleteID(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	iter := r.rdb.Scan(ctx, 0, r.sessionKey(id)+"*", 1000).Iterator()
	var found []string
	for iter.Next(ctx) {
		found = append(found, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis: revoke session: %w", err)
	}
	if len(found) == 0 {
		return ErrNotFound
	}
	n, err := r.rdb.Del(ctx, found...).Result()
	if err != nil {
		return fmt.Errorf("redis: revoke session: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (r *RedisStore) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
