// Package doctor prints the checks of `latchkey-ssh-helper doctor` and
// `latchkey-agent doctor`: one line per check, OK, WARN or FAIL, and for
// anything but OK the fix.
package doctor

import (
	"fmt"
	"io"
)

// Status of one check.
type Status int

// The statuses, in increasing order of trouble.
const (
	OK Status = iota
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	}
	return "FAIL"
}

// Result is one check's outcome: Name says what was checked, Detail what
// was found, Fix (for WARN and FAIL) what to do.
type Result struct {
	Status Status
	Name   string
	Detail string
	Fix    string
}

// Report collects results and prints each as it comes.
type Report struct {
	Out     io.Writer
	Results []Result
}

// Add records r and prints it as one line.
func (rp *Report) Add(r Result) {
	rp.Results = append(rp.Results, r)
	line := fmt.Sprintf("%-4s %s: %s", r.Status, r.Name, r.Detail)
	if r.Status != OK && r.Fix != "" {
		line += " — fix: " + r.Fix
	}
	fmt.Fprintln(rp.Out, line)
}

// OK, Warn and Fail add a result of that status.
func (rp *Report) OK(name, detail string) { rp.Add(Result{OK, name, detail, ""}) }

// Warn adds a WARN result.
func (rp *Report) Warn(name, detail, fix string) { rp.Add(Result{Warn, name, detail, fix}) }

// Fail adds a FAIL result.
func (rp *Report) Fail(name, detail, fix string) { rp.Add(Result{Fail, name, detail, fix}) }

// Worst returns the worst status reported (OK when none).
func (rp *Report) Worst() Status {
	w := OK
	for _, r := range rp.Results {
		w = max(w, r.Status)
	}
	return w
}
