package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// cmdBackup is "keymint backup --out FILE": it downloads a consistent
// snapshot of the server's database with the root key.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keymint backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, asJSON := clientFlags(fs)
	out := fs.String("out", "", "file to write the backup to (required)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	dataDir := dataDirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	if !*force {
		if err := refuseExisting(*out); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	root, err := rootCredential(*dataDir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	n, err := newClient(*server, root).backup(ctx, *out, *force)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if *asJSON {
		return printJSON(stdout, map[string]any{"file": *out, "bytes": n})
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s\n", n, *out)
	fmt.Fprintln(stdout, "To restore: copy it as keymint.db into a new data directory and start keymint there with the same master key (KEYMINT_MASTER_KEY or master.key).")
	return nil
}

// refuseExisting fails if path exists.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	if err == nil {
		return fmt.Errorf("%s exists; pass --force to overwrite it", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// backup streams GET /api/v1/admin/backup into path.tmp (mode 0600),
// syncs it and renames it to path, so path is either absent, the old file,
// or a complete backup. It returns the bytes written.
func (c *client) backup(ctx context.Context, path string, force bool) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/api/v1/admin/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cred)
	// No overall timeout, unlike the other commands: a large database
	// takes as long as it takes. ctx (Ctrl-C) stops it, and the server
	// cuts a stream that stalls.
	hc := &http.Client{Transport: c.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, problemError(resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") {
		return 0, fmt.Errorf("server answered %q, not a database file", ct)
	}

	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := copyToFile(f, resp.Body)
	if err == nil && n == 0 {
		err = errors.New("server sent an empty backup")
	}
	if err == nil && !force {
		err = refuseExisting(path) // created while we downloaded
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	// Make the rename durable; not every system can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// copyToFile copies r into f, which it makes 0600 (a stale file it
// truncated may have had another mode), syncs and closes.
func copyToFile(f *os.File, r io.Reader) (int64, error) {
	err := f.Chmod(0o600)
	var n int64
	if err == nil {
		n, err = io.Copy(f, r)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
