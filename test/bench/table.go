package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// row is one line of the table: a metric measured for latchkey and, in the
// same run, for the reference program.
type row struct {
	metric string
	ours   value
	ref    value
	// goal says what passes, for the reader; check decides it (nil: no
	// goal, the row is information only).
	goal  string
	check func(ours, ref value) bool
}

// value is one measured figure; ok is false when it was not measured (the
// row then prints "not measured" and no ratio).
type value struct {
	v    float64
	unit string
	ok   bool
}

func val(v float64, unit string) value { return value{v: v, unit: unit, ok: true} }

var notMeasured = value{}

func (x value) String() string {
	if !x.ok {
		return "not measured"
	}
	switch {
	case x.unit == "":
		return trimFloat(x.v)
	case x.unit == "×":
		return trimFloat(x.v) + "×"
	default:
		return trimFloat(x.v) + " " + x.unit
	}
}

func trimFloat(f float64) string {
	switch {
	case f == float64(int64(f)) && f < 1e6 && f > -1e6:
		return fmt.Sprintf("%d", int64(f))
	case f >= 100 || f <= -100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10 || f <= -10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

// ratio is ours/ref, printed only when both were measured in this run.
func (r row) ratio() string {
	if !r.ours.ok || !r.ref.ok || r.ref.v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", r.ours.v/r.ref.v)
}

// verdict is "pass", "FAIL", "not measured" (a goal whose inputs are
// missing) or "" (no goal).
func (r row) verdict() string {
	if r.check == nil {
		return ""
	}
	if !r.ours.ok || (strings.Contains(r.goal, "reference") && !r.ref.ok) {
		return "not measured"
	}
	if r.check(r.ours, r.ref) {
		return "pass"
	}
	return "FAIL"
}

// Goal checks.
func atMostTimesRef(k float64) func(o, r value) bool {
	return func(o, r value) bool { return o.v <= k*r.v }
}

func atMost(limit float64) func(o, r value) bool {
	return func(o, _ value) bool { return o.v <= limit }
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tlatchkey\treference\tratio\tgoal\tresult")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.metric, r.ours, r.ref, r.ratio(), r.goal, r.verdict())
	}
	tw.Flush()
}

func markdownTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| metric | latchkey | reference | ratio | goal | result |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.metric, r.ours, r.ref, r.ratio(), r.goal, r.verdict())
	}
}

// missed returns the metrics whose goal failed or could not be measured.
func missed(rows []row) []string {
	var out []string
	for _, r := range rows {
		if v := r.verdict(); v == "FAIL" || v == "not measured" {
			out = append(out, r.metric+" ("+v+")")
		}
	}
	return out
}
