package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// safe makes a host-supplied string harmless on a terminal: control
// characters (C0, DEL, C1: escape sequences, carriage returns, tabs that
// would break the table), the bidirectional overrides that reorder what
// is shown, and invalid UTF-8 bytes are printed as Go escapes (\x1b,
// \u202e), so a host cannot move the cursor, recolour, hide or rewrite
// what an operator reads.
func safe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
		r == '\u2028' || r == '\u2029'
}

func safeAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = safe(s)
	}
	return out
}
