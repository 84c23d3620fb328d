package deadletter

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/proto"

	"example.com/platform/shared/messaging"
)

// MaxPublishRequestBytes is the largest publish request Pub/Sub accepts
// (and the Go client sends): 10 MB, the encoded message plus the topic
// name.
const MaxPublishRequestBytes = 10_000_000

// MaxMessageBytes is the largest message (MessageSize) Publish sends as it
// is: MaxPublishRequestBytes less a reserve for the request's topic name
// and framing. A larger dead letter has its body replaced by a reference.
const MaxMessageBytes = MaxPublishRequestBytes - 1024

// BodyReferenceHeadBytes is how many leading bytes of an omitted body a
// BodyReference keeps.
const BodyReferenceHeadBytes = 1024

// ErrBodyOmitted is returned (wrapped) by BodyReference.Err: the archived
// dead letter does not hold its body, so it cannot be replayed.
var ErrBodyOmitted = errors.New("the body was too large to dead-letter and was replaced by a reference")

// BodyReference replaces the body of a dead letter too large to publish.
// It is the dead letter's body, as JSON:
//
//	{"body_omitted":"too-large","sha256":"<hex>","size":10485760,"head":"<base64 of the first bytes>"}
type BodyReference struct {
	// Omitted says why the body was replaced (BodyOmittedTooLarge).
	Omitted string `json:"body_omitted"`
	// SHA256 is the hex SHA-256 of the original body.
	SHA256 string `json:"sha256"`
	// Size is the original body's length in bytes.
	Size int `json:"size"`
	// Head is the first BodyReferenceHeadBytes bytes of the body.
	Head []byte `json:"head"`
}

// NewBodyReference describes body.
func NewBodyReference(body []byte) BodyReference {
	sum := sha256.Sum256(body)
	head := body[:min(len(body), BodyReferenceHeadBytes)]
	return BodyReference{Omitted: BodyOmittedTooLarge, SHA256: hex.EncodeToString(sum[:]), Size: len(body), Head: bytes.Clone(head)}
}

// Encode returns the JSON document.
func (r BodyReference) Encode() []byte {
	b, _ := json.Marshal(r) // strings, an int and bytes always encode
	return b
}

// Err is the error a replay of the referenced dead letter returns: it
// wraps ErrBodyOmitted and names the size and hash of the lost body.
func (r BodyReference) Err() error {
	return fmt.Errorf("%w (%d bytes, sha256 %s); recover the body from its producer", ErrBodyOmitted, r.Size, r.SHA256)
}

// DecodeBodyReference parses a BodyReference document. It fails unless
// body_omitted, sha256 (64 hex digits) and a non-negative size are there.
func DecodeBodyReference(b []byte) (BodyReference, error) {
	var r BodyReference
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return BodyReference{}, fmt.Errorf("body reference: %w", err)
	}
	if dec.More() {
		return BodyReference{}, errors.New("body reference: data after the JSON object")
	}
	if r.Omitted == "" {
		return BodyReference{}, errors.New("body reference: body_omitted missing")
	}
	if h, err := hex.DecodeString(r.SHA256); err != nil || len(h) != sha256.Size {
		return BodyReference{}, fmt.Errorf("body reference: sha256 %q is not 64 hex digits", r.SHA256)
	}
	if r.Size < 0 {
		return BodyReference{}, fmt.Errorf("body reference: negative size %d", r.Size)
	}
	return r, nil
}

// MessageSize is the encoded size of m in a publish request: body,
// attributes and ordering key as the Pub/Sub protocol encodes them (what
// the client checks against MaxPublishRequestBytes).
func MessageSize(m messaging.Message) int {
	return proto.Size(&pubsubpb.PubsubMessage{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey})
}

// OmitBody returns a copy of m whose body is the BodyReference of m's
// body, marked with AttrBodyOmitted. Every attribute is kept.
func OmitBody(m messaging.Message) messaging.Message {
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrBodyOmitted] = BodyOmittedTooLarge
	return messaging.Message{Data: NewBodyReference(m.Data).Encode(), Attributes: attrs, OrderingKey: m.OrderingKey}
}
