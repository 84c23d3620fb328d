package deadletter

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	dl "example.com/platform/shared/deadletter"
	dlarchive "example.com/platform/shared/deadletter/archive"
	"example.com/platform/shared/warehouse"
)

// A dead letter whose body was replaced by a reference (too large to
// dead-letter) is archived with the reference as its body and the
// dlq-body-omitted attribute, so readers can tell and show it; both push
// shapes.
func TestOversizedDeadLetterIsArchivedAsReference(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.Name, func(t *testing.T) {
			mem := warehouse.NewMemory(Tables())
			h := newHandler(&Service{Sink: mem}, quiet, "deadletter")
			orig := annotated(t, nil)
			big := bytes.Repeat([]byte("z"), 5000)
			orig.Data = big
			m, d := dl.OmitBody(orig), dlqDelivery()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, sh.Request(t, "http://fn/", m, d))
			if rec.Code != http.StatusNoContent {
				t.Fatalf("status %d %s", rec.Code, rec.Body)
			}
			rows := mem.Rows(Table)
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			r, err := dlarchive.DecodeRow(DeadLettersSchema.Normalize(rows[0].Values))
			if err != nil {
				t.Fatal(err)
			}
			ref, omitted, err := r.Reference()
			if !omitted || err != nil {
				t.Fatalf("Reference() = %+v, %v, %v", ref, omitted, err)
			}
			if ref.Size != len(big) || !bytes.Equal(ref.Head, big[:dl.BodyReferenceHeadBytes]) {
				t.Errorf("reference %+v", ref)
			}
			if r.ReasonMessage != "validate order: customer blocked" || r.OriginalTopic != "order.created" {
				t.Errorf("reason %q topic %q", r.ReasonMessage, r.OriginalTopic)
			}
			if !errors.Is(ref.Err(), dl.ErrBodyOmitted) {
				t.Errorf("Err() = %v", ref.Err())
			}
		})
	}
}
