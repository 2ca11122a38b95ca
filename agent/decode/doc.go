// Package decode turns the binary records of kernel/smith_abi.h into Go
// values without allocating.
//
// A record is a struct smith_rec_hdr, then for events a fixed struct
// smith_event and nfields TLV fields (struct smith_field, the value, padding
// to 8 bytes).  Decode fills a caller-owned Event whose byte slices point
// into the record: they are valid only as long as the record bytes are,
// which for a ring lease means until the lease is committed.  What must
// outlive the record has to be copied (package encode writes it into its
// own buffer before the commit).
//
// Every length is checked against the record and the record against
// MaxRecord; corrupt input gives an error wrapping ErrCorrupt, never a panic
// or a read outside the slice.  Unknown record types and unknown field ids
// are skipped, so an older agent reads a newer module (ABI minor versions
// only add).
//
// Events, Fields and RecordFlags (events.go) are the event table: each
// event type's name, data type, ECS category and type and fields, each
// field's name and where ECS puts it, each flag's name.  The encoder and
// the soak reconciler take these names from it (tests check the places
// the encoder writes against it).  The offsets the decoder reads come from
// the struct types of smith/shm (unsafe.Offsetof), not from numbers.
//
// The package also builds records (AppendEvent, AppendLost) the way the
// module does, so tests and benchmarks need no kernel.
package decode
