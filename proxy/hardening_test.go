package proxy_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/signet-proxy/signet/creds"
	"github.com/signet-proxy/signet/internal/testenv"
)

// TestPresignFloodKeepsRoutesServed: presigns on an r2_temp_api account cannot spend the
// API calls the route's own refreshes need. Against an API rate limited as Cloudflare's is
// (here 25 calls, then blocked), a flood of presigns for distinct objects gets 503 SlowDown
// with Retry-After once signet's budget (20, 8 kept for refreshes) is spent, the API is
// never pushed over its limit, presigns of the same object reuse their credential, and the
// route's credential goes on being refreshed and serving (issue 12 item 1).
func TestPresignFloodKeepsRoutesServed(t *testing.T) {
	mints := make(chan error, 1024)
	e := newR2Env(t, nil, apiCreds+`
        ttl: 6s
        api_budget: 20
        api_refresh_reserve: 8
      safety_margin: 1s`, r2Routes, func(o *creds.CacheOptions) {
		o.OnMint = func(k creds.Key, err error, _ time.Duration) {
			if k.Bucket == "photos" && k.Objects == "" {
				mints <- err
			}
		}
	})
	e.cf.SetRateLimit(testenv.RateLimit{Calls: 25, Window: 5 * time.Minute, Block: 5 * time.Minute})
	put(t, e.s3, "photos", "cat.jpg", []byte("meow"))

	post := func(body string) *http.Response {
		t.Helper()
		resp, err := http.Post(e.signet.URL+"/_signet/presign", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	calls := e.cf.Calls()
	for range 3 {
		resp := post(`{"bucket": "photos", "key": "cat.jpg", "expires": 60}`)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("presign: %d", resp.StatusCode)
		}
	}
	if n := e.cf.Calls() - calls; n != 1 {
		t.Errorf("3 presigns of one object made %d API calls, want 1 (reused)", n)
	}
	var ok, slowDown int
	for i := range 40 {
		resp := post(fmt.Sprintf(`{"bucket": "photos", "key": "flood-%d", "expires": 60}`, i))
		switch resp.StatusCode {
		case 200:
			ok++
			resp.Body.Close()
		case 503:
			slowDown++
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			if e := readError(t, resp); e.Code != "SlowDown" || ra < 1 {
				t.Errorf("presign beyond the budget: %s (Retry-After %q), want SlowDown with a Retry-After", e.Code, resp.Header.Get("Retry-After"))
			}
		default:
			resp.Body.Close()
			t.Fatalf("presign %d: status %d", i, resp.StatusCode)
		}
	}
	if slowDown == 0 || ok > 12 {
		t.Errorf("flood of 40 presigns: %d minted, %d SlowDown; want the budget to stop it at about 10", ok, slowDown)
	}
	if n := e.cf.RateLimited(); n != 0 {
		t.Errorf("the API rate limited %d calls: signet went over Cloudflare's limit", n)
	}
	// The route's refresh (due 2/3 into its 5 s of usable life) still gets its API calls.
	for drained := false; !drained; {
		select {
		case <-mints:
		default:
			drained = true
		}
	}
	select {
	case err := <-mints:
		if err != nil {
			t.Fatalf("the route's refresh after the flood: %v", err)
		}
	case <-time.After(30 * time.Second): // a bound on failure only
		t.Fatal("no refresh of the route's credential after the flood")
	}
	if b := get(t, e.s3, "photos", "cat.jpg"); string(b) != "meow" {
		t.Errorf("GET after the flood: %q", b)
	}
}
