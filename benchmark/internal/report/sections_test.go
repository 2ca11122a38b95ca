package report

import (
	"strings"
	"testing"
)

const shared = `# Old title

old intro

## Ring

ring figures
` + "```" + `
## not a heading: inside a fence
` + "```" + `

## Hook cost

old hook table

## Agent

agent figures
`

func TestSpliceReplacesOnlyGivenSections(t *testing.T) {
	got := Splice(shared, "# Benchmarks\n\nnew intro\n", []Section{
		{"Hook cost", "new hook table"},
	})
	containsAll(t, "the document", got,
		"# Benchmarks\n\nnew intro\n\n## Ring\n",
		"ring figures\n```\n## not a heading: inside a fence\n```\n",
		"## Hook cost\n\nnew hook table\n",
		"## Agent\n\nagent figures\n",
	)
	for _, gone := range []string{"old intro", "old hook table", "# Old title"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q still there:\n%s", gone, got)
		}
	}
}

func TestSpliceInsertsNewSectionsAfterTheirPredecessor(t *testing.T) {
	got := Splice(shared, "# B", []Section{
		{"Hook cost", "h"},
		{"Transports", "t"},
		{"Pipeline", "p"},
	})
	iHook := strings.Index(got, "## Hook cost")
	iTr := strings.Index(got, "## Transports")
	iPipe := strings.Index(got, "## Pipeline")
	iAgent := strings.Index(got, "## Agent")
	if !(iHook < iTr && iTr < iPipe && iPipe < iAgent) {
		t.Errorf("order hook %d, transports %d, pipeline %d, agent %d; want rising:\n%s",
			iHook, iTr, iPipe, iAgent, got)
	}
}

func TestSpliceIntoEmptyDoc(t *testing.T) {
	got := Splice("", "# B\n", []Section{{"Hook cost", "h\n"}, {"Pipeline", "p"}})
	want := "# B\n\n## Hook cost\n\nh\n\n## Pipeline\n\np\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSpliceIsStable(t *testing.T) {
	secs := []Section{{"Hook cost", "h"}, {"Transports", "t"}}
	once := Splice(shared, "# B", secs)
	if twice := Splice(once, "# B", secs); twice != once {
		t.Errorf("second splice changed the document:\n%s\n---\n%s", once, twice)
	}
}

// containsAll fails t for each of want that text (what, in the message)
// does not hold.
func containsAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestHeaderIsWhatPrecedesTheFirstSection(t *testing.T) {
	if h := Header(shared); h != "# Old title\n\nold intro\n\n" {
		t.Fatalf("Header = %q", h)
	}
	if h := Header(""); h != "" {
		t.Fatalf("Header of nothing = %q", h)
	}
}
