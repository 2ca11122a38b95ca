package shm

import "unsafe"

// The Go mirror of kernel/smith_abi.h, the one definition of the
// kernel/user ABI. abi_test.go compiles a C program against the header and
// fails if any constant, size or offset here disagrees with it, and if the
// header gains a definition this file does not mirror.

// ABI version: a reader accepts any minor of the major it was built for.
const (
	ABIMajor = 1
	ABIMinor = 2
)

// RingMagic is smith_ring_meta.magic: "SMTH" little-endian.
const RingMagic = 0x48544d53

// DeviceName is the misc device's name; the node is /dev/smith.
const DeviceName = "smith"

// Data area sizes in bytes; always a power of two.
const (
	RingDefaultSize = 2 << 20
	RingMinSize     = 64 << 10
	RingMaxSize     = 256 << 20
)

// RecMaxLen bounds every record; a ring's own bound (RingMeta.MaxRecord)
// is min(RecMaxLen, data size / 4).
const RecMaxLen = 64 << 10

// mmap offsets of /dev/smith, in pages.
const (
	MmapConsumerPgoff = 0
	MmapMetaPgoff     = 1
	MmapDataPgoff     = 2
)

// RingConsumer is struct smith_ring_consumer: the only page user space
// writes.
type RingConsumer struct {
	ConsumerPos uint64 // commit position: producers may reuse every byte before it
	ReadPos     uint64 // 1.1: every record before it has been read; wake-ups count from here
	WakeupBytes uint64 // 1.1: wake once producer_pos - read_pos reaches it; 0: first record
}

// Counters are the totals in the meta page (struct smith_ring_meta from
// offset SMITH_META_COUNTERS_OFFSET), updated by producers with atomic adds.
type Counters struct {
	Written         uint64 // records committed
	DroppedFull     uint64 // not written: ring had no room
	DroppedTooLarge uint64 // not written: longer than max_record
	DroppedFault    uint64 // not written: user memory unreadable
	Truncated       uint64 // written with at least one field cut
	HookMissed      uint64 // calls a probe could not see
	LostRecords     uint64 // "lost N" records written
	Discarded       uint64 // reserved, then discarded by the producer
}

// Dropped is the number of records that never reached the ring.
func (c Counters) Dropped() uint64 {
	return c.DroppedFull + c.DroppedTooLarge + c.DroppedFault
}

// RingMeta is struct smith_ring_meta, the read-only producer page.
type RingMeta struct {
	Magic       uint32
	ABIMajor    uint16
	ABIMinor    uint16
	PageSize    uint32
	MaxRecord   uint32
	DataSize    uint64
	DataOffset  uint64
	_           [32]byte
	ProducerPos uint64
	_           [56]byte
	Counters
}

// Byte offsets and sizes of the shared pages.
const (
	SizeofRingConsumer   = int(unsafe.Sizeof(RingConsumer{}))
	SizeofRingMeta       = int(unsafe.Sizeof(RingMeta{}))
	OffsetofConsumerPos  = int(unsafe.Offsetof(RingConsumer{}.ConsumerPos))
	OffsetofReadPos      = int(unsafe.Offsetof(RingConsumer{}.ReadPos))
	OffsetofWakeupBytes  = int(unsafe.Offsetof(RingConsumer{}.WakeupBytes))
	OffsetofProducerPos  = int(unsafe.Offsetof(RingMeta{}.ProducerPos))
	MetaCountersOffset   = int(unsafe.Offsetof(RingMeta{}.Counters))
	SizeofCounters       = int(unsafe.Sizeof(Counters{}))
	OffsetofMetaDataSize = int(unsafe.Offsetof(RingMeta{}.DataSize))
)

// Bits of RecHdr.Len.
const (
	RecBusy    = 1 << 31
	RecDiscard = 1 << 30
	RecLenMask = RecDiscard - 1
)

// RecAlign is SMITH_REC_ALIGN: the bytes a record of len bytes occupies.
func RecAlign(n uint32) uint32 { return (n + 7) &^ 7 }

// RecHdr is struct smith_rec_hdr, the first 8 bytes of every record.
type RecHdr struct {
	Len   uint32 // bytes, header included | RecBusy | RecDiscard
	Type  RecType
	Flags RecFlags
}

// SizeofRecHdr is the size of the record header.
const SizeofRecHdr = int(unsafe.Sizeof(RecHdr{}))

// RecType is enum smith_rec_type. Event ids are the x86_64 syscall numbers
// of the original sensor.
type RecType uint16

// Record types.
const (
	RecPad        RecType = 0 // ring filler, always discarded
	RecLost       RecType = 1 // Lost
	RecTest       RecType = 2 // TestRec + payload
	EvConnect     RecType = 42
	EvExecve      RecType = 59 // execveat: RFExecveat
	EvInitModule  RecType = 175
	EvFinitModule RecType = 313
)

// RecFlags are the bits of RecHdr.Flags.
type RecFlags uint16

// Record flags.
const (
	RFTruncated RecFlags = 1 << 0 // a field was cut at its cap
	RFFault     RecFlags = 1 << 1 // a user read failed: partial
	RFExecveat  RecFlags = 1 << 2 // the call was execveat
	RFCompat    RecFlags = 1 << 3 // 32-bit compat syscall
	RFNoResult  RecFlags = 1 << 4 // seen at entry only: result 0, unknown
	RFRestart   RecFlags = 1 << 5 // interrupted: EINTR or restarted
	RFFastOpen  RecFlags = 1 << 6 // connect: TCP Fast Open (sendto/sendmsg)
)

// Lost is struct smith_lost: Count records were dropped (any reason) since
// the previous lost record.
type Lost struct {
	Hdr   RecHdr
	Count uint64
}

// TestRec is struct smith_test_rec; the payload after it is
// (Seq + i) & 0xff for byte i.
type TestRec struct {
	Hdr      RecHdr
	Producer uint32
	_        uint32
	Seq      uint64
}

// Event is struct smith_event, followed by NFields fields.
type Event struct {
	Hdr      RecHdr
	TimeNs   uint64 // CLOCK_REALTIME, ns
	Result   int64  // syscall return value (-errno on error)
	PID      uint32 // thread id
	TGID     uint32 // process id
	PPID     uint32 // parent's tgid
	PGID     uint32
	SID      uint32
	UID      uint32
	EUID     uint32
	GID      uint32
	PIDNs    uint32 // pid namespace inode number
	MntNs    uint32 // mount namespace inode number
	CgroupID uint64 // cgroup v2 id; 0 if none
	Comm     [16]byte
	NFields  uint16
	CPU      uint16
	_        uint32
}

// Field is struct smith_field; Len bytes of value follow, then padding to
// the next 8-byte boundary.
type Field struct {
	ID    FieldID
	Flags FieldFlags
	Len   uint32
}

// FieldFlags are the bits of Field.Flags.
type FieldFlags uint16

// Field flags.
const (
	FFTruncated FieldFlags = 1 << 0 // value cut at its cap
	FFFault     FieldFlags = 1 << 1 // value unreadable or partial
)

// FieldID is enum smith_field_id.
type FieldID uint16

// Field ids. Readers skip ids they do not know.
const (
	FExe       FieldID = 1  // path of the task's executable
	FNodename  FieldID = 2  // UTS nodename
	FFilename  FieldID = 3  // execve: the path as passed
	FArgv      FieldID = 4  // execve: args, NUL-separated
	FCwd       FieldID = 5  //
	FStdin     FieldID = 6  // target of fd 0
	FStdout    FieldID = 7  // target of fd 1
	FTTY       FieldID = 8  // controlling tty name
	FConnect   FieldID = 9  // ConnectInfo
	FModName   FieldID = 10 // module name
	FModPath   FieldID = 11 // finit_module: the fd's path
	FModParams FieldID = 12 // module parameters string
	FExeID     FieldID = 13 // 1.2, execve: ExeID
)

// ExeID is struct smith_exe_id, the value of FExeID (ABI 1.2): the
// identity of the file a successful exec loaded, all zeros for a failed
// exec.
type ExeID struct {
	Ino       uint64
	Size      int64
	MtimeSec  int64
	CtimeSec  int64
	MtimeNsec uint32
	CtimeNsec uint32
	Dev       uint32 // as stat(2)'s st_dev encodes it
	_         uint32
}

// ConnectInfo is struct smith_connect_info, the value of FConnect.
type ConnectInfo struct {
	Family     uint16
	Protocol   uint16
	FD         int32
	RemoteAddr [16]byte
	LocalAddr  [16]byte
	RemotePort uint16 // host byte order
	LocalPort  uint16 // host byte order
	_          uint32
}

// Transports (module parameter send_type).
const (
	TransportNetlink = 1
	TransportSHM     = 2
)

// Netlink protocol number and message types.
const (
	NetlinkProto = 30
	NlmsgRecord  = 0x20
	NlmsgHello   = 0x21
)

// Info is struct smith_info (SMITH_IOC_GET_INFO).
type Info struct {
	ABIMajor      uint16
	ABIMinor      uint16
	Transport     uint32
	DataSize      uint64
	PageSize      uint32
	MaxRecord     uint32
	ArgvCap       uint32
	HooksAttached uint32 // bitmask of Hook*
	HooksFailed   uint32 // bitmask of Hook*
	_             uint32
	Version       [32]byte
}

// Hook bits of Info.HooksAttached and Info.HooksFailed; the bit number
// indexes Stats.Hooks.
const (
	HookExecve      = 1 << 0
	HookExecveat    = 1 << 1
	HookConnect     = 1 << 2
	HookInitModule  = 1 << 3
	HookFinitModule = 1 << 4
	HookCount       = 5
)

// HookStats is struct smith_hook_stats.
type HookStats struct {
	Events    uint64
	Missed    uint64
	Faults    uint64
	Truncated uint64
}

// Stats is struct smith_stats (SMITH_IOC_GET_STATS).
type Stats struct {
	Written         uint64
	DroppedFull     uint64
	DroppedTooLarge uint64
	DroppedFault    uint64
	Truncated       uint64
	HookMissed      uint64
	LostRecords     uint64
	Discarded       uint64
	NetlinkSent     uint64
	NetlinkFailed   uint64
	ProducerPos     uint64
	ConsumerPos     uint64
	Hooks           [HookCount]HookStats
}

// EmitTest is struct smith_emit_test (SMITH_IOC_EMIT_TEST).
type EmitTest struct {
	Count    uint32
	Len      uint32 // record len, header included
	Producer uint32
	_        uint32
	FirstSeq uint64
}

// Latency is struct smith_latency (SMITH_IOC_GET_LATENCY).
type Latency struct {
	Hook     uint32 // in: hook bit number
	_        uint32
	Count    uint64
	MedianNs uint64
	P95Ns    uint64
	P99Ns    uint64
	MaxNs    uint64
}

// ioctl numbers, encoded as the kernel's _IOC on x86 and arm64.
const (
	IocMagic = 'S'

	iocNone      = 0
	iocWrite     = 1
	iocRead      = 2
	iocNrShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30

	IocGetInfo      = iocRead<<iocDirShift | uint32(unsafe.Sizeof(Info{}))<<iocSizeShift | IocMagic<<iocTypeShift | 1<<iocNrShift
	IocGetStats     = iocRead<<iocDirShift | uint32(unsafe.Sizeof(Stats{}))<<iocSizeShift | IocMagic<<iocTypeShift | 2<<iocNrShift
	IocEmitTest     = iocWrite<<iocDirShift | uint32(unsafe.Sizeof(EmitTest{}))<<iocSizeShift | IocMagic<<iocTypeShift | 3<<iocNrShift
	IocGetLatency   = (iocRead|iocWrite)<<iocDirShift | uint32(unsafe.Sizeof(Latency{}))<<iocSizeShift | IocMagic<<iocTypeShift | 4<<iocNrShift
	IocResetLatency = iocNone<<iocDirShift | IocMagic<<iocTypeShift | 5<<iocNrShift
)
