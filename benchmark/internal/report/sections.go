// Package report writes benchmark results into docs/BENCHMARKS.md.
//
// The file is shared: other parts of the project keep their own "## "
// sections in it.  Splice rewrites only the header (everything before the
// first "## " heading) and the sections it is given, and leaves every
// other byte as it was.
package report

import "strings"

// Section is one "## Title" section: the heading line is generated from
// Title, Body follows it.
type Section struct {
	Title string
	Body  string
}

// Splice returns doc with its header replaced by header and each of the
// given sections' bodies replaced (heading matched by exact title).  A
// section not yet in doc is inserted after the last of the given sections
// already there, or after the header when none is, keeping the given order.
// Lines inside ``` fences are never taken for headings.
func Splice(doc, header string, sections []Section) string {
	_, parts := split(doc)
	mine := make(map[string]int, len(sections))
	for i, s := range sections {
		mine[s.Title] = i
	}
	var out []string
	placed := make([]bool, len(sections))
	// Sections not in doc yet go right after the previous given section,
	// so new ones keep their place among ours.
	flushFrom := func(i int) {
		for j := i; j < len(sections) && !placed[j]; j++ {
			if present(parts, sections[j].Title) {
				break
			}
			out = append(out, render(sections[j]))
			placed[j] = true
		}
	}
	flushFrom(0)
	for _, p := range parts {
		i, ok := mine[p.title]
		if !ok {
			out = append(out, p.text)
			continue
		}
		out = append(out, render(sections[i]))
		placed[i] = true
		flushFrom(i + 1)
	}
	for i := range sections {
		if !placed[i] {
			out = append(out, render(sections[i]))
		}
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(header, "\n"))
	b.WriteString("\n\n")
	for i, s := range out {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(strings.TrimRight(s, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// Header returns doc's header: everything before its first "## " heading.
func Header(doc string) string {
	h, _ := split(doc)
	return h
}

type part struct {
	title string // heading text after "## "
	text  string // heading line and body
}

func present(parts []part, title string) bool {
	for _, p := range parts {
		if p.title == title {
			return true
		}
	}
	return false
}

func render(s Section) string {
	return "## " + s.Title + "\n\n" + strings.Trim(s.Body, "\n") + "\n"
}

// split cuts doc into the header and its "## " sections.
func split(doc string) (string, []part) {
	var (
		head  strings.Builder
		parts []part
		cur   *strings.Builder
		fence bool
	)
	for _, line := range strings.SplitAfter(doc, "\n") {
		if line == "" {
			continue
		}
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(strings.TrimSpace(trimmed), "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(trimmed, "## ") {
			parts = append(parts, part{title: strings.TrimSpace(trimmed[3:])})
			cur = &strings.Builder{}
		}
		if cur == nil {
			head.WriteString(line)
			continue
		}
		cur.WriteString(line)
		parts[len(parts)-1].text = cur.String()
	}
	return head.String(), parts
}
