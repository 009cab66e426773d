package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The throwaway PostgreSQL cluster behind the store, made as
// internal/store/storetest and bench/store/postgres.sh make theirs: Debian's
// binaries, UTF8 with the C locale (FerretDB refuses other encodings), a Unix
// socket in its own directory and no TCP port.
const (
	pgLibDir     = "/usr/lib/postgresql"
	pgUser       = "wxgate_cluster"
	pgPassword   = "wxgate-cluster-only"
	pgDatabase   = "ferretdb"
	pgSocketPort = 5432 // names the socket file only
)

// postgres is a running throwaway PostgreSQL cluster.
type postgres struct {
	bin, dir string
	asPG     bool // running as root: the server runs as the postgres user
}

// pgBinDir is the newest Debian PostgreSQL's bin directory, or "".
func pgBinDir() string {
	dirs, _ := filepath.Glob(filepath.Join(pgLibDir, "*", "bin"))
	major := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	slices.SortFunc(dirs, func(a, b string) int { return major(a) - major(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// startPostgres creates and starts a cluster in a new directory under /tmp
// (a Unix socket's path must stay short) and returns it with the URL of an
// empty database owned by its own role.
func startPostgres(ctx context.Context, bin string) (*postgres, string, error) {
	dir, err := os.MkdirTemp("", "wxgate-pg")
	if err != nil {
		return nil, "", err
	}
	pg := &postgres{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", fmt.Errorf("running as root, PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
		pg.asPG = true
	}
	data := filepath.Join(dir, "data")
	if out, err := pg.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// fsync off: the cluster is thrown away with the run.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses='' -c fsync=off -c max_connections=200", pgSocketPort, dir)
	if out, err := pg.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	if err := pg.createDatabase(ctx); err != nil {
		pg.stop()
		return nil, "", err
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pgUser, pgPassword),
		Path:     "/" + pgDatabase,
		RawQuery: url.Values{"host": {dir}, "port": {strconv.Itoa(pgSocketPort)}}.Encode(),
	}
	return pg, u.String(), nil
}

func (pg *postgres) createDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", pg.dir, pgSocketPort))
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL as postgres: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgUser, pgPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgDatabase, pgUser),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// pid is the server's process id, for its CPU time; 0 when unknown.
func (pg *postgres) pid() int {
	b, err := os.ReadFile(filepath.Join(pg.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(first))
	return n
}

// stop stops the server and removes its files.
func (pg *postgres) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = pg.run(ctx, "pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w", "stop")
	os.RemoveAll(pg.dir)
}

// run runs one of PostgreSQL's programs, as the postgres user when this
// program runs as root (initdb refuses root).
func (pg *postgres) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(pg.bin, name)
	if pg.asPG {
		path, args = "runuser", append([]string{"-u", "postgres", "--", path}, args...)
	}
	return exec.CommandContext(ctx, path, args...).CombinedOutput() //nolint:gosec // PostgreSQL's programs, arguments made here
}
