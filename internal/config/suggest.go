package config

// nearest returns the candidate closest to name in edit distance, or "" when
// none is close enough to be what was meant: at most two edits, or a quarter
// of name's length for long names.
func nearest(name string, candidates []string) string {
	best, bestD := "", max(2, len(name)/4)+1
	for _, c := range candidates {
		if d := distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b: the
// insertions, deletions, substitutions and swaps of adjacent bytes that turn
// one into the other. Names are ASCII, so bytes are characters.
func distance(a, b string) int {
	// Three rows: two back for swaps, one back, and the current one.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
