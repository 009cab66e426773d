package console

import (
	"strings"
	"testing"
	"time"
)

func TestSafeNext(t *testing.T) {
	tests := []struct {
		name, next, want string
	}{
		{"a console page", "/console/apps/wx1/messages?status=failed", "/console/apps/wx1/messages?status=failed"},
		{"empty", "", ""},
		{"another site", "https://example.com/console/", ""},
		{"scheme-relative", "//example.com/console/", ""},
		{"outside the console", "/v1/dlq", ""},
		{"the console's prefix alone", "/consolex/", ""},
		{"back to sign-in", "/console/signin?next=/console/", ""},
		{"a backslash", "/console/\\example.com", ""},
		{"a header split", "/console/\r\nSet-Cookie: x=1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safeNext(tt.next); got != tt.want {
				t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
			}
		})
	}
}

func TestCSRFTokenDependsOnTheToken(t *testing.T) {
	a, b := csrfToken("token-a"), csrfToken("token-b")
	if a == b || a != csrfToken("token-a") {
		t.Errorf("csrfToken: %q for a twice gave %q, %q for b; want stable per token and distinct", a, csrfToken("token-a"), b)
	}
	if strings.Contains(a, "token-a") {
		t.Errorf("csrfToken(%q) = %q shows the token", "token-a", a)
	}
}

func TestParseTime(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-05-01T08:00", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), true},
		{"2024-05-01T08:00:30", time.Date(2024, 5, 1, 0, 0, 30, 0, time.UTC), true},
		{"2024-05-01", time.Date(2024, 4, 30, 16, 0, 0, 0, time.UTC), true},
		{"2024-05-01T08:00:00Z", time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{strings.Repeat("9", 100), time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTime(tt.in, shanghai)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLoadZone(t *testing.T) {
	for _, bad := range []string{"../../etc/passwd", "/etc/localtime", "Asia/Shanghai\x00", strings.Repeat("A", 65)} {
		if _, err := loadZone(bad); err == nil {
			t.Errorf("loadZone(%q) accepted it", bad)
		}
	}
	if loc, err := loadZone("Europe/Berlin"); err != nil || loc.String() != "Europe/Berlin" {
		t.Errorf("loadZone(Europe/Berlin) = %v, %v", loc, err)
	}
}

// FuzzFormInputs feeds what a browser may send to the parsers of the
// console's form and cookie values: none panics, and what they accept is
// well-formed.
func FuzzFormInputs(f *testing.F) {
	for _, s := range []string{"2024-05-01T08:00", "/console/apps/wx1", "Asia/Shanghai", "", "\xff", "../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, ok := parseTime(s, time.UTC); ok && len(s) > 64 {
			t.Errorf("parseTime accepted %d bytes", len(s))
		}
		if n := safeNext(s); n != "" && (!strings.HasPrefix(n, "/console/") || strings.ContainsAny(n, "\r\n\\")) {
			t.Errorf("safeNext(%q) = %q", s, n)
		}
		if loc, err := loadZone(s); err == nil && strings.Contains(loc.String(), "..") {
			t.Errorf("loadZone(%q) loaded %q", s, loc)
		}
		if r := checkID(s); r == "" && len(s) > maxID {
			t.Errorf("checkID accepted %d bytes", len(s))
		}
	})
}
