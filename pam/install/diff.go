package install

import (
	"fmt"
	"strings"
)

// Diff returns a unified diff (three lines of context) from old to new of
// the file path; old nil is a new file, new nil a removed one. The files
// install-pam edits have tens of lines, so a plain LCS table is enough.
func Diff(path string, old, new []byte) string {
	a, _ := splitLines(old)
	b, _ := splitLines(new)
	from, to := path, path
	if old == nil {
		from = "/dev/null"
	}
	if new == nil {
		to = "/dev/null"
	}
	// lcs[i][j]: length of the longest common subsequence of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // index in a of this or the next line of a
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	// An op is shown when a change is within ctx lines of it; each run of
	// shown ops is a hunk.
	const ctx = 3
	shown := make([]bool, len(ops))
	for k, o := range ops {
		if o.kind != ' ' {
			for m := max(k-ctx, 0); m <= min(k+ctx, len(ops)-1); m++ {
				shown[m] = true
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", from, to)
	for k := 0; k < len(ops); {
		if !shown[k] {
			k++
			continue
		}
		end := k
		for end < len(ops) && shown[end] {
			end++
		}
		var na, nb int
		for _, o := range ops[k:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(ops[k].ai, na), hunkRange(ops[k].bi, nb))
		for _, o := range ops[k:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		k = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
