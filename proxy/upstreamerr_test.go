package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestScrubErrorBody(t *testing.T) {
	const token = "FwoGZXIvYXdzEJr//////////wEaDPsecrettoken"
	tests := []struct {
		name, status, ctype, body, want string
	}{
		{name: "signature mismatch", ctype: "application/xml",
			body: `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message><AWSAccessKeyId>AKID</AWSAccessKeyId>` +
				`<StringToSign>AWS4-HMAC-SHA256&#xA;x</StringToSign><SignatureProvided>abc</SignatureProvided><StringToSignBytes>41 57</StringToSignBytes>` +
				`<CanonicalRequest>GET&#xA;/b/k&#xA;x-amz-security-token:` + token + `</CanonicalRequest><CanonicalRequestBytes>47 45</CanonicalRequestBytes><RequestId>r</RequestId></Error>`,
			want: `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>m</Message><RequestId>r</RequestId></Error>`},
		{name: "a token element", body: `<Error><Code>InvalidToken</Code><Token-0>` + token + `</Token-0><X-Amz-Security-Token>` + token + `</X-Amz-Security-Token></Error>`,
			want: `<Error><Code>InvalidToken</Code></Error>`},
		{name: "the token elsewhere", body: `<Error><Message>token ` + token + ` is bad</Message></Error>`,
			want: `<Error><Message>token REDACTED is bad</Message></Error>`},
		{name: "other errors unchanged", body: `<Error><Code>NoSuchKey</Code><Key>a<b</Key></Error>`, want: `<Error><Code>NoSuchKey</Code><Key>a<b</Key></Error>`},
		{name: "object bytes untouched", status: "200", body: `<CanonicalRequest>` + token + `</CanonicalRequest>`, want: `<CanonicalRequest>` + token + `</CanonicalRequest>`},
		{name: "not xml", ctype: "application/json", body: `{"CanonicalRequest":1}`, want: `{"CanonicalRequest":1}`},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				resp := &http.Response{StatusCode: 403, Header: http.Header{}}
				if tt.status == "200" {
					resp.StatusCode = 200
				}
				if tt.ctype != "" {
					resp.Header.Set("Content-Type", tt.ctype)
				}
				var body io.Reader = strings.NewReader(tt.body)
				if oneByte {
					body = iotest.OneByteReader(body)
				}
				resp.Body = io.NopCloser(body)
				scrubErrorBody(resp, token)
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tt.want {
					t.Errorf("got  %s\nwant %s", got, tt.want)
				}
			})
		}
	}
}
