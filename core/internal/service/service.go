// Package service is the one way Whisperer's long-running parts start and
// stop (modelled on riverqueue/river's startstop). Start(ctx) starts the
// service's goroutines and returns; a second Start is an error. Stop(ctx)
// stops it and waits for its goroutines, or for ctx: then it returns ctx's
// error. Stop before Start, and Stop twice, are fine. A stopped service
// does not start again.
//
// It is a package of its own, importing only the standard library, so
// that every service and core/app can share it without importing each
// other.
package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Service is a part that runs in the background between Start and Stop.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// ErrStarted is Start's error when the service was started or stopped
// before.
var ErrStarted = errors.New("already started or stopped")

// Lifecycle is the bookkeeping a service embeds to keep the rules above.
// Its zero value is ready.
type Lifecycle struct {
	mu     sync.Mutex
	used   bool // Begin or End ran
	cancel context.CancelFunc
	done   chan struct{}
}

// Begin claims the service's one start. It returns a child of ctx that End
// cancels, and done, which the service calls once its last goroutine has
// returned (or at once, if it fails to start after Begin).
func (l *Lifecycle) Begin(ctx context.Context) (context.Context, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used {
		return nil, nil, ErrStarted
	}
	l.used = true
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	return ctx, sync.OnceFunc(func() { close(l.done) }), nil
}

// End cancels Begin's context and waits for done, or for ctx. Without a
// Begin it returns nil at once, and no Begin may follow.
func (l *Lifecycle) End(ctx context.Context) error {
	l.mu.Lock()
	l.used = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	return Wait(ctx, done)
}

// Wait waits for done, or for ctx: then it returns ctx's error. A done
// already closed wins over an ended ctx.
func Wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Func is a Service that runs one blocking function until Stop cancels its
// context; Stop returns the function's error.
type Func struct {
	run func(ctx context.Context) error
	l   Lifecycle
	err error // run's, written before done
}

// NewFunc returns a Func that runs run.
func NewFunc(run func(ctx context.Context) error) *Func { return &Func{run: run} }

// Start runs the function in a goroutine.
func (f *Func) Start(ctx context.Context) error {
	ctx, done, err := f.l.Begin(ctx)
	if err != nil {
		return err
	}
	go func() {
		defer done()
		f.err = f.run(ctx)
	}()
	return nil
}

// Stop cancels the function's context and waits for it to return.
func (f *Func) Stop(ctx context.Context) error {
	if err := f.l.End(ctx); err != nil {
		return err
	}
	return f.err
}

// Named gives a service's errors its name.
type Named struct {
	Name string
	Service
}

// Start starts the service; an error names it.
func (n Named) Start(ctx context.Context) error { return n.wrap(n.Service.Start(ctx)) }

// Stop stops the service; an error names it.
func (n Named) Stop(ctx context.Context) error { return n.wrap(n.Service.Stop(ctx)) }

func (n Named) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", n.Name, err)
}

// StartAll starts ss in order. If one fails, those started are stopped in
// reverse order (each given ctx's lifetime) and the start error returned,
// joined with any stop error.
func StartAll(ctx context.Context, ss ...Service) error {
	for i, s := range ss {
		if err := s.Start(ctx); err != nil {
			return errors.Join(err, StopAll(context.WithoutCancel(ctx), ss[:i]...))
		}
	}
	return nil
}

// StopAll stops ss in reverse order, every one of them whatever the others
// answer, and joins their errors.
func StopAll(ctx context.Context, ss ...Service) error {
	var errs []error
	for _, s := range slices.Backward(ss) {
		errs = append(errs, s.Stop(ctx))
	}
	return errors.Join(errs...)
}
