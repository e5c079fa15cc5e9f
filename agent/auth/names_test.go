package auth

import (
	"regexp"
	"testing"
)

// RegionName accepts exactly what the pattern it replaced accepted.
func TestRegionName(t *testing.T) {
	re := regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+$`)
	for _, s := range []string{
		"eu-west-1", "us-gov-west-1", "cn-hangzhou", "ap-southeast-5", "me-central-1", "ab-c",
		"", "e", "eu", "eu-", "eu--west", "eu-west-", "-eu-west", "EU-west-1", "eu-West-1", "eu_west_1",
		"eu-west-1\n", "eu-west-1/x", "e1-west", "1u-west", "eu-west-1.", "euw-1", "eu-wést", "eu-west 1",
	} {
		if got, want := RegionName(s), re.MatchString(s); got != want {
			t.Errorf("RegionName(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzRegionName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+$`)
	f.Add("eu-west-1")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := RegionName(s), re.MatchString(s); got != want {
			t.Errorf("RegionName(%q) = %v, want %v", s, got, want)
		}
	})
}
