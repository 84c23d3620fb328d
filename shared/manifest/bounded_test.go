package manifest

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestBoundedRulesMatchTheirCountedPatterns checks each name rule against
// the counted-repetition pattern it replaced, on every length around its
// bounds and on random strings of the rule's characters and a few others.
func TestBoundedRulesMatchTheirCountedPatterns(t *testing.T) {
	rules := []struct {
		name    string
		rule    boundedRE
		counted string
	}{
		{"table", tableRE, `^[a-z_][a-z0-9_]{0,62}$`},
		{"name", nameRE, `^[a-z][a-z0-9-]{1,28}[a-z0-9]$`},
		{"topic", topicRE, `^[a-zA-Z][a-zA-Z0-9._~+%-]{2,254}$`},
		{"schedule", scheduleRE, `^[a-z][a-z0-9-]{0,40}$`},
		{"secret", secretRE, `^[A-Za-z0-9_-]{1,255}$`},
	}
	const alphabet = "abzAZ09_-.~+%/ é"
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range rules {
		want := regexp.MustCompile(r.counted)
		check := func(s string) {
			if got, w := r.rule.MatchString(s), want.MatchString(s); got != w {
				t.Fatalf("%s rule on %q (%d bytes): %v, counted pattern %v", r.name, s, len(s), got, w)
			}
		}
		for n := 0; n <= r.rule.max+2; n++ {
			check(strings.Repeat("a", n))
			check("a" + strings.Repeat("0", max(n-1, 0)))
		}
		for range 20000 {
			b := make([]byte, rng.IntN(r.rule.max+3))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			check(string(b))
		}
	}
}
