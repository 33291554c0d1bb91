// Package marker is the collection-in-flight marker of the recommendations
// refresh, on PostgreSQL with pgx: the legacy flag and the owner-token fix.
package marker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v4"
)

// Store is what the callers use; Mark returns the owner token ("" for legacy).
type Store interface {
	Mark(ctx context.Context) (token string, ok bool, err error)
	Clear(ctx context.Context, token string) error
	UpsertRecommendations(ctx context.Context) error
}

const guard = `last_collection_started_at IS NULL
   OR last_collection_started_at < NOW() - INTERVAL '5 minutes'`

// Legacy is the store before the fix: one shared flag, cleared unconditionally.
type Legacy struct{ Conn *pgx.Conn }

func (s Legacy) Mark(ctx context.Context) (string, bool, error) {
	tag, err := s.Conn.Exec(ctx, `UPDATE recommendations_state
   SET last_collection_started_at = NOW()
 WHERE id = 1 AND (`+guard+`)`)
	if err != nil {
		return "", false, err
	}
	return "", tag.RowsAffected() == 1, nil
}

func (s Legacy) Clear(ctx context.Context, _ string) error {
	_, err := s.Conn.Exec(ctx, `UPDATE recommendations_state
   SET last_collection_started_at = NULL WHERE id = 1`)
	return err
}

func (s Legacy) UpsertRecommendations(ctx context.Context) error {
	return upsert(ctx, s.Conn)
}

// Token is the fix: Mark hands out a fresh owner token, Clear compares and clears.
type Token struct{ Conn *pgx.Conn }

func (s Token) Mark(ctx context.Context) (string, bool, error) {
	token := newUUID()
	tag, err := s.Conn.Exec(ctx, `UPDATE recommendations_state
   SET last_collection_started_at = NOW(), last_collection_owner_id = $1
 WHERE id = 1 AND (`+guard+`)`, token)
	if err != nil {
		return "", false, err
	}
	if tag.RowsAffected() != 1 {
		return "", false, nil
	}
	return token, true, nil
}

func (s Token) Clear(ctx context.Context, token string) error {
	if token == "" {
		return errors.New("empty owner token: clear needs the token that mark returned")
	}
	_, err := s.Conn.Exec(ctx, `UPDATE recommendations_state
   SET last_collection_started_at = NULL, last_collection_owner_id = NULL
 WHERE id = 1 AND last_collection_owner_id = $1`, token)
	return err
}

func (s Token) UpsertRecommendations(ctx context.Context) error {
	return upsert(ctx, s.Conn)
}

func upsert(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `UPDATE recommendations_state
   SET last_collected_at = NOW(), last_collection_error = NULL WHERE id = 1`)
	return err
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Open connects (PGHOST, PGPORT, DATABASE_URL...) and returns the store named by
// the -store flag's value: "legacy" or "token".
func Open(ctx context.Context, name string) (Store, *pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return nil, nil, err
	}
	switch name {
	case "legacy":
		return Legacy{conn}, conn, nil
	case "token":
		return Token{conn}, conn, nil
	}
	conn.Close(ctx)
	return nil, nil, fmt.Errorf("unknown store %q: use legacy or token", name)
}
