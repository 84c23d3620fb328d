package bench

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"example.com/platform/shared/outbox/outboxbench"
)

// Results is everything one run measured.
type Results struct {
	Quick                 bool
	Started               time.Time
	Elapsed               time.Duration
	LoadBefore, LoadAfter string
	Err                   error

	// Idempotency rates per concurrency, one entry per repetition.
	Idem map[int][]IdemRep
	// Relay rounds.
	Relay []outboxbench.Result
	// E2E is the latency phase; CPUFns and CPUOthers its CPU use.
	E2E                 *Phase
	CPUFns, CPUOthers   []CPUUse
	IdleSeconds         float64
	IdleFns, IdleOthers []CPUUse
	MaxPhases           []*Phase
	MaxRate             float64
	ColdBare            ColdStart
	Cold                []ColdStart
}

// IdemRep is one repetition of the idempotency measures at one
// concurrency, in events/s.
type IdemRep struct{ Raw, First, Dup float64 }

// ColdStart is the cold start of one function: the medians of exec to
// its first 2xx and of exec to its port accepting connections.
type ColdStart struct {
	Name              string
	Median, Listening time.Duration
	All               []time.Duration
	// LocalSink: the function writes the local JSON-lines stand-in for
	// BigQuery, which it reads whole at start (not the product's path):
	// shown, not counted in coldstart_vs_bare.
	LocalSink bool
}

func (r *Results) addIdem(conc int, raw, first, dup float64) {
	if r.Idem == nil {
		r.Idem = map[int][]IdemRep{}
	}
	r.Idem[conc] = append(r.Idem[conc], IdemRep{raw, first, dup})
}

func (r *Results) idemRatio(conc int, f func(IdemRep) float64) float64 {
	var v []float64
	for _, rep := range r.Idem[conc] {
		v = append(v, f(rep))
	}
	return outboxbench.Median(v)
}

// row is one measure of the table.
type row struct {
	key, value, target, detail string
	met                        *bool
}

func yes(b bool) *bool { return &b }

func (r *Results) rows() []row {
	var out []row
	if len(r.Relay) > 0 {
		var ratios, relay, client []float64
		for _, x := range r.Relay {
			ratios, relay, client = append(ratios, x.Ratio()), append(relay, x.Relay), append(client, x.Client)
		}
		v := outboxbench.Median(ratios)
		out = append(out, row{"relay_vs_ceiling", f2(v), ">= 0.4",
			fmt.Sprintf("relay %.0f events/s, client alone %.0f events/s (medians of %d)", outboxbench.Median(relay), outboxbench.Median(client), len(r.Relay)), yes(v >= 0.4)})
	}
	for _, conc := range concurrencies {
		reps := r.Idem[conc]
		if len(reps) == 0 {
			continue
		}
		tx := r.idemRatio(conc, func(x IdemRep) float64 { return x.First / x.Raw })
		dup := r.idemRatio(conc, func(x IdemRep) float64 { return x.Dup / x.First })
		raw := r.idemRatio(conc, func(x IdemRep) float64 { return x.Raw })
		first := r.idemRatio(conc, func(x IdemRep) float64 { return x.First })
		d := r.idemRatio(conc, func(x IdemRep) float64 { return x.Dup })
		out = append(out,
			row{fmt.Sprintf("tx_vs_raw_c%d", conc), f2(tx), ">= 0.7", fmt.Sprintf("first %.0f/s vs raw INSERT %.0f/s", first, raw), yes(tx >= 0.7)},
			row{fmt.Sprintf("dup_vs_first_c%d", conc), f2(dup), ">= 3", fmt.Sprintf("duplicate %.0f/s vs first %.0f/s", d, first), yes(dup >= 3)})
	}
	if p := r.E2E; p != nil {
		detail := fmt.Sprintf("%d orders at %.0f/s for %s, all shipped: %t", p.Posted, p.Rate, p.Duration, p.AllShipped())
		out = append(out,
			row{"e2e_p50_ms", f1ms(p.Quantile(0.5)), "", detail, nil},
			row{"e2e_p99_ms", f1ms(p.Quantile(0.99)), "< 50", fmt.Sprintf("max %s", ms(p.Quantile(1))), yes(p.Quantile(0.99) < e2eTargetP99)})
	}
	if len(r.MaxPhases) > 0 {
		var tried []string
		for _, p := range r.MaxPhases {
			mark := "no"
			if sustained(p) {
				mark = "ok"
			}
			tried = append(tried, fmt.Sprintf("%.0f/s %s (p99 %s)", p.Rate, mark, ms(p.Quantile(0.99))))
		}
		out = append(out, row{"max_orders_per_s", fmt.Sprintf("%.0f", r.MaxRate), ">= 200", strings.Join(tried, ", "), yes(r.MaxRate >= 200)})
	}
	if len(r.CPUFns) > 0 {
		worst := CPUUse{}
		var parts []string
		for _, c := range r.CPUFns {
			if c.PerEvent() > worst.PerEvent() {
				worst = c
			}
			parts = append(parts, fmt.Sprintf("%s %.2f", c.Name, c.PerEvent()))
		}
		out = append(out, row{"cpu_ms_per_event", f2(worst.PerEvent()), "<= 1.0", "worst " + worst.Name + "; " + strings.Join(parts, ", "), yes(worst.PerEvent() <= 1.0)})
	}
	if len(r.Cold) > 0 && r.ColdBare.Median > 0 {
		worst := ColdStart{}
		parts := []string{fmt.Sprintf("bare %s (listening %s)", ms(r.ColdBare.Median), ms(r.ColdBare.Listening))}
		for _, c := range r.Cold {
			note := ""
			if c.LocalSink {
				note = ", local JSON-lines sink: not counted"
			} else if c.Median > worst.Median {
				worst = c
			}
			parts = append(parts, fmt.Sprintf("%s %s (listening %s%s)", c.Name, ms(c.Median), ms(c.Listening), note))
		}
		v := float64(worst.Median) / float64(r.ColdBare.Median)
		out = append(out, row{"coldstart_vs_bare", f2(v), "<= 1.3",
			fmt.Sprintf("worst %s; %s", worst.Name, strings.Join(parts, ", ")), yes(v <= 1.3)})
	}
	return out
}

func f2(v float64) string         { return fmt.Sprintf("%.2f", v) }
func f1ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// Write prints the table, the CPU breakdown and the bench: line.
func (r *Results) Write(w io.Writer) {
	rows := r.rows()
	mode := "full"
	if r.Quick {
		mode = "quick (BENCH_QUICK=1: one short repetition, numbers not meaningful)"
	}
	fmt.Fprintf(w, "\nbenchmarks: %s run, %s, %d CPUs, %s/%s, load average %s before, %s after, %s\n\n",
		mode, r.Started.UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, r.LoadBefore, r.LoadAfter, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "| measure | value | target | met | detail |\n|---|---:|---|---|---|\n")
	for _, x := range rows {
		met := ""
		if x.met != nil {
			met = "no"
			if *x.met {
				met = "yes"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", x.key, x.value, x.target, met, x.detail)
	}
	cpuTable := func(title string, fns, others []CPUUse, secs float64) {
		if len(fns) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s\n\n| process | CPU | events | ms/event | %% of one core |\n|---|---:|---:|---:|---:|\n", title)
		for _, c := range append(append([]CPUUse(nil), fns...), others...) {
			fmt.Fprintf(w, "| %s | %s | %d | %.2f | %.1f |\n", c.Name, c.CPU.Round(time.Millisecond), c.Events, c.PerEvent(), 100*c.CPU.Seconds()/secs)
		}
	}
	if r.E2E != nil {
		cpuTable(fmt.Sprintf("CPU during the end-to-end phase (%d orders; events = pushes handled, orders for the orders API and for the rest):", r.E2E.Posted),
			r.CPUFns, r.CPUOthers, r.E2E.Duration.Seconds()+r.E2E.Drain.Seconds())
	}
	cpuTable(fmt.Sprintf("CPU with no traffic (%.1f s idle):", r.IdleSeconds), r.IdleFns, r.IdleOthers, r.IdleSeconds)
	if r.Err != nil {
		fmt.Fprintf(w, "\nFAILED: %v\n", r.Err)
	}
	var kv []string
	for _, x := range rows {
		kv = append(kv, x.key+"="+x.value)
	}
	if r.Quick {
		kv = append(kv, "quick=1")
	}
	ok := "ok=1"
	if r.Err != nil {
		ok = "ok=0"
	}
	kv = append(kv, ok)
	fmt.Fprintf(w, "\nbench: %s\n", strings.Join(kv, " "))
}
