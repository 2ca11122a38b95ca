// SPDX-License-Identifier: GPL-2.0

package harness

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The VM result channel: a program in the guest prints its JSON result,
// gzip'd and base64'd in 76-column lines, between two marker lines on the
// console, and the host takes it from the console log:
//
//	SMITH-<KIND>-JSON-BEGIN
//	H4sIAAAAAAAA/6pWKso...
//	SMITH-<KIND>-JSON-END
//
// A program may print several blocks (checkpoints of a result that grows);
// the decoder takes the last complete one, so that a guest that dies while
// printing still hands back its previous block.  The begin line may carry
// a prefix (the console's timestamp or noise), the end line may not; a
// line of another program that falls inside a block makes it undecodable,
// which is an error, not a silent loss.

// Kinds of result on the console.
const (
	ResultBench = "BENCH" // smith-bench-guest, read by smith-bench vmresult
	ResultSoak  = "SOAK"  // smith-soak run, read by smith-soak report
)

// ResultBegin and ResultEnd are the marker lines of kind.
func ResultBegin(kind string) string { return "SMITH-" + kind + "-JSON-BEGIN" }

// ResultEnd is the line that ends a block of kind.
func ResultEnd(kind string) string { return "SMITH-" + kind + "-JSON-END" }

// EncodeResult writes v as one marked block of kind, in a single write so
// that the block is not interleaved with the program's other output.
func EncodeResult(w io.Writer, kind string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("result: %w", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw) // a bytes.Buffer does not fail; Close reports gzip's errors
	if err := zw.Close(); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	var b strings.Builder
	b.WriteString(ResultBegin(kind) + "\n")
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n" + ResultEnd(kind) + "\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	return nil
}

// DecodeResult returns the JSON of the last complete block of kind in a
// console log.
func DecodeResult(r io.Reader, kind string) ([]byte, error) {
	begin, end := ResultBegin(kind), ResultEnd(kind)
	var (
		b64    strings.Builder
		inside bool
		found  string
		begun  bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasSuffix(line, begin):
			inside, begun = true, true
			b64.Reset()
		case line == end && inside:
			inside = false
			found = b64.String()
		case inside:
			b64.WriteString(line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read console: %w", err)
	}
	if found == "" {
		if begun {
			return nil, fmt.Errorf("result not complete (no %s after %s)", end, begin)
		}
		return nil, fmt.Errorf("no %s: the guest wrote no result", begin)
	}
	gz, err := base64.StdEncoding.DecodeString(found)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	return raw, nil
}
