package schemas

import "unicode/utf8"

// Truncate returns s if it is at most n bytes long, and otherwise its longest
// prefix that ends on a character boundary followed by "…", at most n bytes in
// all (just "…" when n leaves no room). Errors, logs and tables use it to
// repeat outside text within a bound without splitting a UTF-8 character.
func Truncate(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
