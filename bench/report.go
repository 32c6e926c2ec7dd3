package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// writeJSON writes rep as indented JSON.
func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable writes rep for people.
func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "Redis: %s\n", rep.Redis.Banner)
	fmt.Fprintf(w, "Host:  %s %s/%s, %d CPUs, GOMAXPROCS %d; %gs per row, %d goroutines, flush interval %gms\n\n",
		rep.Host.GoVersion, rep.Host.OS, rep.Host.Arch, rep.Host.NumCPU, rep.Host.GOMAXPROCS,
		rep.Config.DurationSeconds, rep.Config.Concurrency, rep.Config.FlushIntervalMS)
	nameW := len("benchmark")
	for _, r := range rep.Results {
		nameW = max(nameW, len(r.Name))
	}
	line := func(name, gor, ops, cmds, per, rat, check string) {
		fmt.Fprintf(w, "%-*s %5s %13s %12s %10s %8s  %s\n", nameW, name, gor, ops, cmds, per, rat, check)
	}
	line("benchmark", "gor.", "ops/s", "Redis cmd/s", "ops/cmd", "ratio", "check")
	for _, r := range rep.Results {
		gor := strconv.Itoa(r.Goroutines)
		switch {
		case r.Skipped != "":
			line(r.Name, gor, "-", "-", "-", "-", "skipped: "+r.Skipped)
			continue
		case r.Error != "":
			line(r.Name, gor, "-", "-", "-", "-", "error: "+r.Error)
			continue
		}
		check := ""
		if r.Verified != nil {
			check = map[bool]string{true: "total exact", false: "MISMATCH"}[*r.Verified]
		}
		if r.Note != "" {
			check = strings.TrimPrefix(check+"; "+r.Note, "; ")
		}
		line(r.Name, gor, human(r.OpsPerSec), human(r.RedisCommandsPerSec), opsPerCmd(r.OpsPerCommand), ratio(r.Ratio), check)
	}
	fmt.Fprint(w, `
ops/s and Redis cmd/s are per second of the measured phase. Redis cmd/s is the server's own count
(INFO commandstats deltas; commands run by scripts count too); engine rows include their final Close.
ratio: ops/s over the baseline's (counters and serial: naive INCR from the pool; leases: raw SET NX;
queues: naive LPUSH + RPOP).
`)
	for _, s := range rep.Summary {
		verdict := "met"
		if !s.Met {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "%s / %s = %s  (goal ≥ %s×, %s: %s)\n", s.Of, s.Over, ratio(s.Ratio),
			thousands(s.Goal), s.Source, verdict)
	}
	return nil
}

func ratio(r float64) string {
	switch {
	case r == 0:
		return "-"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 2, 64) + "×"
	}
	return thousands(r) + "×"
}

func opsPerCmd(r float64) string {
	if r == 0 {
		return "-"
	}
	if r < 100 {
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return thousands(r)
}

// human formats a rate with thousands separators ("12,345,678").
func human(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return thousands(v)
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
