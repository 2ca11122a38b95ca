package encode

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"smith/agent/decode"
)

const hex = "0123456789abcdef"

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of x is a control
// character, '"', '\\' or past ASCII, so that all are copied as they are.
func plain8(x uint64) bool { return special8(x) == 0 }

// special8 has the high bit set of the first byte of x (little-endian)
// that is a control character, '"', '\\' or past ASCII, and maybe of
// later ones; 0 when all eight are plain.
func special8(x uint64) uint64 {
	lt20 := (x - 0x20*ones) &^ x // a high bit where a byte < 0x20
	q := x ^ '"'*ones            // a zero byte where a '"'
	b := x ^ '\\'*ones           // a zero byte where a '\\'
	return (x | lt20 | (q-ones)&^q | (b-ones)&^b) & highs
}

// appendString appends s as a JSON string.  Control characters are
// escaped; bytes that are not valid UTF-8 become U+FFFD (one per byte, so
// the output is deterministic); everything else is copied as is.
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends the inside of a JSON string holding s.
func appendEscaped[T string | []byte](dst []byte, s T) []byte {
	return appendEscapedSep(dst, s, "")
}

// appendEscapedSep is appendEscaped, except that each NUL byte of s
// becomes sep when sep is not empty (argv's separators, in one pass).
func appendEscapedSep[T string | []byte](dst []byte, str T, sep string) []byte {
	dst, _ = appendEscapedValid(dst, str, sep)
	return dst
}

// appendEscapedValid is appendEscapedSep that also reports whether s was
// valid UTF-8 (no U+FFFD substituted): what validUTF8 would say, without
// a second pass.  One copy for strings and bytes: a string is read
// through a byte view of its data (never written), so the word loads
// are single loads.
func appendEscapedValid[T string | []byte](dst []byte, str T, sep string) ([]byte, bool) {
	var s []byte
	switch v := any(str).(type) {
	case string:
		s = unsafe.Slice(unsafe.StringData(v), len(v))
	case []byte:
		s = v
	}
	return escapeValid(dst, s, sep)
}

// escapeValid is appendEscapedValid on bytes (one copy of the loop for
// both instantiations).
func escapeValid(dst, s []byte, sep string) ([]byte, bool) {
	start, valid := 0, true
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own,
		// then straight to the first that does.
		if i+8 <= len(s) {
			m := special8(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		} else if plain8(tailWord(s, i)) {
			break // the last bytes, fewer than eight, are all plain
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case c == 0 && sep != "":
				dst = append(dst, sep...)
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		var buf [utf8.UTFMax]byte
		n := copy(buf[:], s[i:])
		r, size := utf8.DecodeRune(buf[:n])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start, valid = i, false
			continue
		}
		i += size
	}
	return append(dst, s[start:]...), valid
}

// tailWord is the bytes of s from i on, fewer than eight, as a word: the
// last eight bytes of s when s has them (the bytes before i were looked
// at already, and a plain byte there changes nothing), else s[i:] padded
// with plain bytes.
func tailWord(s []byte, i int) uint64 {
	if len(s) >= 8 {
		return binary.LittleEndian.Uint64(s[len(s)-8:])
	}
	w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
	copy(w[:], s[i:])
	return binary.LittleEndian.Uint64(w[:])
}

// validUTF8 reports whether s needs no U+FFFD substitution.
func validUTF8(s []byte) bool { return utf8.Valid(s) }

// appendKey appends ,"key": (the comma only when the object has a member).
func appendKey(dst []byte, key string) []byte {
	if c := dst[len(dst)-1]; c != '{' && c != '[' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendStrField[T string | []byte](dst []byte, key string, v T) []byte {
	return appendString(appendKey(dst, key), v)
}

// appendPathField appends field id under its name and, when v is not
// valid UTF-8, its exact bytes (appendB64), so no path is ever lost to
// U+FFFD.
func appendPathField(dst []byte, id int, v []byte) []byte {
	dst = append(appendKey(dst, decode.Fields[id].Name), '"')
	dst, valid := escapeValid(dst, v, "")
	return appendExact(append(dst, '"'), id, v, valid)
}

// appendB64 appends name_b64 with the exact bytes of field id's value v
// when v is not valid UTF-8.
func appendB64(dst []byte, id int, v []byte) []byte { return appendExact(dst, id, v, validUTF8(v)) }

// appendExact is appendB64 for a v whose validity an escape pass has
// told already.
func appendExact(dst []byte, id int, v []byte, valid bool) []byte {
	if !valid {
		dst = appendKey(dst, b64Names[id])
		dst = appendBase64(dst, v)
	}
	return dst
}

func appendBase64(dst, v []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, v)
	return append(dst, '"')
}

func appendUintField(dst []byte, key string, v uint64) []byte {
	return appendUint(appendKey(dst, key), v)
}

// appendUint is strconv.AppendUint in base 10, one- and two-digit numbers
// (most of an event's: ids, flags, families, small pids) written in place
// without a call.
func appendUint(dst []byte, v uint64) []byte {
	if v < 10 {
		return append(dst, byte('0'+v))
	}
	if v < 100 {
		return append(dst, byte('0'+v/10), byte('0'+v%10))
	}
	return strconv.AppendUint(dst, v, 10)
}

func appendIntField(dst []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(dst, key), v, 10)
}

func appendBoolField(dst []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendKey(dst, key), v)
}

// appendArgs appends the arguments of a NUL-separated argv as a JSON
// array.  One trailing NUL (the terminator of the last argument) does not
// start another argument, so join(args, NUL) is argv without it.  One
// pass over argv: each NUL closes a string and opens the next.
func appendArgs(dst, argv []byte) []byte {
	dst, _ = appendArgsValid(dst, argv)
	return dst
}

// appendArgsValid is appendArgs that also reports whether argv was valid
// UTF-8 (appendEscapedValid).
func appendArgsValid(dst, argv []byte) ([]byte, bool) {
	valid := true
	dst = append(dst, '[')
	if len(argv) > 0 {
		dst = append(dst, '"')
		dst, valid = escapeValid(dst, trimArgv(argv), `","`)
		dst = append(dst, '"')
	}
	return append(dst, ']'), valid
}

// appendCommandLine appends argv with its NULs as spaces (the seed's
// "argv"): for reading and grepping; args is the exact form.
func appendCommandLine(dst, argv []byte) []byte {
	dst = append(dst, '"')
	dst, _ = escapeValid(dst, trimArgv(argv), " ")
	return append(dst, '"')
}

var nul = []byte{0}

// trimArgv drops the NUL that terminates argv's last argument.
func trimArgv(argv []byte) []byte {
	if n := len(argv); n > 0 && argv[n-1] == 0 {
		return argv[:n-1]
	}
	return argv
}
