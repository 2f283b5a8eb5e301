package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Idle timeouts on bodies: a transfer that moves no byte for the Handler's BodyIdleTimeout
// is ended, whichever side stalled; a slow transfer that keeps moving is never cut. Each is a
// deadline pushed forward whenever bytes move:
//
//   - the client's request body: a read deadline on its connection, set before each read;
//   - the upstream taking that body: a watchdog that runs while nothing asks for the next
//     piece (the transport is blocked writing upstream), which resets the upload's
//     connection and cancels its request;
//   - the upstream's response body: a watchdog that runs while a read waits on the
//     upstream, which cancels the upstream request;
//   - the client taking the response: a write deadline on its connection, set before each
//     write.

var (
	// errClientIdle is the cause when the client sends nothing of its body for the timeout.
	errClientIdle = errors.New("the client sent no body bytes within the idle timeout")
	// errUpstreamIdle is the cause when the upstream moves no body byte for the timeout.
	errUpstreamIdle = errors.New("the upstream moved no body bytes within the idle timeout")
)

// deadlineBody sets rc's read deadline before each read of the client's body.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  deadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if at, ok := b.d.push(); ok {
		_ = b.rc.SetReadDeadline(at)
	}
	return b.ReadCloser.Read(p)
}

// deadline is an idle deadline pushed forward as bytes move. Moving a connection's deadline
// modifies a runtime timer, and a large transfer over TLS moves in 16 KiB records: pushing
// it before each of the 65,536 reads or writes of a GiB showed in the CPU profile. So it is
// pushed only once less than 15/16 of the timeout remains: a transfer that stalls is
// still ended, between 15/16 of the timeout and the timeout after its last byte.
type deadline struct {
	idle time.Duration
	at   time.Time // the deadline last set; zero: none yet
}

// push returns the deadline to set now, if it needs moving.
func (d *deadline) push() (time.Time, bool) {
	now := time.Now()
	if !d.at.IsZero() && d.at.Sub(now) > d.idle-d.idle/16 {
		return time.Time{}, false
	}
	d.at = now.Add(d.idle)
	return d.at, true
}

// watchdog calls fire once when it has run for idle without being stopped.
//
// run and stop happen around every read of a body, 65,536 times a GiB over TLS (16 KiB
// records), so they only store when the watched wait began; the timer is not moved per
// read. It fires after idle and then looks: nothing watched, or a wait that began less than
// idle ago, re-arms it for the rest; a wait as old as idle fires. A stall is caught exactly
// idle after it began, as when the timer was reset per read.
type watchdog struct {
	idle     time.Duration
	fire     func()
	base     time.Time    // since carries monotonic offsets from it
	since    atomic.Int64 // offset from base + 1 of the wait being watched; 0: none
	fired    atomic.Bool
	finished atomic.Bool // stopped for good
	mu       sync.Mutex  // orders re-arming against finish
	t        *time.Timer
}

func newWatchdog(idle time.Duration, fire func()) *watchdog {
	w := &watchdog{idle: idle, fire: fire, base: time.Now()}
	w.t = time.AfterFunc(idle, w.check)
	return w
}

// run starts watching a wait; stop ends it.
func (w *watchdog) run()  { w.since.Store(int64(time.Since(w.base)) + 1) }
func (w *watchdog) stop() { w.since.Store(0) }

// check runs on the timer.
func (w *watchdog) check() {
	if w.finished.Load() {
		return
	}
	next := w.idle
	if s := w.since.Load(); s != 0 {
		waited := time.Since(w.base) - time.Duration(s-1)
		if waited >= w.idle {
			if w.fired.CompareAndSwap(false, true) {
				w.fire()
			}
			return
		}
		next = w.idle - waited
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.finished.Load() {
		w.t.Reset(next)
	}
}

// finish stops w for good: nothing it watches can stall any more.
func (w *watchdog) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished.Store(true)
	w.t.Stop()
}

func (w *watchdog) didFire() bool { return w.fired.Load() }

// pacedUpload runs its watchdog between reads: while the transport does not ask for the
// next piece of the body, the upstream is not taking it.
type pacedUpload struct {
	io.ReadCloser
	w *watchdog
}

func (b pacedUpload) Read(p []byte) (int, error) {
	b.w.stop()
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		b.w.run()
	}
	return n, err
}

func (b pacedUpload) Close() error {
	b.w.stop()
	return b.ReadCloser.Close()
}

// pacedResponse runs its watchdog during reads: a read that waits on the upstream for the
// timeout is ended.
type pacedResponse struct {
	io.ReadCloser
	w *watchdog
}

func (b pacedResponse) Read(p []byte) (int, error) {
	b.w.run()
	n, err := b.ReadCloser.Read(p)
	b.w.stop()
	if err != nil && b.w.didFire() {
		err = errUpstreamIdle
	}
	return n, err
}

func (b pacedResponse) Close() error {
	b.w.finish() // its timer would otherwise re-arm itself for ever
	return b.ReadCloser.Close()
}

// idleCancel returns a function that ends the upstream request of x for cause: the upload's
// connection reset first (so no lenient server stores what it got), then its context.
func idleCancel(x *exchange, cancel context.CancelCauseFunc) func() {
	return func() {
		if x.upload != nil {
			x.upload.abort()
		}
		cancel(errUpstreamIdle)
	}
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return err != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded))
}
