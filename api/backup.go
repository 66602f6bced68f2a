package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/chatctl/chatctl/store"
)

// backupStall is how long a backup stream may make no progress before the
// server gives up on the client: the copy's read transaction would
// otherwise hold up writers that need to grow the file.
const backupStall = 30 * time.Second

// handleBackup streams a consistent copy of the store (bbolt's Tx.WriteTo
// in one read transaction) with its length first, so the client can tell
// a copy that broke off. It is served on the admin socket only.
func handleBackup(db store.Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		started := time.Now()
		pw := &progressWriter{w: w, rc: rc}
		n, err := store.WriteBackup(db, pw, func(size int64) {
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", strconv.FormatInt(size, 10))
			h.Set("Content-Disposition", `attachment; filename="chatctl-backup.db"`)
			h.Set("Cache-Control", "no-store")
		})
		switch {
		case err != nil && !pw.wrote:
			writeError(w, r, log, err)
		case err != nil:
			// Too late for a status: the client sees a short copy.
			log.Warn("backup broke off", "bytes", n, "err", err)
		default:
			log.Info("backup sent", "bytes", n, "took", time.Since(started).Round(time.Millisecond))
		}
	})
}

// progressWriter moves the write deadline forward on every write, so a
// large copy to a slow but live client completes while a stalled client
// is cut off after backupStall.
type progressWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool // owned by the handler's goroutine
}

func (p *progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(backupStall))
	p.wrote = true
	return p.w.Write(b)
}
