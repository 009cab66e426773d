package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Key is the key in the spelling of the documentation ("apps[0].secret"),
	// followed by where its value came from when that was the environment; or
	// the environment variable or file the problem is about.
	Key string
	// Why says what is wrong and, where it helps, what to do. It never holds
	// the value of a secret.
	Why string
}

// Error lists every problem found in a configuration. errors.Is(err,
// ErrInvalid) holds for it.
type Error struct {
	Problems []Problem
}

// Error names one problem on one line, or several one per line.
func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		p := e.Problems[0]
		return fmt.Sprintf("%v: %s: %s", ErrInvalid, p.Key, p.Why)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v (%d problems):", ErrInvalid, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Key, p.Why)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// problems collects what is wrong while a configuration is loaded.
type problems []Problem

func (ps *problems) add(key, why string) { *ps = append(*ps, Problem{Key: key, Why: why}) }

// err is nil when nothing was added.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &Error{Problems: ps}
}

func oneProblem(key, why string) error { return &Error{Problems: []Problem{{Key: key, Why: why}}} }

// indexPattern finds the indexes in a key path ("apps.0.secret").
var indexPattern = regexp.MustCompile(`\.([0-9]+)(\.|$)`)

// keyName spells a key path as the documentation does: "apps.0.secret"
// becomes "apps[0].secret".
func keyName(path string) string {
	return indexPattern.ReplaceAllString(path, "[$1]$2")
}
