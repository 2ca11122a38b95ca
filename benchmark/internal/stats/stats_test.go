package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty gives zero", nil, Summary{}},
		{"one value is all three", []float64{7}, Summary{1, 7, 7, 7}},
		{"odd count takes the middle", []float64{9, 1, 5}, Summary{3, 1, 5, 9}},
		{"even count averages the middle two", []float64{4, 1, 3, 10}, Summary{4, 1, 3.5, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.in); got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("input reordered: %v", in)
	}
}

func TestRatioDividesByBaselineMedian(t *testing.T) {
	got := Summary{3, 110, 120, 150}.Ratio(Summary{3, 90, 100, 200})
	want := Summary{3, 1.1, 1.2, 1.5}
	if got != want {
		t.Errorf("Ratio = %+v, want %+v", got, want)
	}
	if r := (Summary{1, 1, 1, 1}).Ratio(Summary{}); !math.IsNaN(r.Median) {
		t.Errorf("ratio to an empty baseline = %v, want NaN", r.Median)
	}
}

func TestQuantileNearestRank(t *testing.T) {
	s := []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, tt := range []struct{ q, want float64 }{
		{0.5, 50}, {0.95, 100}, {0.1, 10}, {0.11, 20}, {1, 100},
	} {
		if got := Quantile(s, tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing is not NaN")
	}
}

func TestCDFSpansTheRangeAndRises(t *testing.T) {
	v := []float64{5, 3, 9, 1, 7, 2, 8, 4, 6, 10}
	xs, ps := CDF(v, 4)
	if len(xs) != 4 || len(ps) != 4 {
		t.Fatalf("got %d/%d points, want 4", len(xs), len(ps))
	}
	if xs[0] != 1 || xs[3] != 10 || ps[3] != 1 {
		t.Errorf("CDF ends (%v, %v) .. (%v, %v), want (1, _) .. (10, 1)", xs[0], ps[0], xs[3], ps[3])
	}
	for i := 1; i < len(xs); i++ {
		if xs[i] < xs[i-1] || ps[i] <= ps[i-1] {
			t.Errorf("CDF not rising at %d: %v %v", i, xs, ps)
		}
	}
	if xs, _ := CDF(v, 100); len(xs) != len(v) {
		t.Errorf("more points than samples: got %d, want %d", len(xs), len(v))
	}
}
