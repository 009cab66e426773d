//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// dataDirLock is a no-op where flock(2) is missing: data_dir is not guarded.
type dataDirLock struct{}

func lockDataDir(string) (*dataDirLock, error) { return &dataDirLock{}, nil }

// Close does nothing.
func (*dataDirLock) Close() error { return nil }
