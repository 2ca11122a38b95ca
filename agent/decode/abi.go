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
	exeIDSize    = int(unsafe.Sizeof(shm.ExeID{}))
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
	// FieldExeID (ABI 1.2) is parsed into Event.ExeID, never kept in
	// Event.Fields: it is no output field.
	FieldExeID = uint16(shm.FExeID)
	// maxFieldID is the highest id this decoder knows; higher ids are
	// skipped.
	maxFieldID = FieldExeID
)

// Byte offsets the decoder reads and AppendEvent writes, all from the
// mirror's struct types: of struct smith_rec_hdr and smith_lost ...
const (
	offType      = int(unsafe.Offsetof(shm.RecHdr{}.Type))
	offFlags     = int(unsafe.Offsetof(shm.RecHdr{}.Flags))
	offLostCount = int(unsafe.Offsetof(shm.Lost{}.Count))
)

// ... of struct smith_event ...
const (
	offTimeNs   = int(unsafe.Offsetof(shm.Event{}.TimeNs))
	offResult   = int(unsafe.Offsetof(shm.Event{}.Result))
	offPid      = int(unsafe.Offsetof(shm.Event{}.PID))
	offTgid     = int(unsafe.Offsetof(shm.Event{}.TGID))
	offPpid     = int(unsafe.Offsetof(shm.Event{}.PPID))
	offPgid     = int(unsafe.Offsetof(shm.Event{}.PGID))
	offSid      = int(unsafe.Offsetof(shm.Event{}.SID))
	offUID      = int(unsafe.Offsetof(shm.Event{}.UID))
	offEUID     = int(unsafe.Offsetof(shm.Event{}.EUID))
	offGID      = int(unsafe.Offsetof(shm.Event{}.GID))
	offPidNS    = int(unsafe.Offsetof(shm.Event{}.PIDNs))
	offMntNS    = int(unsafe.Offsetof(shm.Event{}.MntNs))
	offCgroupID = int(unsafe.Offsetof(shm.Event{}.CgroupID))
	offComm     = int(unsafe.Offsetof(shm.Event{}.Comm))
	offNFields  = int(unsafe.Offsetof(shm.Event{}.NFields))
	offCPU      = int(unsafe.Offsetof(shm.Event{}.CPU))
)

// ... of struct smith_connect_info ...
const (
	offFamily     = int(unsafe.Offsetof(shm.ConnectInfo{}.Family))
	offProtocol   = int(unsafe.Offsetof(shm.ConnectInfo{}.Protocol))
	offFD         = int(unsafe.Offsetof(shm.ConnectInfo{}.FD))
	offRemoteAddr = int(unsafe.Offsetof(shm.ConnectInfo{}.RemoteAddr))
	offLocalAddr  = int(unsafe.Offsetof(shm.ConnectInfo{}.LocalAddr))
	offRemotePort = int(unsafe.Offsetof(shm.ConnectInfo{}.RemotePort))
	offLocalPort  = int(unsafe.Offsetof(shm.ConnectInfo{}.LocalPort))
	addrSize      = len(shm.ConnectInfo{}.RemoteAddr)
)

// ... and of struct smith_exe_id.
const (
	offExeIno       = int(unsafe.Offsetof(shm.ExeID{}.Ino))
	offExeSize      = int(unsafe.Offsetof(shm.ExeID{}.Size))
	offExeMtimeSec  = int(unsafe.Offsetof(shm.ExeID{}.MtimeSec))
	offExeCtimeSec  = int(unsafe.Offsetof(shm.ExeID{}.CtimeSec))
	offExeMtimeNsec = int(unsafe.Offsetof(shm.ExeID{}.MtimeNsec))
	offExeCtimeNsec = int(unsafe.Offsetof(shm.ExeID{}.CtimeNsec))
	offExeDev       = int(unsafe.Offsetof(shm.ExeID{}.Dev))
)

// Offsets of struct smith_field.
const (
	offFieldID    = int(unsafe.Offsetof(shm.Field{}.ID))
	offFieldFlags = int(unsafe.Offsetof(shm.Field{}.Flags))
	offFieldLen   = int(unsafe.Offsetof(shm.Field{}.Len))
)
