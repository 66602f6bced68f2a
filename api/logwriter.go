package api

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// LogWriter buffers log output and writes it every flushEvery, so an
// access-log line costs a memory copy instead of a write syscall per
// request. Lines are whole: each Write is one slog record.
type LogWriter struct {
	mu   sync.Mutex // guards buf
	buf  *bufio.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

// flushEvery bounds how long a log line waits in memory.
const flushEvery = 100 * time.Millisecond

// NewLogWriter returns a LogWriter over w. Close it to write the rest.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{buf: bufio.NewWriterSize(w, 64<<10), done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.Flush()
			case <-l.done:
				return
			}
		}
	}()
	return l
}

// Write implements io.Writer.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Flush writes what is buffered.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Flush()
}

// Close stops the flusher and writes what is buffered.
func (l *LogWriter) Close() error {
	close(l.done)
	l.wg.Wait()
	return l.Flush()
}
