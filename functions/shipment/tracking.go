package shipment

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/google/uuid"
)

// Namespace is the UUIDv5 namespace of shipment ids:
// UUIDv5(NameSpaceURL, "https://example.com/ns/shipment").
var Namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://example.com/ns/shipment"))

// ShipmentID returns the shipment id of the event (source, id).
func ShipmentID(source, id string) string {
	return uuid.NewSHA1(Namespace, []byte("shipment/v1\x00"+source+"\x00"+id)).String()
}

// DispatchedEventID returns the CloudEvents id of the shipment.dispatched
// event of shipment shipmentID.
func DispatchedEventID(shipmentID string) string {
	return uuid.NewSHA1(Namespace, []byte("shipment.dispatched/v1\x00"+shipmentID)).String()
}

// ChooseCarrier picks the carrier of an order from carriers (which must not be
// empty): a hash of the order id, so the choice spreads orders evenly and is
// the same on every attempt.
func ChooseCarrier(carriers []string, orderID string) string {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(orderID)))
	return carriers[h.Sum64()%uint64(len(carriers))]
}

// crockford is the Crockford base32 alphabet; checkSymbols extends it with
// the five extra check symbols (values 32..36).
const (
	crockford    = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	checkSymbols = crockford + "*~$=U"
	bodyLen      = 16 // 80 bits
)

// TrackingNumber returns the tracking number of the event (source, id)
// shipped with carrier (see the package documentation, Derived values), e.g.
// "DHL-1X7QH3W8ZKM0B5TR=".
func TrackingNumber(carrier, source, id string) string {
	sum := sha256.Sum256([]byte("shipment.tracking/v1\x00" + source + "\x00" + id))
	var b strings.Builder
	b.WriteString(strings.ToUpper(carrier))
	b.WriteByte('-')
	// 80 bits = 16 symbols of 5 bits, most significant first.
	var acc uint64
	bits := 0
	check := 0
	for _, by := range sum[:10] {
		acc = acc<<8 | uint64(by)
		bits += 8
		for bits >= 5 {
			bits -= 5
			v := int(acc>>bits) & 31
			b.WriteByte(crockford[v])
			check = (check*32 + v) % 37
		}
	}
	b.WriteByte(checkSymbols[check])
	return b.String()
}

// ValidTrackingNumber reports whether s has the shape of a tracking number
// (carrier prefix, 16 Crockford base32 symbols) and a matching check symbol.
func ValidTrackingNumber(s string) bool {
	i := strings.LastIndexByte(s, '-')
	if i < 1 || len(s)-i-1 != bodyLen+1 {
		return false
	}
	body, sym := s[i+1:len(s)-1], s[len(s)-1]
	check := 0
	for j := 0; j < len(body); j++ {
		v := strings.IndexByte(crockford, body[j])
		if v < 0 {
			return false
		}
		check = (check*32 + v) % 37
	}
	return checkSymbols[check] == sym
}

// Carrier list errors, returned by ParseCarriers.
var (
	ErrNoCarriers       = errors.New("no carriers")
	ErrInvalidCarrier   = errors.New("invalid carrier code")
	ErrDuplicateCarrier = errors.New("duplicate carrier code")
)

// MaxCarrierLength is the longest carrier code accepted.
const MaxCarrierLength = 32

// ParseCarriers parses a comma-separated list of carrier codes (the value of
// SHIPMENT_CARRIERS): each 1 to MaxCarrierLength lower-case letters, digits,
// '-' or '_', no duplicates, at least one. Spaces around codes are ignored.
// The order matters: it is the order ChooseCarrier hashes over.
func ParseCarriers(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if len(c) > MaxCarrierLength || strings.Trim(c, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return nil, fmt.Errorf("%w %q: want 1 to %d of a-z 0-9 - _", ErrInvalidCarrier, c, MaxCarrierLength)
		}
		if seen[c] {
			return nil, fmt.Errorf("%w %q", ErrDuplicateCarrier, c)
		}
		seen[c] = true
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNoCarriers
	}
	return out, nil
}
