package decode

import (
	"unsafe"

	"smith/shm"
)

// The parts of kernel/smith_abi.h the decoder reads, taken from its Go
// mirror (smith/shm, checked against the C header by shm's tests) and
// renamed for the decoder's callers.

// Sizes of the fixed parts of a record, in bytes.
const (
	recHdrSize   = shm.SizeofRecHdr
	eventSize    = int(unsafe.Sizeof(shm.Event{}))
	fieldHdrSize = int(unsafe.Sizeof(shm.Field{}))
	lostSize     = int(unsafe.Sizeof(shm.Lost{}))
	connectSize  = int(unsafe.Sizeof(shm.ConnectInfo{}))
	commSize     = len(shm.Event{}.Comm)
)

// Bits of smith_rec_hdr.len and the largest record a producer writes.
const (
	recBusy    = shm.RecBusy
	recDiscard = shm.RecDiscard
	recLenMask = shm.RecLenMask
	// MaxRecord is SMITH_REC_MAX_LEN: no valid record is longer.
	MaxRecord = shm.RecMaxLen
)

// Record types (enum smith_rec_type).
const (
	TypePad         = uint16(shm.RecPad)
	TypeLost        = uint16(shm.RecLost)
	TypeTest        = uint16(shm.RecTest)
	TypeConnect     = uint16(shm.EvConnect)
	TypeExecve      = uint16(shm.EvExecve)
	TypeInitModule  = uint16(shm.EvInitModule)
	TypeFinitModule = uint16(shm.EvFinitModule)
)

// Record flags (smith_rec_hdr.flags, SMITH_RF_*).
const (
	FlagTruncated = uint16(shm.RFTruncated)
	FlagFault     = uint16(shm.RFFault)
	FlagExecveat  = uint16(shm.RFExecveat)
	FlagCompat    = uint16(shm.RFCompat)
	FlagNoResult  = uint16(shm.RFNoResult)
	FlagRestart   = uint16(shm.RFRestart)
	FlagFastOpen  = uint16(shm.RFFastOpen)
)

// Field flags (smith_field.flags, SMITH_FF_*).
const (
	FieldTruncated = uint16(shm.FFTruncated)
	FieldFault     = uint16(shm.FFFault)
)

// Field ids (enum smith_field_id).
const (
	FieldExe       = uint16(shm.FExe)
	FieldNodename  = uint16(shm.FNodename)
	FieldFilename  = uint16(shm.FFilename)
	FieldArgv      = uint16(shm.FArgv)
	FieldCwd       = uint16(shm.FCwd)
	FieldStdin     = uint16(shm.FStdin)
	FieldStdout    = uint16(shm.FStdout)
	FieldTTY       = uint16(shm.FTTY)
	FieldConnectID = uint16(shm.FConnect)
	FieldModName   = uint16(shm.FModName)
	FieldModPath   = uint16(shm.FModPath)
	FieldModParams = uint16(shm.FModParams)
	// maxFieldID is the highest id this decoder knows; higher ids are
	// skipped.
	maxFieldID = FieldModParams
)

// The decoder reads fields at fixed offsets; fail the build if the mirror
// ever disagrees with them.
var _ = [1]struct{}{}[eventSize-96]
var _ = [1]struct{}{}[connectSize-48]
