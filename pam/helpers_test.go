package pam

import (
	"encoding/json"
	"os"
	"testing"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFileT(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func parseRecord(s string) (Record, bool) {
	var r Record
	err := json.Unmarshal([]byte(s), &r)
	return r, err == nil
}
