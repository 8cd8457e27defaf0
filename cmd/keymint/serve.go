package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/keymint/handlers"
	"github.com/keymint/keymint/issuer"
	"github.com/keymint/keymint/keys"
	"github.com/keymint/keymint/storage/bolt"
)

// Config is the server's configuration; see ParseFlags for its sources.
type Config struct {
	Addr           string
	DataDir        string
	PublicURL      string
	TrustedProxies []netip.Prefix
	LogFormat      string
	LogLevel       slog.Level
	MasterKey      string // base64; "" means the data directory's master.key
	RootKey        string // "" means the data directory's root.key
	// UsageFlush is how often usage counts are written to the database.
	UsageFlush time.Duration
	// Retention is how long audit events and usage days are kept.
	Retention time.Duration
	// FailureLimit failed exchanges per FailureWindow from one address
	// get it 429s.
	FailureLimit  int
	FailureWindow time.Duration
}

// Main is a running keymint server. main only hands off to it, so tests
// can run the whole service in-process on ":0".
type Main struct {
	Config Config
	Stderr io.Writer
	// Now overrides the clock (tests); nil means time.Now.
	Now func() time.Time

	log      *slog.Logger
	db       *bolt.DB
	svc      *issuer.Service
	listener net.Listener
	server   *http.Server
	rootKey  string
}

// NewMain returns a Main with the defaults of PRODUCT.md §5.
func NewMain() *Main {
	return &Main{
		Config: Config{
			Addr: "127.0.0.1:8080", DataDir: "./keymint-data", LogFormat: "text",
			UsageFlush: issuer.DefaultUsageFlushInterval, Retention: issuer.DefaultRetention,
			FailureLimit: handlers.DefaultFailureLimit, FailureWindow: handlers.DefaultFailureWindow,
		},
		Stderr: os.Stderr,
	}
}

// ParseFlags reads flags over environment over defaults.
func (m *Main) ParseFlags(args []string) error {
	c := &m.Config
	fs := flag.NewFlagSet("keymint serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&c.Addr, "addr", envOr("KEYMINT_ADDR", c.Addr), "listen address (KEYMINT_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", envOr("KEYMINT_DATA_DIR", c.DataDir), "state directory: keymint.db, master.key, root.key (KEYMINT_DATA_DIR)")
	fs.StringVar(&c.PublicURL, "public-url", os.Getenv("KEYMINT_PUBLIC_URL"), "base URL clients reach keymint at; default http://<addr> (KEYMINT_PUBLIC_URL)")
	proxies := fs.String("trusted-proxies", os.Getenv("KEYMINT_TRUSTED_PROXIES"), "comma-separated CIDRs whose X-Forwarded-For is believed (KEYMINT_TRUSTED_PROXIES)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("KEYMINT_LOG_FORMAT", c.LogFormat), "text or json (KEYMINT_LOG_FORMAT)")
	logLevel := fs.String("log-level", envOr("KEYMINT_LOG_LEVEL", "info"), "debug (every request), info (failed requests), warn or error (KEYMINT_LOG_LEVEL)")
	usageFlush := fs.String("usage-flush-interval", envOr("KEYMINT_USAGE_FLUSH_INTERVAL", c.UsageFlush.String()), "how often usage counts are written; a crash loses at most this much (KEYMINT_USAGE_FLUSH_INTERVAL)")
	retention := fs.String("retention", envOr("KEYMINT_RETENTION", "400d"), "how long audit events and usage days are kept, e.g. 400d (KEYMINT_RETENTION)")
	failLimit := fs.String("failure-limit", envOr("KEYMINT_FAILURE_LIMIT", strconv.Itoa(c.FailureLimit)), "failed exchanges per --failure-window from one address before 429 (KEYMINT_FAILURE_LIMIT)")
	failWindow := fs.String("failure-window", envOr("KEYMINT_FAILURE_WINDOW", c.FailureWindow.String()), "window of --failure-limit (KEYMINT_FAILURE_WINDOW)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if c.UsageFlush, err = time.ParseDuration(*usageFlush); err != nil || c.UsageFlush <= 0 {
		return fmt.Errorf("serve: --usage-flush-interval: want a positive duration like 10s")
	}
	if c.Retention, err = keys.ParseDuration(*retention); err != nil || c.Retention < 24*time.Hour {
		return fmt.Errorf("serve: --retention: want a duration of at least 1d, like 400d")
	}
	if c.FailureLimit, err = strconv.Atoi(*failLimit); err != nil || c.FailureLimit < 1 {
		return fmt.Errorf("serve: --failure-limit: want a positive whole number")
	}
	if c.FailureWindow, err = time.ParseDuration(*failWindow); err != nil || c.FailureWindow <= 0 {
		return fmt.Errorf("serve: --failure-window: want a positive duration like 1m")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	c.MasterKey = os.Getenv("KEYMINT_MASTER_KEY")
	c.RootKey = os.Getenv("KEYMINT_ROOT_KEY")
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("serve: --log-format must be text or json")
	}
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("serve: --log-level must be debug, info, warn or error")
	}
	c.TrustedProxies = nil
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("serve: --trusted-proxies: %q is not a CIDR", p)
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Run opens the data directory and starts serving; it returns once the
// listener is up. Close stops it.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		m.log = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	} else {
		m.log = slog.New(slog.NewTextHandler(m.Stderr, opts))
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	masterRaw, err := m.masterKey()
	if err != nil {
		return err
	}
	master, err := issuer.NewMasterKey(masterRaw)
	if err != nil {
		return err
	}
	if m.rootKey, err = m.loadRootKey(); err != nil {
		return err
	}
	dbPath := filepath.Join(c.DataDir, "keymint.db")
	if m.db, err = bolt.Open(dbPath, nil); err != nil {
		return fmt.Errorf("open %s: %w", dbPath, err)
	}
	if err := issuer.CheckMasterKey(ctx, m.db, master); err != nil {
		m.db.Close()
		return fmt.Errorf("%w (KEYMINT_MASTER_KEY or %s is not the key %s was created with)", err, filepath.Join(c.DataDir, "master.key"), dbPath)
	}

	if m.listener, err = net.Listen("tcp", c.Addr); err != nil {
		m.db.Close()
		return err
	}
	publicURL := c.PublicURL
	if publicURL == "" {
		publicURL = "http://" + m.listener.Addr().String()
	}
	metrics := handlers.NewMetrics(m.db.Stats)
	m.svc, err = issuer.New(issuer.Config{
		Store: m.db, Master: master, PublicURL: publicURL, Now: m.Now, Logger: m.log,
		Observer: metrics, UsageFlushInterval: c.UsageFlush, Retention: c.Retention,
	})
	if err != nil {
		return err
	}
	svc := m.svc
	if err := svc.LoadRevocations(ctx); err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	api, err := handlers.New(handlers.Config{
		Service: svc, RootKey: m.rootKey, TrustedProxies: c.TrustedProxies, Logger: m.log, Metrics: metrics,
		FailureLimit: c.FailureLimit, FailureWindow: c.FailureWindow, Backup: m.db,
		Ready: func(ctx context.Context) error { _, err := m.db.GetSetting(ctx, "master_key_check"); return err },
	})
	if err != nil {
		return err
	}
	m.server = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.server.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("serve", "err", err)
		}
	}()
	m.log.Info("keymint serving", "addr", m.listener.Addr().String(), "public_url", publicURL, "data_dir", c.DataDir)
	return nil
}

// URL is the base URL the server listens on.
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// RootKey is the operator's root key in use.
func (m *Main) RootKey() string { return m.rootKey }

// Close drains in-flight requests, then closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		errs = append(errs, m.server.Shutdown(ctx))
	}
	if m.svc != nil {
		errs = append(errs, m.svc.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}

// masterKey returns the 32-byte master key from KEYMINT_MASTER_KEY, or
// from master.key in the data directory, creating it (0600) at first start.
func (m *Main) masterKey() ([]byte, error) {
	if v := m.Config.MasterKey; v != "" {
		raw, err := decodeBase64(v)
		if err != nil || len(raw) != issuer.MasterKeySize {
			return nil, fmt.Errorf("KEYMINT_MASTER_KEY must be %d bytes, base64-encoded", issuer.MasterKeySize)
		}
		return raw, nil
	}
	path := filepath.Join(m.Config.DataDir, "master.key")
	text, created, err := readOrCreate(path, func() (string, error) {
		b := make([]byte, issuer.MasterKeySize)
		_, err := rand.Read(b)
		return base64.StdEncoding.EncodeToString(b), err
	})
	if err != nil {
		return nil, err
	}
	if created {
		m.log.Warn("created a new master key; back it up with the database, which is useless without it", "path", path)
	}
	raw, err := decodeBase64(text)
	if err != nil || len(raw) != issuer.MasterKeySize {
		return nil, fmt.Errorf("%s must hold %d bytes, base64-encoded", path, issuer.MasterKeySize)
	}
	return raw, nil
}

// loadRootKey returns KEYMINT_ROOT_KEY or the data directory's root.key,
// created (0600) at first start. Its value is never logged.
func (m *Main) loadRootKey() (string, error) {
	if v := m.Config.RootKey; v != "" {
		if len(v) < 32 {
			return "", errors.New("KEYMINT_ROOT_KEY must be at least 32 characters")
		}
		return v, nil
	}
	path := filepath.Join(m.Config.DataDir, "root.key")
	v, created, err := readOrCreate(path, newRootKey)
	if err != nil {
		return "", err
	}
	if created {
		m.log.Info("created the root key (the operator's credential for creating orgs)", "path", path)
	} else {
		m.log.Info("using the root key", "path", path)
	}
	if len(v) < 32 {
		return "", fmt.Errorf("%s must hold at least 32 characters", path)
	}
	return v, nil
}

func newRootKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "km_root_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// readOrCreate reads a one-line secret file, or creates it with mode 0600
// from gen if it does not exist. Creation is exclusive, so two processes
// starting at once agree on one value.
func readOrCreate(path string, gen func() (string, error)) (value string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	v, err := gen()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readOrCreate(path, gen)
	}
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return v, true, f.Close()
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}
