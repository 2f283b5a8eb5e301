package config

import (
	"strings"
	"testing"
	"time"
)

func TestAWSCredentials(t *testing.T) {
	const head = "accounts:\n  s3:\n    endpoint: https://s3.eu-west-1.amazonaws.com\n    region: eu-west-1\n    credentials:\n"
	const tail = "buckets: [{name: abc, account: s3}]\n"
	tests := []struct {
		name  string
		creds string // under credentials:, indented 6
		env   map[string]string
		want  []string // in the error; none: the config parses
		check func(t *testing.T, a *AWS)
	}{
		{
			name:  "the default chain",
			creds: "aws: {}",
			check: func(t *testing.T, a *AWS) {
				if *a != (AWS{}) {
					t.Errorf("aws = %+v: without a role nothing is defaulted", *a)
				}
			},
		},
		{
			name: "a role from a profile, every field",
			creds: "aws:\n        profile: prod\n        role_arn: arn:aws:iam::123456789012:role/app\n        external_id: ${EXTERNAL_ID}\n" +
				"        session_name: signet\n        duration: 2h\n        sts_endpoint: https://sts.eu-west-1.amazonaws.com",
			env: map[string]string{"EXTERNAL_ID": "ext-1"},
			check: func(t *testing.T, a *AWS) {
				want := AWS{Profile: "prod", RoleARN: "arn:aws:iam::123456789012:role/app", ExternalID: "ext-1",
					SessionName: "signet", Duration: Duration(2 * time.Hour), STSEndpoint: "https://sts.eu-west-1.amazonaws.com"}
				if *a != want {
					t.Errorf("aws = %+v, want %+v", *a, want)
				}
			},
		},
		{
			name:  "a role gets the default session name and duration",
			creds: "aws: {role_arn: 'arn:aws-cn:iam::123456789012:role/path/app'}",
			check: func(t *testing.T, a *AWS) {
				if a.Duration != Duration(time.Hour) || !strings.HasPrefix(a.SessionName, "signet") || checkSessionName(a.SessionName) != nil {
					t.Errorf("aws = %+v", *a)
				}
			},
		},
		{
			name:  "aws is exclusive with the other sources",
			creds: "aws: {}\n      access_key_id: a\n      secret_access_key: b",
			want:  []string{"accounts.s3.credentials: give exactly one credential source: static keys, r2_temp_api, r2_temp_local, file or aws"},
		},
		{
			name:  "aws and a file",
			creds: "aws: {}\n      file: /run/creds.json",
			want:  []string{"give exactly one credential source"},
		},
		{
			name:  "role settings without a role",
			creds: "aws: {external_id: x, session_name: s1, duration: 1h}",
			want: []string{
				"accounts.s3.credentials.aws.external_id: needs role_arn",
				"accounts.s3.credentials.aws.session_name: needs role_arn",
				"accounts.s3.credentials.aws.duration: needs role_arn",
			},
		},
		{
			name:  "a bad role ARN, session name, duration and STS endpoint together",
			creds: "aws: {role_arn: 'arn:aws:iam::1234:user/bob', session_name: 'a b', duration: 13h, sts_endpoint: 'sts.amazonaws.com'}",
			want: []string{
				`accounts.s3.credentials.aws.role_arn: "arn:aws:iam::1234:user/bob" is not an IAM role ARN`,
				`accounts.s3.credentials.aws.session_name: "a b" must be 2 to 64 characters`,
				"accounts.s3.credentials.aws.duration: 13h0m0s must be between 15m and 12h",
				`accounts.s3.credentials.aws.sts_endpoint: "sts.amazonaws.com": the scheme must be http or https`,
			},
		},
		{
			name:  "a duration too short for the refresh",
			creds: "aws: {role_arn: 'arn:aws:iam::123456789012:role/app', duration: 15m}\n      safety_margin: 10m",
			want:  []string{"accounts.s3.credentials.aws.duration: 15m0s must be longer than 30m0s"},
		},
		{
			name:  "an unknown key",
			creds: "aws: {role: x}",
			want:  []string{`unknown key "role"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(head+"      "+tt.creds+"\n"+tail), env(tt.env))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				cr := cfg.Accounts["s3"].Credentials
				if cr.Source() != SourceAWS || cr.BucketScoped() {
					t.Errorf("source %s, bucket scoped %v", cr.Source(), cr.BucketScoped())
				}
				tt.check(t, cr.AWS)
				return
			}
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestDefaultAWSSessionName(t *testing.T) {
	if err := checkSessionName(DefaultAWSSessionName()); err != nil {
		t.Error(err)
	}
}
