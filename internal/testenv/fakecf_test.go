package testenv

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFakeCloudflareValidates checks that the fake refuses what the real API documents as
// invalid, so that a client passing against it sends what Cloudflare expects.
func TestFakeCloudflareValidates(t *testing.T) {
	fake := NewFakeCloudflare(t, FakeCloudflareConfig{ParentAccessKeyID: "parent"})
	client := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 10 * time.Second}}
	t.Cleanup(client.CloseIdleConnections)
	good := `{"bucket":"b","parentAccessKeyId":"parent","permission":"object-read-only","ttlSeconds":900}`
	path := "/accounts/" + fake.AccountID() + "/r2/temp-access-credentials"
	tests := []struct {
		name        string
		method      string
		path        string
		auth        string
		contentType string
		body        string
		wantStatus  int
		wantCode    int
		wantMessage string
	}{
		{name: "ok", body: good, wantStatus: 200},
		{name: "ok with prefixes and objects", body: `{"bucket":"b","parentAccessKeyId":"parent","permission":"admin-read-write","ttlSeconds":604800,"prefixes":["a/"],"objects":["b"]}`, wantStatus: 200},
		{name: "no auth", auth: "-", body: good, wantStatus: 401, wantCode: 10000},
		{name: "wrong token", auth: "Bearer nope", body: good, wantStatus: 401, wantCode: 10000},
		{name: "wrong path", path: "/accounts/other/r2/temp-access-credentials", body: good, wantStatus: 404, wantCode: 7000},
		{name: "GET", method: http.MethodGet, wantStatus: 405},
		{name: "form body", contentType: "application/x-www-form-urlencoded", body: good, wantStatus: 400, wantMessage: "Content-Type"},
		{name: "malformed", body: `{"bucket":`, wantStatus: 400, wantMessage: "invalid JSON"},
		{name: "unknown field", body: `{"bucket":"b","parentAccessKeyId":"parent","permission":"object-read-only","ttlSeconds":900,"actions":["GetObject"]}`, wantStatus: 400, wantMessage: "unknown field"},
		{name: "no bucket", body: `{"parentAccessKeyId":"parent","permission":"object-read-only","ttlSeconds":900}`, wantStatus: 400, wantMessage: "bucket is required"},
		{name: "other parent", body: strings.Replace(good, `"parent"`, `"intruder"`, 1), wantStatus: 400, wantMessage: "parentAccessKeyId"},
		{name: "bad permission", body: strings.Replace(good, "object-read-only", "read-only", 1), wantStatus: 400, wantMessage: "permission"},
		{name: "no ttl", body: `{"bucket":"b","parentAccessKeyId":"parent","permission":"object-read-only"}`, wantStatus: 400, wantMessage: "ttlSeconds is required"},
		{name: "ttl zero", body: strings.Replace(good, "900", "0", 1), wantStatus: 400, wantMessage: "ttlSeconds"},
		{name: "ttl over a week", body: strings.Replace(good, "900", "604801", 1), wantStatus: 400, wantMessage: "ttlSeconds"},
		{name: "ttl fractional", body: strings.Replace(good, "900", "900.5", 1), wantStatus: 400, wantMessage: "ttlSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			p := tt.path
			if p == "" {
				p = path
			}
			req, err := http.NewRequestWithContext(t.Context(), method, fake.BaseURL+p, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.auth {
			case "":
				req.Header.Set("Authorization", "Bearer "+fake.Token())
			case "-":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Success bool      `json:"success"`
				Errors  []CFError `json:"errors"`
				Result  *struct {
					AccessKeyID string `json:"accessKeyId"`
				} `json:"result"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatalf("decode envelope: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d (%+v), want %d", resp.StatusCode, env.Errors, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				if !env.Success || env.Result == nil || env.Result.AccessKeyID == "" {
					t.Errorf("success envelope = %+v", env)
				}
				return
			}
			if env.Success || len(env.Errors) == 0 {
				t.Fatalf("error envelope = %+v", env)
			}
			if tt.wantCode != 0 && env.Errors[0].Code != tt.wantCode {
				t.Errorf("code = %d, want %d", env.Errors[0].Code, tt.wantCode)
			}
			if !strings.Contains(env.Errors[0].Message, tt.wantMessage) {
				t.Errorf("message = %q, want %q", env.Errors[0].Message, tt.wantMessage)
			}
		})
	}
	if n := len(fake.Issued()); n != 2 {
		t.Errorf("issued %d credentials, want 2", n)
	}
}

// TestFakeCloudflareRateLimit: beyond the limit the fake answers 429 with Retry-After and
// blocks every call for the block time, as Cloudflare does.
func TestFakeCloudflareRateLimit(t *testing.T) {
	fake := NewFakeCloudflare(t, FakeCloudflareConfig{RateLimit: RateLimit{Calls: 3, Window: time.Minute, Block: 5 * time.Minute}})
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	body := `{"bucket":"b","parentAccessKeyId":"p","permission":"object-read-only","ttlSeconds":900}`
	for i, want := range []int{200, 200, 200, 429, 429} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fake.BaseURL+"/accounts/"+fake.AccountID()+"/r2/temp-access-credentials", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fake.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("call %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "300" {
			t.Errorf("call %d: Retry-After %q, want 300", i+1, resp.Header.Get("Retry-After"))
		}
	}
	if n := fake.RateLimited(); n != 2 {
		t.Errorf("RateLimited() = %d, want 2", n)
	}
}
