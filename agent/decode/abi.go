package decode

// The parts of kernel/smith_abi.h the decoder reads.  The values are a
// stand-in until the Go mirror of the header (smith/shm, checked against
// the C header by a test) provides them; then these names refer to it.

// Sizes of the fixed parts of a record, in bytes.
const (
	recHdrSize   = 8  // struct smith_rec_hdr
	eventSize    = 96 // struct smith_event
	fieldHdrSize = 8  // struct smith_field
	lostSize     = 16 // struct smith_lost
	connectSize  = 48 // struct smith_connect_info
	commSize     = 16 // smith_event.comm
)

// Bits of smith_rec_hdr.len and the largest record a producer writes.
const (
	recBusy    = 1 << 31 // SMITH_REC_BUSY
	recDiscard = 1 << 30 // SMITH_REC_DISCARD
	recLenMask = recDiscard - 1
	// MaxRecord is SMITH_REC_MAX_LEN: no valid record is longer.
	MaxRecord = 64 << 10
)

// Record types (enum smith_rec_type).
const (
	TypePad         uint16 = 0
	TypeLost        uint16 = 1
	TypeTest        uint16 = 2
	TypeConnect     uint16 = 42
	TypeExecve      uint16 = 59
	TypeInitModule  uint16 = 175
	TypeFinitModule uint16 = 313
)

// Record flags (smith_rec_hdr.flags, SMITH_RF_*).
const (
	FlagTruncated uint16 = 1 << 0
	FlagFault     uint16 = 1 << 1
	FlagExecveat  uint16 = 1 << 2
	FlagCompat    uint16 = 1 << 3
)

// Field flags (smith_field.flags, SMITH_FF_*).
const (
	FieldTruncated uint16 = 1 << 0
	FieldFault     uint16 = 1 << 1
)

// Field ids (enum smith_field_id).
const (
	FieldExe       uint16 = 1
	FieldNodename  uint16 = 2
	FieldFilename  uint16 = 3
	FieldArgv      uint16 = 4
	FieldCwd       uint16 = 5
	FieldStdin     uint16 = 6
	FieldStdout    uint16 = 7
	FieldTTY       uint16 = 8
	FieldConnectID uint16 = 9
	FieldModName   uint16 = 10
	FieldModPath   uint16 = 11
	FieldModParams uint16 = 12
	// maxFieldID is the highest id this decoder knows; higher ids are
	// skipped.
	maxFieldID = FieldModParams
)
