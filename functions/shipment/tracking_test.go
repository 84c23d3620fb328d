package shipment

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const (
	goldenSource = "//example.com/payment"
	goldenID     = "11111111-1111-4111-8111-111111111111"
)

// TestDerivationsAreStable pins the schemes: the values were checked against
// an independent implementation (Python's uuid.uuid5, hashlib.sha256 and the
// Crockford alphabet). A change here changes the numbers of new shipments:
// bump the scheme's version tag instead.
func TestDerivationsAreStable(t *testing.T) {
	if got := Namespace.String(); got != "6f3051b2-86e9-5259-af1d-6b3fd041cdd4" {
		t.Errorf("Namespace %s", got)
	}
	sid := ShipmentID(goldenSource, goldenID)
	if sid != "3f886bd7-46c8-597e-a526-33ab7b999478" {
		t.Errorf("ShipmentID %s", sid)
	}
	if u := uuid.MustParse(sid); u.Version() != 5 || u.Variant() != uuid.RFC4122 {
		t.Errorf("ShipmentID is not an RFC 4122 UUIDv5: %v %v", u.Version(), u.Variant())
	}
	if got := DispatchedEventID(sid); got != "8c453249-6eeb-587f-acb8-0d4afa2512b1" {
		t.Errorf("DispatchedEventID %s", got)
	}
	if got := TrackingNumber("dhl", goldenSource, goldenID); got != "DHL-PK6GJVYV12ZA2Z7Z=" {
		t.Errorf("TrackingNumber %s", got)
	}
	if got := ChooseCarrier([]string{"dhl", "ups", "fedex"}, "22222222-2222-4222-8222-222222222222"); got != "fedex" {
		t.Errorf("ChooseCarrier %s", got)
	}
}

func TestTrackingNumberIsDeterministicPerEvent(t *testing.T) {
	a := TrackingNumber("ups", goldenSource, goldenID)
	if b := TrackingNumber("ups", goldenSource, goldenID); a != b {
		t.Fatalf("same event, different numbers: %s %s", a, b)
	}
	others := []string{
		TrackingNumber("ups", goldenSource, "11111111-1111-4111-8111-111111111112"), // other id
		TrackingNumber("ups", "//example.com/payment-eu", goldenID),                 // other source
		TrackingNumber("ups", goldenSource+"\x00", goldenID[1:]),                    // the separator keeps fields apart
	}
	for _, o := range others {
		if o == a {
			t.Fatalf("different events share tracking number %s", a)
		}
	}
	if ShipmentID(goldenSource, goldenID) == ShipmentID(goldenSource, "11111111-1111-4111-8111-111111111112") {
		t.Fatal("different events share a shipment id")
	}
	if !strings.HasPrefix(a, "UPS-") || len(a) != len("UPS-")+17 {
		t.Fatalf("shape of %q", a)
	}
}

func TestValidTrackingNumber(t *testing.T) {
	seen := map[string]bool{}
	for i := range 500 {
		n := TrackingNumber("my-carrier", goldenSource, fmt.Sprint(i))
		if !ValidTrackingNumber(n) {
			t.Fatalf("%q does not validate", n)
		}
		if seen[n] {
			t.Fatalf("collision %q", n)
		}
		seen[n] = true
		// Every single-symbol substitution in the body is caught by the
		// mod-37 check (37 is prime and larger than the alphabet).
		body := strings.LastIndexByte(n, '-') + 1
		for j := body; j < len(n)-1; j++ {
			for _, c := range crockford {
				if byte(c) == n[j] {
					continue
				}
				bad := n[:j] + string(c) + n[j+1:]
				if ValidTrackingNumber(bad) {
					t.Fatalf("%q validates (from %q)", bad, n)
				}
			}
		}
	}
	for _, bad := range []string{"", "-PK6GJVYV12ZA2Z7Z=", "DHL-PK6GJVYV12ZA2Z7=", "DHL-PK6GJVYV12ZA2Z7ZZ=", "DHL-pk6gjvyv12za2z7z=", "DHL-IK6GJVYV12ZA2Z7Z=", "DHLPK6GJVYV12ZA2Z7Z="} {
		if ValidTrackingNumber(bad) {
			t.Errorf("%q validates", bad)
		}
	}
}

func TestChooseCarrierSpreadsAndIsStable(t *testing.T) {
	carriers := []string{"dhl", "ups", "fedex"}
	counts := map[string]int{}
	for range 3000 {
		id := uuid.NewString()
		c := ChooseCarrier(carriers, id)
		if c != ChooseCarrier(carriers, id) || c != ChooseCarrier(carriers, strings.ToUpper(id)) {
			t.Fatalf("carrier of %s not stable", id)
		}
		counts[c]++
	}
	for _, c := range carriers {
		if counts[c] < 800 { // expected 1000 each
			t.Fatalf("uneven spread: %v", counts)
		}
	}
	if got := ChooseCarrier([]string{"only"}, uuid.NewString()); got != "only" {
		t.Fatal(got)
	}
}

func TestParseCarriers(t *testing.T) {
	ok := []struct {
		in   string
		want []string
	}{
		{DefaultCarriers, []string{"dhl", "ups", "fedex"}},
		{" dhl , ups_express,,la-poste ", []string{"dhl", "ups_express", "la-poste"}},
		{strings.Repeat("a", MaxCarrierLength), []string{strings.Repeat("a", MaxCarrierLength)}},
	}
	for _, c := range ok {
		got, err := ParseCarriers(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseCarriers(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct {
		in   string
		want error
	}{
		{"", ErrNoCarriers},
		{" , ,", ErrNoCarriers},
		{"DHL", ErrInvalidCarrier},
		{"dhl express", ErrInvalidCarrier},
		{"dhl;ups", ErrInvalidCarrier},
		{strings.Repeat("a", MaxCarrierLength+1), ErrInvalidCarrier},
		{"dhl,ups,dhl", ErrDuplicateCarrier},
	}
	for _, c := range bad {
		if _, err := ParseCarriers(c.in); !errors.Is(err, c.want) {
			t.Errorf("ParseCarriers(%q) error %v, want %v", c.in, err, c.want)
		}
	}
}
