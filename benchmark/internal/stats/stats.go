// Package stats summarises benchmark samples: min/median/max over runs,
// nearest-rank quantiles and empirical CDFs.
package stats

import (
	"math"
	"slices"
)

// Summary is what every reported figure carries: the spread over runs.
type Summary struct {
	Runs   int     `json:"runs"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Summarize returns the min, median and max of v; the zero Summary for no
// values.  The median of an even count is the mean of the middle two.
func Summarize(v []float64) Summary {
	if len(v) == 0 {
		return Summary{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Runs: n, Min: s[0], Median: med, Max: s[n-1]}
}

// Ratio divides each figure of s by base's median: how each run compares
// with the baseline's typical run.  NaN figures when base has no median.
func (s Summary) Ratio(base Summary) Summary {
	d := base.Median
	if d == 0 {
		d = math.NaN()
	}
	return Summary{Runs: s.Runs, Min: s.Min / d, Median: s.Median / d, Max: s.Max / d}
}

// Quantile returns the nearest-rank q-quantile (0 < q <= 1) of sorted.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// CDF returns at most points (x, F(x)) pairs of the empirical distribution
// of v, evenly spaced in rank, always including the smallest and largest
// value.  v is not modified.
func CDF(v []float64, points int) (xs, ps []float64) {
	if len(v) == 0 || points < 2 {
		return nil, nil
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	points = min(points, n)
	for k := 0; k < points; k++ {
		i := k * (n - 1) / (points - 1)
		xs = append(xs, s[i])
		ps = append(ps, float64(i+1)/float64(n))
	}
	return xs, ps
}
