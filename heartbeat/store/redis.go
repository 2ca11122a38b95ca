package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps the registry in Redis so that several console replicas
// behind a load balancer serve one fleet. Each replica works on its own
// in-memory registry as with bbolt (a heartbeat costs no round trip);
// every flush writes the changed records and publishes their ids, and
// every replica follows that channel and reloads what the others
// changed, so a heartbeat posted to one replica is seen on the others
// within about one flush period. Sessions are Redis keys with a TTL, so
// a login on one replica is valid on all. One replica at a time (a lock
// key with a TTL) evaluates alerts, so each alert is logged and posted
// once.
//
// Keys, under the prefix: host:<id> (a record, JSON), hosts (the set of
// ids), seen:<id> (its Seen part, written alone by routine heartbeats),
// cred:<sha256> (the host id of a credential, checked against the record
// when read), meta:<key>, session:<id>, leader; channel: changes.
type Redis struct {
	c       *redis.Client
	prefix  string
	replica string // random per process: tells its own messages apart
	timeout time.Duration
}

// OpenRedis connects to the Redis at url (redis://[:password@]host:port/db
// or rediss:// for TLS) and checks it answers; keys start with prefix.
func OpenRedis(url, prefix string) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("replica id: %w", err)
	}
	r := &Redis{c: redis.NewClient(opt), prefix: prefix, replica: hex.EncodeToString(id[:]), timeout: 10 * time.Second}
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.c.Ping(ctx).Err(); err != nil {
		r.c.Close()
		return nil, fmt.Errorf("redis at %s: %w", opt.Addr, err)
	}
	return r, nil
}

func (r *Redis) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

func (r *Redis) key(parts ...string) string { return r.prefix + strings.Join(parts, ":") }

// Load returns every stored record.
func (r *Redis) Load() ([]*Record, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	ids, err := r.c.SMembers(ctx, r.key("hosts")).Result()
	if err != nil {
		return nil, fmt.Errorf("load registry from redis: %w", err)
	}
	recs, err := r.get(ctx, ids)
	if err != nil {
		return nil, err
	}
	seen, err := r.getSeen(ctx, ids)
	if err != nil {
		return nil, err
	}
	raw := make(map[string][]byte, len(seen))
	for _, s := range seen {
		b, _ := json.Marshal(s)
		raw[s.HostID] = b
	}
	return recs, mergeSeen(recs, raw)
}

// getSeen reads the Seen parts of ids (those that have one).
func (r *Redis) getSeen(ctx context.Context, ids []string) ([]*Seen, error) {
	return mget[Seen](ctx, r, "seen", ids)
}

// mget reads the JSON values at kind:<id> for ids, a thousand keys a
// round trip, skipping ids without one (deleted meanwhile).
func mget[T any](ctx context.Context, r *Redis, kind string, ids []string) ([]*T, error) {
	var out []*T
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = r.key(kind, id)
		}
		vals, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s from redis: %w", kind, err)
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			x := new(T)
			if err := json.Unmarshal([]byte(str), x); err != nil {
				return nil, fmt.Errorf("%s %q in redis: %w", kind, chunk[i], err)
			}
			out = append(out, x)
		}
	}
	return out, nil
}

func (r *Redis) get(ctx context.Context, ids []string) ([]*Record, error) {
	return mget[Record](ctx, r, "host", ids)
}

// Save writes the records and the Seen parts and deletes the hosts in
// gone in one transaction, then tells the other replicas.
func (r *Redis) Save(records, seen []Encoded, gone [][]byte) error {
	if len(records) == 0 && len(seen) == 0 && len(gone) == 0 {
		return nil
	}
	ctx, cancel := r.ctx()
	defer cancel()
	var msg strings.Builder
	msg.WriteString(r.replica)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range records {
			p.Set(ctx, r.key("host", string(e.Key)), e.Value, 0)
			p.SAdd(ctx, r.key("hosts"), string(e.Key))
			if e.Credential != "" {
				p.Set(ctx, r.key("cred", e.Credential), string(e.Key), 0)
			}
			msg.WriteString(" +" + string(e.Key))
		}
		for _, e := range seen {
			p.Set(ctx, r.key("seen", string(e.Key)), e.Value, 0)
			msg.WriteString(" ~" + string(e.Key))
		}
		for _, id := range gone {
			p.Del(ctx, r.key("host", string(id)), r.key("seen", string(id)))
			p.SRem(ctx, r.key("hosts"), string(id))
			msg.WriteString(" -" + string(id))
		}
		p.Publish(ctx, r.key("changes"), msg.String())
		return nil
	})
	if err != nil {
		return fmt.Errorf("save registry to redis: %w", err)
	}
	return nil
}

// byCredential reads the host whose credential has SHA-256 hash, nil when
// none: a credential index entry left by a decommissioned or re-enrolled
// host does not match its record and counts as none.
func (r *Redis) byCredential(hash string) (*Record, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	id, err := r.c.Get(ctx, r.key("cred", hash)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis credential lookup: %w", err)
	}
	recs, err := r.get(ctx, []string{id})
	if err != nil || len(recs) == 0 || recs[0].CredentialSHA256 != hash {
		return nil, err
	}
	return recs[0], nil
}

// SwapMeta stores value under key and returns the previous value.
func (r *Redis) SwapMeta(key string, value []byte) ([]byte, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	old, err := r.c.SetArgs(ctx, r.key("meta", key), value, redis.SetArgs{Get: true}).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis meta %s: %w", key, err)
	}
	return old, nil
}

// follow calls apply for every host another replica changed (a nil
// record: it was removed) until ctx ends.
func (r *Redis) follow(ctx context.Context, apply func(id string, rec *Record), applySeen func(*Seen), fail func(error)) {
	sub := r.c.Subscribe(ctx, r.key("changes"))
	defer sub.Close()
	// Once subscribed, read everything again: what changed between the
	// registry's Load and the subscription is not missed.
	if _, err := sub.Receive(ctx); err != nil {
		if ctx.Err() == nil {
			fail(fmt.Errorf("subscribe to redis: %w", err))
		}
		return
	}
	ch := sub.Channel()
	if recs, err := r.Load(); err != nil {
		fail(err)
	} else {
		for _, rec := range recs {
			apply(rec.HostID, rec)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			fields := strings.Fields(m.Payload)
			if len(fields) == 0 || fields[0] == r.replica {
				continue
			}
			var put, touched []string
			for _, f := range fields[1:] {
				if len(f) < 2 {
					continue
				}
				switch f[0] {
				case '-':
					apply(f[1:], nil)
				case '~':
					touched = append(touched, f[1:])
				default:
					put = append(put, f[1:])
				}
			}
			gctx, cancel := r.ctx()
			recs, err := r.get(gctx, put)
			var seen []*Seen
			if err == nil {
				seen, err = r.getSeen(gctx, touched)
			}
			cancel()
			if err != nil {
				fail(err)
				continue
			}
			for _, rec := range recs {
				apply(rec.HostID, rec)
			}
			for _, s := range seen {
				applySeen(s)
			}
		}
	}
}

// lead reports whether this replica holds (or now takes) the leader lock
// for ttl.
func (r *Redis) lead(ttl time.Duration) bool {
	ctx, cancel := r.ctx()
	defer cancel()
	k := r.key("leader")
	ok, err := r.c.SetNX(ctx, k, r.replica, ttl).Result()
	if err != nil {
		return false
	}
	if ok {
		return true
	}
	// Ours already: extend it (only if still ours).
	n, err := extendLock.Run(ctx, r.c, []string{k}, r.replica, ttl.Milliseconds()).Int()
	return err == nil && n == 1
}

var extendLock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)

// Close closes the connection.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// RedisSessions are console logins kept in Redis with a TTL, valid on
// every replica.
type RedisSessions struct {
	r   *Redis
	ttl time.Duration
}

// Sessions returns the session store of this Redis.
func (r *Redis) Sessions(ttl time.Duration) *RedisSessions { return &RedisSessions{r: r, ttl: ttl} }

// Start creates a session and returns its id and expiry.
func (s *RedisSessions) Start(now time.Time) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("session id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	ctx, cancel := s.r.ctx()
	defer cancel()
	if err := s.r.c.Set(ctx, s.r.key("session", id), "1", s.ttl).Err(); err != nil {
		return "", time.Time{}, fmt.Errorf("session in redis: %w", err)
	}
	return id, now.Add(s.ttl), nil
}

// Valid reports whether id is a live session (Redis's TTL decides).
func (s *RedisSessions) Valid(id string, _ time.Time) bool {
	if id == "" {
		return false
	}
	ctx, cancel := s.r.ctx()
	defer cancel()
	n, err := s.r.c.Exists(ctx, s.r.key("session", id)).Result()
	return err == nil && n == 1
}

// End ends the session id.
func (s *RedisSessions) End(id string) {
	ctx, cancel := s.r.ctx()
	defer cancel()
	s.r.c.Del(ctx, s.r.key("session", id))
}

// Prune does nothing: Redis expires sessions itself.
func (s *RedisSessions) Prune(time.Time) {}
