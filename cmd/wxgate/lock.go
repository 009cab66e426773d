//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file under data_dir that a serve holds locked for its life.
const lockFile = ".lock"

// dataDirLock is a data_dir held by this process; Close lets it go.
type dataDirLock struct{ f *os.File }

// lockDataDir takes data_dir for this process, creating it as needed, or fails
// naming the process that holds it. The lock is flock(2) on data_dir/.lock: the
// kernel drops it when the holder exits, however it exits, so a crash leaves
// nothing to clean up. flock belongs to the open file, so two locks in one
// process conflict too.
func lockDataDir(dir string) (*dataDirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := holderPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another wxgate serve (%s, holding %s): stop it, or give this one another data_dir", dir, holder, path)
		}
		return nil, fmt.Errorf("data_dir %s: locking %s: %w", dir, path, err)
	}
	// The pid is for the message above; the lock itself is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// holderPID reads the pid the lock's holder wrote, as "pid N", or says it is unknown.
func holderPID(f *os.File) string {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
		return "pid " + strconv.Itoa(pid)
	}
	return "pid unknown"
}

// Close releases the lock. The file stays: removing it would let a process
// that opened it just before lock a file nobody else can see.
func (l *dataDirLock) Close() error { return l.f.Close() }
