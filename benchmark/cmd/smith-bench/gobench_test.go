package main

import (
	"strings"
	"testing"
)

const benchOut = `goos: linux
goarch: amd64
pkg: smith/shm
cpu: AMD EPYC
BenchmarkReaderNext/64B-2         	 1000000	        80.5 ns/op	 795.12 MB/s	12.4e+06 records/s	       0 B/op	       0 allocs/op
BenchmarkReaderNext/64B-2         	 1000000	        82.0 ns/op	 780.00 MB/s	12.2e+06 records/s	       0 B/op	       0 allocs/op
PASS
ok  	smith/shm	3.1s
pkg: smith/agent/encode
BenchmarkEncodeExec-2   	  500000	      2100 ns/op	     16 B/op	       1 allocs/op
--- FAIL: BenchmarkBroken
Benchmark line that is not one
ok  	smith/agent/encode	2.0s
`

func TestParseGoBenchGroupsRunsByPackageAndName(t *testing.T) {
	got, err := parseGoBench(strings.NewReader(benchOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d benchmarks, want 2: %+v", len(got), got)
	}
	r := got[0]
	if r.Package != "smith/shm" || r.Name != "ReaderNext/64B" || len(r.Runs) != 2 {
		t.Errorf("first = %s %s with %d runs, want smith/shm ReaderNext/64B with 2", r.Package, r.Name, len(r.Runs))
	}
	if v := r.Runs[1]["records/s"]; v != 12.2e6 {
		t.Errorf("records/s of run 2 = %v, want 12.2e6", v)
	}
	if v := r.Runs[0]["allocs/op"]; v != 0 {
		t.Errorf("allocs/op = %v, want 0", v)
	}
	e := got[1]
	if e.Package != "smith/agent/encode" || e.Name != "EncodeExec" || e.Runs[0]["ns/op"] != 2100 || e.Runs[0]["allocs/op"] != 1 {
		t.Errorf("second = %+v", e)
	}
}

func TestParseGoBenchRejectsAGarbledValue(t *testing.T) {
	_, err := parseGoBench(strings.NewReader("pkg: p\nBenchmarkX-2 10 abc ns/op\n"))
	if err == nil {
		t.Error("garbled value accepted")
	}
}
