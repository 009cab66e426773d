package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wxgate/wxgate/internal/admin"
)

// InsertAudit stores one record of the admin API's audit log. Records are
// never changed afterwards.
func (s *Store) InsertAudit(ctx context.Context, r *admin.AuditRecord) error {
	_, err := s.coll(collAudit).InsertOne(ctx, r)
	return classify(err)
}

// Audit lists the admin API's audit log, newest first.
func (s *Store) Audit(ctx context.Context, q admin.AuditQuery) ([]admin.AuditRecord, string, error) {
	return list(ctx, s.coll(collAudit), bson.M{}, "at", q.Page, func(r *admin.AuditRecord) (time.Time, string) {
		return r.At, r.ID
	})
}
