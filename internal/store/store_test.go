package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
)

func TestMessageOfAnotherAppIsNotFound(t *testing.T) {
	st := storetest.Start(t).Open("wxgate")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := &processor.Message{ID: "m1", AppID: "wx0000000000000001", ToUser: "o1", TemplateID: "T", Status: processor.StatusQueued, CreatedAt: now, UpdatedAt: now, Version: 1}
	if err := st.SaveMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Message(ctx, "wx0000000000000001", "m1"); err != nil || got.ID != "m1" {
		t.Errorf("Message(own app) = %v, %v; want m1", got, err)
	}
	if _, err := st.Message(ctx, "wx0000000000000002", "m1"); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("Message(other app) error = %v, want ErrNotFound", err)
	}
	// A second insert of the same id is a duplicate, not an overwrite.
	if err := st.SaveMessage(ctx, m); !errors.Is(err, processor.ErrDuplicate) {
		t.Errorf("SaveMessage(same id, version 1) = %v, want ErrDuplicate", err)
	}
}
