package store

import (
	"errors"
	"strings"
	"testing"
)

func TestWithCustomPlans(t *testing.T) {
	for _, tc := range []struct {
		name, url, want string
	}{
		{
			name: "added",
			url:  "postgres://u:pw@127.0.0.1:5432/ferretdb",
			want: "postgres://u:pw@127.0.0.1:5432/ferretdb?plan_cache_mode=force_custom_plan",
		},
		{
			name: "added among others",
			url:  "postgresql://u:pw@db/ferretdb?sslmode=disable",
			want: "postgresql://u:pw@db/ferretdb?plan_cache_mode=force_custom_plan&sslmode=disable",
		},
		{
			name: "set by the operator",
			url:  "postgres://u:pw@db/ferretdb?plan_cache_mode=auto",
			want: "postgres://u:pw@db/ferretdb?plan_cache_mode=auto",
		},
		{name: "not a URL", url: "host=db user=u", want: "host=db user=u"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withCustomPlans(tc.url); got != tc.want {
				t.Errorf("withCustomPlans(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

func TestRedactPassword(t *testing.T) {
	const pgURL = "postgres://u:s3cr%2Ft@db:5432/ferretdb?plan_cache_mode=force_custom_plan"
	for _, tc := range []struct {
		name, url, msg, want string
	}{
		{
			name: "URL",
			url:  pgURL,
			msg:  "cannot connect to " + pgURL + ": refused",
			want: "cannot connect to postgres://u:xxxxx@db:5432/ferretdb?plan_cache_mode=force_custom_plan: refused",
		},
		{
			name: "password alone, raw and escaped",
			url:  pgURL,
			msg:  `password "s3cr/t" (s3cr%2Ft) rejected`,
			want: `password "xxxxx" (xxxxx) rejected`,
		},
		{
			name: "not a URL",
			url:  "host=db password=s3cr/t",
			msg:  "bad config host=db password=s3cr/t",
			want: "bad config <postgresql url>",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redactPassword(errors.New(tc.msg), tc.url).Error()
			if got != tc.want {
				t.Errorf("redactPassword(%q) = %q, want %q", tc.msg, got, tc.want)
			}
			if strings.Contains(got, "s3cr") {
				t.Errorf("redactPassword(%q) = %q, shows the password", tc.msg, got)
			}
		})
	}
}
