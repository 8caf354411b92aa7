package webhook

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pw@host/x":          "http://***@host/x",
		"https://user@host:8443/x?q=1":   "https://***@host:8443/x?q=1",
		"http://:secret@host/":           "http://***@host/",
		"http://host/x?email=a@b.c":      "http://host/x?email=a@b.c",
		"http://host/x":                  "http://host/x",
		"http://us%3Aer:p%40ss@host/x#f": "http://***@host/x#f",
		"":                               "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
		if got := RedactURL(in); strings.Contains(got, "pw") || strings.Contains(got, "secret") || strings.Contains(got, "ss@") {
			t.Errorf("RedactURL(%q) = %q still shows a credential", in, got)
		}
	}
}
