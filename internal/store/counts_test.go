package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// TestCounts adds up one app's messages and events of a window by status and
// outcome, and its dead letters never redriven, leaving out older ones and
// other apps'.
func TestCounts(t *testing.T) {
	st := storetest.Start(t).Open("wxgate")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	since := now.Add(-24 * time.Hour)
	const app, other = "wx0000000000000001", "wx0000000000000002"
	msgs := []struct {
		id, app, status string
		at              time.Time
	}{
		{"m1", app, processor.StatusDelivered, now},
		{"m2", app, processor.StatusDelivered, now.Add(-time.Hour)},
		{"m3", app, processor.StatusFailed, now},
		{"m4", app, processor.StatusDelivered, since.Add(-time.Minute)}, // too old
		{"m5", other, processor.StatusDelivered, now},
	}
	for _, m := range msgs {
		if err := st.SaveMessage(ctx, &processor.Message{ID: m.id, AppID: m.app, ToUser: "o1", TemplateID: "T", Status: m.status, CreatedAt: m.at, UpdatedAt: m.at, Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	popup := func(id, status string) processor.EventRecord {
		return processor.EventRecord{ID: id, AppID: app, OpenID: "o1", Event: "subscribe_msg_popup_event", ReceivedAt: now,
			Data: schemas.Event{Items: []schemas.Item{{TemplateID: "T", Status: status}}}}
	}
	evs := []processor.EventRecord{
		popup("e1", "accept"), popup("e2", "accept"), popup("e3", "reject"),
		{ID: "e4", AppID: app, OpenID: "o1", Event: "subscribe_msg_sent_event", ReceivedAt: now,
			Data: schemas.Event{Items: []schemas.Item{{TemplateID: "T", MsgID: "1", ErrorStatus: "success"}}}},
		{ID: "e5", AppID: app, OpenID: "o1", Event: "user_enter_tempsession", ReceivedAt: now},
	}
	if err := st.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for i, redrives := range []int{0, 0, 1} {
		d := &processor.DeadLetter{ID: "d" + string(rune('1'+i)), AppID: app, Redrives: redrives, At: now, Version: 1}
		if err := st.PutDeadLetter(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Counts(ctx, app, since)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	want := processor.Counts{
		Messages: map[string]int{processor.StatusDelivered: 2, processor.StatusFailed: 1},
		Events: map[string]int{"subscribe_msg_popup_event accept": 2, "subscribe_msg_popup_event reject": 1,
			"subscribe_msg_sent_event": 1, "user_enter_tempsession": 1},
		DeadLetters: 2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
}
