package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultQuery is USERS_QUERY's default.
const DefaultQuery = "SELECT password_hash FROM users WHERE username = $1"

// checkName is the user Check looks up: the query must run, and find no one.
const checkName = "tokend readiness check: no user has this name \u2400"

// PostgresConfig is how Postgres reaches the user table.
type PostgresConfig struct {
	URL string
	// Query takes the username as $1 and returns at most one row: the
	// hash (text, NULL for no password) and optionally a boolean that is
	// true when the user may not log in.
	Query string
	// SampleQuery, if set, returns hashes (one column) for Sample.
	SampleQuery string
	Timeout     time.Duration // each query's
}

// Postgres is a Store over the application's own user table, read-only:
// every connection starts with default_transaction_read_only on, so even a
// query that tried to write would fail.
type Postgres struct {
	pool *pgxpool.Pool
	cfg  PostgresConfig
}

var dollarParam = regexp.MustCompile(`\$([0-9]+)`)

// ValidateQuery says what is wrong with a USERS_QUERY, or nil.
func ValidateQuery(q string) error {
	w := strings.ToUpper(strings.Fields(q + " x")[0])
	if w != "SELECT" && w != "WITH" {
		return errors.New("must be a SELECT (or WITH … SELECT) statement")
	}
	one := false
	for _, m := range dollarParam.FindAllStringSubmatch(q, -1) {
		if m[1] != "1" {
			return fmt.Errorf("uses $%s: the only parameter is $1, the username", m[1])
		}
		one = true
	}
	if !one {
		return errors.New("must use $1 for the username")
	}
	if strings.Contains(q, ";") {
		return errors.New("must be one statement, without ';'")
	}
	return nil
}

// OpenPostgres returns a Postgres store. It does not connect: a database
// that is down at start-up makes Check and Lookup fail until it is back.
func OpenPostgres(cfg PostgresConfig) (*Postgres, error) {
	if err := ValidateQuery(cfg.Query); err != nil {
		return nil, fmt.Errorf("USERS_QUERY %w", err)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("USERS_DATABASE_URL is not a valid postgres:// URL or key=value connection string")
	}
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pc.ConnConfig.RuntimeParams["application_name"] = "tokend"
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > cfg.Timeout {
		pc.ConnConfig.ConnectTimeout = cfg.Timeout
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("user database: %w", err)
	}
	return &Postgres{pool: pool, cfg: cfg}, nil
}

// Close closes the pool's connections.
func (p *Postgres) Close() { p.pool.Close() }

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (p *Postgres) Lookup(ctx context.Context, name string) (string, error) {
	if strings.ContainsRune(name, 0) || !utf8.ValidString(name) {
		return "", ErrNotFound // no text column can hold it
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, p.cfg.Query, name)
	if err != nil {
		return "", unavailable(err)
	}
	defer rows.Close()
	// Read now: once the rows are done the connection serves others.
	// With a failed query it is 0, and rows.Err says why.
	cols := len(rows.FieldDescriptions())
	var (
		hash     *string
		disabled *bool
		n        int
	)
	for rows.Next() {
		if cols != 1 && cols != 2 {
			return "", unavailable(fmt.Errorf("USERS_QUERY returns %d columns: want the hash, and optionally a disabled flag", cols))
		}
		if n++; n > 1 {
			return "", unavailable(errors.New("USERS_QUERY returned more than one row for one username: make it match a unique column"))
		}
		dst := []any{&hash}
		if cols == 2 {
			dst = append(dst, &disabled)
		}
		if err := rows.Scan(dst...); err != nil {
			return "", unavailable(fmt.Errorf("USERS_QUERY: %w", err))
		}
	}
	if err := rows.Err(); err != nil {
		return "", unavailable(err)
	}
	// Checked with no row too: Check must catch a wrong query.
	if cols != 1 && cols != 2 {
		return "", unavailable(fmt.Errorf("USERS_QUERY returns %d columns: want the hash, and optionally a disabled flag", cols))
	}
	if n == 0 || hash == nil || *hash == "" || disabled != nil && *disabled {
		return "", ErrNotFound
	}
	return *hash, nil
}

// Check runs the query for a name no user has: it proves the connection,
// the table and the columns.
func (p *Postgres) Check(ctx context.Context) error {
	_, err := p.Lookup(ctx, checkName)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err == nil {
		return unavailable(errors.New("USERS_QUERY found a user for a name no one has: does it use $1?"))
	}
	return err
}

func (p *Postgres) Sample(ctx context.Context, n int) ([]string, error) {
	if p.cfg.SampleQuery == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, p.cfg.SampleQuery)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() && len(out) < n {
		var h *string
		if err := rows.Scan(&h); err != nil {
			return nil, unavailable(fmt.Errorf("USERS_SAMPLE_QUERY: %w", err))
		}
		if h != nil && *h != "" {
			out = append(out, *h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// Target names the database without its password: user@host:port/database.
func (p *Postgres) Target() string {
	cc := p.pool.Config().ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}
