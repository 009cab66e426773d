package storetest

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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The cluster is set up as bench/store/postgres.sh sets up its own: Debian's
// binaries, UTF8 with the C locale (FerretDB refuses other encodings). It
// listens on a Unix socket in its own directory only, so no port is picked and
// no two tests can meet; the socket trusts local users, so the role's password
// is carried but not checked.
const (
	pgUser     = "wxgate_test"
	pgPassword = "wxgate-test-only"
	pgDatabase = "ferretdb"
	pgLibDir   = "/usr/lib/postgresql"
)

// PostgreSQL starts a throwaway PostgreSQL cluster for the test, listening on a
// Unix socket in a directory of its own, and returns the postgres:// URL of an
// empty database owned by its own role. The cluster and its files are removed
// when the test ends.
//
// It needs Debian's PostgreSQL server (apt-get install postgresql). Without it
// the test is skipped, unless the environment variable CI is set: then it
// fails, so that CI cannot pass by skipping.
func PostgreSQL(t testing.TB) string {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		msg := "this test needs Debian's PostgreSQL server (apt-get install postgresql): no initdb under " + pgLibDir + "/*/bin"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := &pgCluster{t: t, bin: bin}
	c.init()
	t.Cleanup(c.stop)
	c.start()
	c.createDatabase()
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pgUser, pgPassword),
		Path:     "/" + pgDatabase,
		RawQuery: url.Values{"host": {c.dir}, "port": {strconv.Itoa(pgSocketPort)}}.Encode(),
	}
	return u.String()
}

// pgBinDir is the bin directory of the newest PostgreSQL installed the Debian
// way (/usr/lib/postgresql/<major>/bin), or "" when there is none.
func pgBinDir() string {
	dirs, _ := filepath.Glob(filepath.Join(pgLibDir, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(a) - pgMajor(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func pgMajor(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

type pgCluster struct {
	t    testing.TB
	bin  string
	dir  string // holds data/, the socket and server.log
	asPG bool   // running as root: the server runs as the postgres user
}

// pgSocketPort only names the socket file (.s.PGSQL.5432) in the cluster's
// directory: nothing listens on TCP.
const pgSocketPort = 5432

// init creates the cluster's files. initdb refuses to run as root, so a root
// test runs it (and the server) as the postgres user, in a directory that user
// owns. The directory is not t.TempDir: that one sits under a root-only
// directory, and its long path would not fit a Unix socket's path.
func (c *pgCluster) init() {
	c.t.Helper()
	dir, err := os.MkdirTemp("", "wxgate-pg")
	if err != nil {
		c.t.Fatal(err)
	}
	c.dir = dir
	c.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			c.t.Fatalf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			c.t.Fatal(err)
		}
		c.asPG = true
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth-local=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		c.t.Fatalf("initdb: %v\n%s", err, out)
	}
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// start starts the server on its Unix socket.
func (c *pgCluster) start() {
	c.t.Helper()
	// fsync off: the cluster dies with the test. Autovacuum off: its ANALYZE
	// changes plans at moments of its choosing, and tests compare plans.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses='' -c fsync=off -c autovacuum=off", pgSocketPort, c.dir)
	if _, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60",
		"-o", opts, "start"); err != nil {
		c.t.Fatalf("pg_ctl start: %v\n%s", err, c.serverLog())
	}
}

// createDatabase creates the role and the database the store uses, connected
// over the Unix socket as the superuser.
func (c *pgCluster) createDatabase() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", c.dir, pgSocketPort))
	if err != nil {
		c.t.Fatalf("connecting to PostgreSQL as postgres: %v", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgUser, pgPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgDatabase, pgUser),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			c.t.Fatalf("%s: %v", q, err)
		}
	}
}

func (c *pgCluster) stop() {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop"); err != nil {
		c.t.Logf("pg_ctl stop: %v\n%s", err, out)
	}
}

// run runs one of the installed PostgreSQL's programs and returns its output,
// as the postgres user when the test runs as root (the script does the same
// with runuser).
func (c *pgCluster) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, name)
	if c.asPG {
		path, args = "runuser", append([]string{"-u", "postgres", "--", path}, args...)
	}
	return exec.CommandContext(ctx, path, args...).CombinedOutput() //nolint:gosec // PostgreSQL's programs, arguments made here
}

func (c *pgCluster) serverLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	return strings.TrimSpace(string(b))
}
