package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/abacus-go/abacus/bench/internal/numfmt"
)

// writeJSON writes rep as indented JSON.
func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable writes rep for people.
func writeTable(w io.Writer, rep *Report) error {
	inProcess := !remote(rep.Redis.Kind)
	fmt.Fprintf(w, "Redis: %s\n", rep.Redis.Banner)
	fmt.Fprintf(w, "Host:  %s %s/%s, %d CPUs, GOMAXPROCS %d; %d goroutines, flush interval %gms\n",
		rep.Host.GoVersion, rep.Host.OS, rep.Host.Arch, rep.Host.NumCPU, rep.Host.GOMAXPROCS,
		rep.Config.Concurrency, rep.Config.FlushIntervalMS)
	fmt.Fprintf(w, "Rows:  %d interleaved rounds of %gs per row; ops/s is the median, min–max its range over the rounds\n",
		rep.Config.Rounds, rep.Config.DurationSeconds)
	if inProcess {
		fmt.Fprintln(w, "IN-PROCESS figures: the server runs inside this process, on the same CPUs, and its round\n"+
			"trips never leave it; they are not Redis' figures, so nothing is compared (no ratios).")
	}
	fmt.Fprintln(w)
	nameW := len("benchmark")
	for _, r := range rep.Results {
		nameW = max(nameW, len(r.Name))
	}
	line := func(name, gor, ops, rng, cmds, per, rat, check string) {
		fmt.Fprintf(w, "%-*s %5s %13s %15s %12s %10s %8s  %s\n", nameW, name, gor, ops, rng, cmds, per, rat, check)
	}
	line("benchmark", "gor.", "ops/s", "min–max", "Redis cmd/s", "ops/cmd", "ratio", "check")
	for _, r := range rep.Results {
		gor := strconv.Itoa(r.Goroutines)
		switch {
		case r.Skipped != "":
			line(r.Name, gor, "-", "", "-", "-", "-", "skipped: "+r.Skipped)
			continue
		case r.Error != "":
			line(r.Name, gor, "-", "", "-", "-", "-", "error: "+r.Error)
			continue
		}
		check := ""
		if r.Verified != nil {
			exact := "total exact"
			if r.Group == "unique" {
				exact = "count within 2.43%"
			}
			check = map[bool]string{true: exact, false: "MISMATCH"}[*r.Verified]
		}
		if r.Group == "once" && r.OpsPerCommand > 0 {
			check = strings.TrimPrefix(fmt.Sprintf("%s; %.2f Redis cmd/event", check, 1/r.OpsPerCommand), "; ")
		}
		if r.Note != "" {
			check = strings.TrimPrefix(check+"; "+r.Note, "; ")
		}
		rat := "-"
		if r.Ratio != nil {
			rat = ratio(r.Ratio.Median)
		}
		line(r.Name, gor, human(r.OpsPerSec.Median), abbrev(r.OpsPerSec.Min)+"–"+abbrev(r.OpsPerSec.Max),
			human(r.RedisCommandsPerSec.Median), opsPerCmd(r.OpsPerCommand), rat, check)
	}
	fmt.Fprint(w, `
ops/s and Redis cmd/s are per second of the measured phase. Redis cmd/s is the server's own count
(INFO commandstats deltas; commands run by scripts count too); engine rows include their final Close.
The engine rows add in memory and write each dirty counter's delta once per flush; the other
counter rows send one INCR per event. "total exact": in every round, Redis held exactly the number
of events counted. Unique rows add distinct members; "count within 2.43%": in every round, PFCOUNT
was within three standard errors of HyperLogLog (0.81%) of the members added. Retry-safe add rows
("once") send each event under a token, one in eight a retry of the one before; "total exact":
Redis counted each distinct event once. Redis cmd/event counts the commands scripts ran too.
`)
	if !inProcess {
		fmt.Fprint(w, `ratio: ops/s over the baseline's in the same round, median over the rounds (counters and serial:
naive INCR from the pool; leases: raw SET NX; unique counts: PFADD per event; retry-safe adds: SET
NX, then INCRBY, per event; queues: naive LPUSH + RPOP).
`)
	}
	if len(rep.Headline) > 0 {
		fmt.Fprintln(w)
	}
	names := map[string]string{}
	for _, r := range rep.Results {
		names[r.ID] = r.Name
	}
	for i, h := range rep.Headline {
		over := "the fastest alternative"
		if i > 0 {
			over = "one INCR per event"
		}
		fmt.Fprintf(w, "%s over %s (%s): %s (%s–%s across rounds)\n", names[h.Of], over, names[h.Over],
			ratio(h.Ratio.Median), ratio(h.Ratio.Min), ratio(h.Ratio.Max))
	}
	writeStaleness(w, rep)
	return nil
}

// writeStaleness writes the engine rows' flushing record.
func writeStaleness(w io.Writer, rep *Report) {
	nameW := 0
	for _, r := range rep.Results {
		if r.Staleness != nil {
			nameW = max(nameW, len(r.Name)+1)
		}
	}
	first := true
	for _, r := range rep.Results {
		st := r.Staleness
		if st == nil {
			continue
		}
		if first {
			first = false
			where := ""
			if !remote(rep.Redis.Kind) {
				where = ", IN-PROCESS server"
			}
			fmt.Fprintf(w, "\nStaleness at flush interval %gms with %d goroutines that never block%s: the engine's own\n"+
				"record (Stats.MaxStaleness) of the longest time from the flush a delta just missed to Redis\n"+
				"confirming it, and the background flushes completed while adding, against those due. When few\n"+
				"flushes completed, the end of the row (its final Close) cut the staleness short.\n",
				rep.Config.FlushIntervalMS, r.Goroutines, where)
		}
		ms := func(v float64) string { return numfmt.Thousands(v) + " ms" }
		fmt.Fprintf(w, "%-*s max staleness %s (%s–%s); flushes %s (%s–%s) of %.0f due\n", nameW, r.Name+":",
			ms(st.MaxMS.Median), ms(st.MaxMS.Min), ms(st.MaxMS.Max),
			strconv.FormatFloat(st.Flushes.Median, 'f', -1, 64), strconv.FormatFloat(st.Flushes.Min, 'f', -1, 64),
			strconv.FormatFloat(st.Flushes.Max, 'f', -1, 64), st.Due)
	}
}

func ratio(r float64) string {
	switch {
	case r == 0:
		return "-"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 2, 64) + "×"
	}
	return numfmt.Thousands(r) + "×"
}

func opsPerCmd(r float64) string {
	if r == 0 {
		return "-"
	}
	if r < 100 {
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return numfmt.Thousands(r)
}

// human formats a rate with thousands separators ("12,345,678").
func human(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return numfmt.Thousands(v)
}

// abbrev formats v with three significant digits and a k, M or G suffix
// ("65.6k", "1.62M", "159M").
func abbrev(v float64) string {
	unit := ""
	for _, u := range []string{"k", "M", "G"} {
		if v < 999.5 {
			break
		}
		v, unit = v/1000, u
	}
	prec := 2
	switch {
	case v >= 99.95:
		prec = 0
	case v >= 9.995:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + unit
}
