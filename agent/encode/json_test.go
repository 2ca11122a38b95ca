// SPDX-License-Identifier: GPL-2.0

package encode

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The word-at-a-time path must agree with the byte loop on every byte
// value at every position of a word.
func TestPlain8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			var x uint64
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(w[i])
			}
			want := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
			if got := plain8(x); got != want {
				t.Fatalf("byte %#x at %d: plain8 %v, want %v", c, pos, got, want)
			}
		}
	}
}

// appendEscaped gives the same output as the byte loop for strings that
// mix plain runs with every kind of byte that needs escaping.
func TestAppendEscapedWords(t *testing.T) {
	for _, s := range []string{
		"", "a", "abcdefg", "abcdefgh", "abcdefghi",
		strings.Repeat("x", 64) + "\"" + strings.Repeat("y", 7),
		"/usr/bin/curl\x00-sS\x00--max-time", "tab\there and \\ back",
		"caf\xc3\xa9 au lait, and a bad \xff byte " + strings.Repeat("z", 9),
		strings.Repeat("\x01", 17),
	} {
		got := string(appendEscaped(nil, s))
		want := string(escapeBytewise(nil, s))
		if got != want {
			t.Errorf("%q: %q, want %q", s, got, want)
		}
		if b := string(appendEscaped(nil, []byte(s))); b != want {
			t.Errorf("%q as bytes: %q, want %q", s, b, want)
		}
	}
}

// appendEscapedValid's verdict is utf8.Valid's (appendPathField writes
// name_b64 on it), its output appendEscaped's: multi-byte runes, a
// literal U+FFFD, surrogates, overlong forms, a rune cut at the end, and
// bad bytes inside and after a word of plain ones.
func TestAppendEscapedValid(t *testing.T) {
	for _, s := range []string{
		"", "plain/ascii/path", "caf\xc3\xa9", "\xef\xbf\xbd literal U+FFFD", "\xed\xa0\x80",
		"\xc0\xaf", "cut \xe2\x82", strings.Repeat("p", 8) + "\xff", strings.Repeat("p", 13) + "\x80q",
		"\U0001F600 " + strings.Repeat("w", 9), "tab\tand \"quote\"",
	} {
		got, valid := appendEscapedValid(nil, []byte(s), "")
		if want := utf8.ValidString(s); valid != want {
			t.Errorf("%q: valid %v, want %v", s, valid, want)
		}
		if want := appendEscaped(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: %q, want %q", s, got, want)
		}
	}
}

// FuzzAppendEscapedValid: for any bytes, the one pass says what
// utf8.Valid says.
func FuzzAppendEscapedValid(f *testing.F) {
	for _, s := range []string{"", "a\xffb", "\xe2\x82\xac", strings.Repeat("x", 9) + "\xc3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, valid := appendEscapedValid(nil, b, ""); valid != utf8.Valid(b) {
			t.Fatalf("%q: valid %v, utf8.Valid %v", b, valid, !valid)
		}
	})
}

// escapeReference is the JSON string escaping of appendEscaped written
// rune by rune with no shared code: the reference of the fuzz target
// below.
func escapeReference(s []byte) []byte {
	var dst []byte
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, `\ufffd`...)
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r < 0x20:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = append(dst, s[:n]...)
		}
		s = s[n:]
	}
	return dst
}

// FuzzAppendEscapedMatchesReference: for any bytes (short tails, words
// with a special byte anywhere), the word-at-a-time escaping writes what
// the rune-by-rune reference writes.
func FuzzAppendEscapedMatchesReference(f *testing.F) {
	for _, s := range []string{"", "a", "a\"b", "1234567\n", "12345678\n", "abcdefghij\"k", "/usr/bin/curl",
		strings.Repeat("x", 15) + "\x01", "\xff" + strings.Repeat("y", 9), "caf\xc3\xa9 au lait"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := appendEscaped(nil, b), escapeReference(b); !bytes.Equal(got, want) {
			t.Fatalf("%q: %q, want %q", b, got, want)
		}
	})
}

// appendUint writes what strconv does, around the one- and two-digit
// fast paths and up to the largest value.
func TestAppendUint(t *testing.T) {
	for _, v := range []uint64{0, 1, 9, 10, 11, 42, 99, 100, 101, 999, 1000, 65535, 4026531836, 1<<63 + 5, ^uint64(0)} {
		if got, want := string(appendUint([]byte("x"), v)), "x"+strconv.FormatUint(v, 10); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}

// escapeBytewise is appendEscaped without the word-at-a-time path: one
// character (or one invalid byte) per call, never eight bytes.
func escapeBytewise(dst []byte, s string) []byte {
	for len(s) > 0 {
		_, n := utf8.DecodeRuneInString(s)
		dst = appendEscaped(dst, s[:n])
		s = s[n:]
	}
	return dst
}

// joinedReference is how args and the command line were written before
// the one-pass form: argv cut at each NUL, each argument escaped alone.
func joinedReference(argv []byte, sep byte, quoted bool) []byte {
	var dst []byte
	for i, arg := range bytes.Split(trimArgv(argv), nul) {
		if i > 0 {
			dst = append(dst, sep)
		}
		if quoted {
			dst = appendString(dst, arg)
		} else {
			dst = appendEscaped(dst, arg)
		}
	}
	return dst
}

// appendArgs and appendCommandLine escape argv in one pass, with every
// NUL as a separator, and give what escaping each argument alone gives:
// empty arguments, a trailing NUL or two, invalid UTF-8 cut by a NUL,
// control characters and quotes next to separators.
func TestArgvOnePass(t *testing.T) {
	for _, argv := range []string{
		"", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x00", "\x00a", "a\x00\x00b\x00",
		"python3\x00-m\x00http.server\x00--bind\x00127.0.0.1\x008080\x00",
		"caf\xc3\x00\xa9\x00\xff\x00\xe2\x82", "\"q\"\x00\\\x00\n\t\x01\x00" + strings.Repeat("long-argument-", 9) + "\x00",
		strings.Repeat("\x00", 17), strings.Repeat("abcdefg\x00", 9),
	} {
		b := []byte(argv)
		wantArgs := "[]"
		if len(b) > 0 {
			wantArgs = "[" + string(joinedReference(b, ',', true)) + "]"
		}
		if got := string(appendArgs(nil, b)); got != wantArgs {
			t.Errorf("args of %q: %s, want %s", argv, got, wantArgs)
		}
		wantCmd := `"` + string(joinedReference(b, ' ', false)) + `"`
		if got := string(appendCommandLine(nil, b)); got != wantCmd {
			t.Errorf("command line of %q: %s, want %s", argv, got, wantCmd)
		}
	}
}

// appendIP writes every address as netip does: each octet value in
// each position of an IPv4 address, and IPv6 ones (mapped included).
func TestAppendIP(t *testing.T) {
	check := func(a netip.Addr) {
		t.Helper()
		if got, want := string(appendIP(nil, a)), a.String(); got != want {
			t.Fatalf("%v: %q, want %q", a.AsSlice(), got, want)
		}
	}
	for v := 0; v < 256; v++ {
		for pos := 0; pos < 4; pos++ {
			b := [4]byte{1, 20, 255, 0}
			b[pos] = byte(v)
			check(netip.AddrFrom4(b))
		}
	}
	for _, s := range []string{"::", "::1", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1:2:3:4"} {
		check(netip.MustParseAddr(s))
	}
}
