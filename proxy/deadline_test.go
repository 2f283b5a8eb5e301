package proxy

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadlinePush: the idle deadline moves only once less than 15/16 of the timeout is
// left, and then to a full timeout from now; it is never later than a timeout after the
// last push.
func TestDeadlinePush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := deadline{idle: 16 * time.Second}
		steps := []struct {
			after time.Duration // since the previous step
			moved bool
		}{
			{0, true},                       // the first push always sets it
			{500 * time.Millisecond, false}, // 15.5 s left
			{499 * time.Millisecond, false}, // 15.001 s left
			{2 * time.Millisecond, true},    // 14.999 s left: moved
			{0, false},
			{20 * time.Second, true}, // long past: moved
		}
		for i, s := range steps {
			time.Sleep(s.after) // the bubble's clock
			at, moved := d.push()
			if moved != s.moved {
				t.Fatalf("step %d: moved %v, want %v", i, moved, s.moved)
			}
			if moved && !at.Equal(time.Now().Add(d.idle)) {
				t.Fatalf("step %d: deadline %v, want a timeout from now", i, at)
			}
			if left := d.at.Sub(time.Now()); left > d.idle || left <= 0 {
				t.Fatalf("step %d: %v left of the deadline", i, left)
			}
		}
	})
}

// TestWatchdog: it fires when one watched wait lasts the timeout, never for waits that end
// sooner however many there are, nor between waits, nor after finish.
func TestWatchdog(t *testing.T) {
	const idle = 10 * time.Second
	tests := []struct {
		name  string
		steps func(w *watchdog)
		fired bool
	}{
		{name: "one wait as long as the timeout", fired: true, steps: func(w *watchdog) {
			w.run()
			time.Sleep(idle + time.Millisecond)
		}},
		{name: "many short waits", steps: func(w *watchdog) {
			for range 50 {
				w.run()
				time.Sleep(idle / 2)
				w.stop()
				time.Sleep(time.Second)
			}
		}},
		{name: "long pause between waits", steps: func(w *watchdog) {
			w.run()
			time.Sleep(idle / 2)
			w.stop()
			time.Sleep(3 * idle)
		}},
		{name: "a wait starting late in the timer's period", fired: true, steps: func(w *watchdog) {
			time.Sleep(idle - time.Second)
			w.run()
			time.Sleep(idle + time.Millisecond)
		}},
		{name: "finished", steps: func(w *watchdog) {
			w.run()
			w.finish()
			time.Sleep(3 * idle)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fired := make(chan time.Time, 1)
				w := newWatchdog(idle, func() { fired <- time.Now() })
				start := time.Now()
				tt.steps(w)
				synctest.Wait()
				select {
				case at := <-fired:
					if !tt.fired {
						t.Fatalf("fired after %v", at.Sub(start))
					}
				default:
					if tt.fired {
						t.Fatal("did not fire")
					}
				}
				w.finish()
			})
		})
	}
}
