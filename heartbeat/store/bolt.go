package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The registry persists in one bbolt file: pure Go (the console stays a
// static CGO-free binary), one writer with ACID transactions, and a
// single file an operator can back up; the registry is a key/value map
// (host id -> record), so SQL would buy nothing.
var (
	hostsBucket = []byte("hosts")
	seenBucket  = []byte("seen") // host id -> Seen, written by routine heartbeats
	metaBucket  = []byte("meta")
	schemaKey   = []byte("schema")
)

// schemaVersion changes when Record's encoding stops being readable by
// the previous code.
const schemaVersion = "1"

// DB is the on-disk half of the registry.
type DB struct {
	db   *bolt.DB
	path string
}

// OpenDB opens (creating if needed) the registry file at path. It fails
// fast when another process holds the file.
func OpenDB(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open registry %s: locked by another process (is another smith-console running?)", path)
		}
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(hostsBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(seenBucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		switch v := meta.Get(schemaKey); {
		case v == nil:
			return meta.Put(schemaKey, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("schema version %q, this console reads %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	return &DB{db: db, path: path}, nil
}

// Load returns every stored record.
func (d *DB) Load() ([]*Record, error) {
	var out []*Record
	seen := map[string][]byte{}
	err := d.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(hostsBucket).ForEach(func(k, v []byte) error {
			r := new(Record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("host %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(seenBucket).ForEach(func(k, v []byte) error {
			seen[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err == nil {
		err = mergeSeen(out, seen)
	}
	if err != nil {
		return nil, fmt.Errorf("load registry %s: %w", d.path, err)
	}
	return out, nil
}

// Encoded is one record ready to write: its key (the host id), JSON, and
// the SHA-256 of its credential (a shared backend indexes it).
type Encoded struct {
	Key, Value []byte
	Credential string
}

func encode(r *Record) (Encoded, error) {
	v, err := json.Marshal(r)
	if err != nil {
		return Encoded{}, fmt.Errorf("encode host %q: %w", r.HostID, err)
	}
	return Encoded{Key: []byte(r.HostID), Value: v, Credential: r.CredentialSHA256}, nil
}

// Save writes the records and the Seen parts and deletes the hosts in
// gone, in one transaction.
func (d *DB) Save(records, seen []Encoded, gone [][]byte) error {
	if len(records) == 0 && len(seen) == 0 && len(gone) == 0 {
		return nil
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		b, sb := tx.Bucket(hostsBucket), tx.Bucket(seenBucket)
		for _, r := range records {
			if err := b.Put(r.Key, r.Value); err != nil {
				return fmt.Errorf("host %q: %w", r.Key, err)
			}
		}
		for _, s := range seen {
			if err := sb.Put(s.Key, s.Value); err != nil {
				return fmt.Errorf("host %q: %w", s.Key, err)
			}
		}
		for _, id := range gone {
			if err := b.Delete(id); err != nil {
				return fmt.Errorf("host %q: %w", id, err)
			}
			if err := sb.Delete(id); err != nil {
				return fmt.Errorf("host %q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save registry %s: %w", d.path, err)
	}
	return nil
}

// SwapMeta stores value under key in the meta bucket and returns what
// was there before (nil when nothing).
func (d *DB) SwapMeta(key string, value []byte) ([]byte, error) {
	var old []byte
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(metaBucket)
		if v := b.Get([]byte(key)); v != nil {
			old = append([]byte(nil), v...)
		}
		return b.Put([]byte(key), value)
	})
	if err != nil {
		return nil, fmt.Errorf("registry %s: meta %s: %w", d.path, key, err)
	}
	return old, nil
}

// Close closes the file.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close registry %s: %w", d.path, err)
	}
	return nil
}
