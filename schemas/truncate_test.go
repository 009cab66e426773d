package schemas

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdefgh", 6, "abc…"}, // the mark is 3 bytes, counted in n
		{"商品名称", 7, "商…"},       // 3-byte characters: never half of one
		{"商品名称", 8, "商…"},
		{"商品名称", 9, "商品…"},
		{"a商品", 6, "a…"},
		{"anything", 0, "…"},
	}
	for _, tt := range tests {
		got := Truncate(tt.s, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
