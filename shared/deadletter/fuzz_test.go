package deadletter_test

import (
	"reflect"
	"strings"
	"testing"

	"example.com/platform/shared/deadletter"
)

// FuzzDecodeBodyReference: no panic; what decodes encodes to a document
// that decodes to the same reference.
func FuzzDecodeBodyReference(f *testing.F) {
	f.Add(deadletter.NewBodyReference([]byte("hello")).Encode())
	f.Add([]byte(`{"body_omitted":"too-large","sha256":"` + strings.Repeat("0", 64) + `","size":0,"head":null}`))
	f.Add([]byte(`{"order_id":"o-1"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ref, err := deadletter.DecodeBodyReference(doc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "body reference: ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		again, err := deadletter.DecodeBodyReference(ref.Encode())
		if err != nil || !reflect.DeepEqual(again, ref) {
			t.Fatalf("re-encoded reference: %+v, %v; want %+v", again, err, ref)
		}
	})
}
