package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "false"}}
	tests := []struct {
		name   string
		ldflag string
		bi     *debug.BuildInfo
		want   string
	}{
		{name: "go install module@version", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, want: "v1.2.3"},
		{name: "make build", ldflag: "v1.2.3-4-gabc", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, want: "v1.2.3-4-gabc (commit 0123456789ab)"},
		{name: "checkout with changes", bi: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202181500-0123456789ab+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}},
			want: "v0.0.0-20261202181500-0123456789ab+dirty (commit 0123456789ab, modified)"},
		{name: "no build info", want: "(devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.ldflag, tt.bi); got != tt.want {
				t.Errorf("versionOf = %q, want %q", got, tt.want)
			}
		})
	}
}
