package owner

import "testing"

func TestIDs(t *testing.T) {
	tests := []struct {
		name    string
		f       func(string) (int, error)
		in      string
		want    int
		wantErr bool
	}{
		{"uid number", UID, "1234", 1234, false},
		{"uid root", UID, "root", 0, false},
		{"uid unknown", UID, "no-such-user-latchkey", -1, true},
		{"gid number", GID, "65534", 65534, false},
		{"gid root", GID, "root", 0, false},
		{"gid unknown", GID, "no-such-group-latchkey", -1, true},
		{"negative is a name", UID, "-1", -1, true},
	}
	for _, tc := range tests {
		got, err := tc.f(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("%s: got %d, %v", tc.name, got, err)
		}
	}
}
