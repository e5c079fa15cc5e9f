package main

import (
	"strings"
	"testing"
)

// A ratio and a relative goal need both programs measured in the same run;
// otherwise the row says so instead of comparing with a figure from
// elsewhere.
func TestRowVerdicts(t *testing.T) {
	tests := map[string]struct {
		r              row
		ratio, verdict string
	}{
		"both measured, pass": {row{ours: val(4, "ms"), ref: val(10, "ms"), goal: "≤ 0.5× reference", check: atMostTimesRef(0.5)}, "0.40", "pass"},
		"both measured, fail": {row{ours: val(6, "ms"), ref: val(10, "ms"), goal: "≤ 0.5× reference", check: atMostTimesRef(0.5)}, "0.60", "FAIL"},
		"reference missing":   {row{ours: val(4, "ms"), ref: notMeasured, goal: "≤ 0.5× reference", check: atMostTimesRef(0.5)}, "—", "not measured"},
		"ours missing":        {row{ours: notMeasured, ref: val(1, ""), goal: "0", check: atMost(0)}, "—", "not measured"},
		"absolute goal":       {row{ours: val(1.5, "×"), ref: notMeasured, goal: "≤ 2", check: atMost(2)}, "—", "pass"},
		"no goal":             {row{ours: val(1, "s"), ref: val(2, "s")}, "0.50", ""},
		"zero reference":      {row{ours: val(0, ""), ref: val(0, ""), goal: "0", check: atMost(0)}, "—", "pass"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.r.ratio(); got != tc.ratio {
				t.Errorf("ratio = %q, want %q", got, tc.ratio)
			}
			if got := tc.r.verdict(); got != tc.verdict {
				t.Errorf("verdict = %q, want %q", got, tc.verdict)
			}
		})
	}
}

func TestMissedListsFailuresAndUnmeasuredGoals(t *testing.T) {
	rows := []row{
		{metric: "a", ours: val(1, ""), goal: "0", check: atMost(0)},
		{metric: "b", ours: val(0, ""), goal: "0", check: atMost(0)},
		{metric: "c", ours: val(1, ""), ref: notMeasured, goal: "≤ 1× reference", check: atMostTimesRef(1)},
		{metric: "d", ours: val(1, "")},
	}
	got := strings.Join(missed(rows), "; ")
	if want := "a (FAIL); c (not measured)"; got != want {
		t.Errorf("missed = %q, want %q", got, want)
	}
}

func TestSummarizeAttributesInitsByPackage(t *testing.T) {
	script := `
	ffffffff8162aa01 __mmap_region
	         4a0000 github.com/hashicorp/vault/api.init
	         400000 runtime.doInit1

	         4b0000 regexp.compile
	         4a0000 github.com/hashicorp/vault/api.init.0.func1
	         400000 runtime.doInit1

	         4c0000 main.main
	         400000 runtime.main
`
	got := summarize(script, 1)
	for _, want := range []string{"3 samples over 1 logins", "33% in the kernel", "67% under package inits", "github.com/hashicorp/vault/api 67%"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
}
