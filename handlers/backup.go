package handlers

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Backuper streams a consistent snapshot of the database to w and returns
// the number of bytes written. storage/bolt's DB is one. A Backup that
// fails may have written part of a snapshot.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

var errBackupUnavailable = &Problem{
	Type: problemBase + "backup-unavailable", Title: "Backup not available", Status: http.StatusNotFound,
	Detail: "This server's storage cannot stream a backup.",
}

// backupWriteStall bounds how long one write of a backup may wait for a
// slow client. It replaces the server's WriteTimeout, which counts from
// the start of the request and would cut a large backup short; a stalled
// client must not hold the snapshot's read transaction for long, since a
// write that grows the file waits for it.
const backupWriteStall = 30 * time.Second

// backup streams the database file: GET /api/v1/admin/backup, root only.
// An error before the first byte is a problem response; after it, the
// connection is cut so the client sees a truncated body, never a short
// file that looks complete.
func (s *Server) backup(c echo.Context) error {
	if s.backuper == nil {
		return errBackupUnavailable
	}
	// Detached from the request's deadline, which would cut a large
	// backup short: each write is bounded by backupWriteStall instead,
	// and a client that goes away fails the next write.
	ctx := context.WithoutCancel(c.Request().Context())
	name := "keymint-" + s.svc.Now().UTC().Format("20060102T150405Z") + ".db"
	bw := &backupWriter{c: c, rc: http.NewResponseController(c.Response()), name: name}
	n, err := s.backuper.Backup(ctx, bw)
	if err != nil {
		if !bw.started {
			return err
		}
		s.log.WarnContext(ctx, "backup failed after streaming began; connection cut", "err", err, "bytes", n)
		panic(http.ErrAbortHandler)
	}
	s.log.InfoContext(ctx, "backup streamed", "bytes", n, "file", name)
	return nil
}

// backupWriter sends the response headers with the first byte, and gives
// each write backupWriteStall to complete.
type backupWriter struct {
	c       echo.Context
	rc      *http.ResponseController
	name    string
	started bool
}

func (w *backupWriter) Write(p []byte) (int, error) {
	res := w.c.Response()
	if !w.started {
		w.started = true
		h := res.Header()
		h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+w.name+`"`)
		h.Set(echo.HeaderCacheControl, "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		res.WriteHeader(http.StatusOK)
	}
	// Not every ResponseWriter supports deadlines (httptest's does not).
	_ = w.rc.SetWriteDeadline(time.Now().Add(backupWriteStall))
	return res.Write(p)
}
