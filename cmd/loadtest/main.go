// Command loadtest drives a real keymint server, and a reference server,
// with the vegeta load generator over loopback, and reports throughput,
// latency, errors and the server's memory per scenario.
//
//	go run ./cmd/loadtest                     # full run, 10s a scenario, about 3 minutes
//	go run ./cmd/loadtest -quick              # 3s a scenario
//	go run ./cmd/loadtest -seed-keys 1000000 -run 'exchange ES256|mgmt'
//	go run ./cmd/loadtest -json out.json
//
// It builds bin/keymint and cmd/loadref into a temporary directory (or
// takes them from -keymint and -loadref), starts `keymint serve` on a free
// loopback port with a fresh data directory, bootstraps one org per
// signing algorithm over HTTP, optionally writes -seed-keys extra keys into
// the ES256 org's database file while the server is stopped, then runs
// each scenario at each -conns level with keep-alive connections and as
// many requests as the server answers (no rate limit). The reference
// server (cmd/loadref: echo, one ES256 signature a request) runs first and
// last; every scenario's throughput and p99 are given as a ratio to the
// mean of the two reference runs at the same connection count, so the
// figures mean something on a shared, noisy machine.
//
// Everything runs on this machine: the load generator competes with the
// server for the same cores. Compare ratios and runs on one machine, not
// absolute figures across machines.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

type config struct {
	duration   time.Duration
	conns      []int
	keymintBin string
	loadrefBin string
	seedKeys   int
	jsonOut    string
	only       *regexp.Regexp
	timeout    time.Duration
	keep       bool
	markdown   bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each scenario runs at each connection count")
	quick := fs.Bool("quick", false, "3s a scenario (unless -duration is given)")
	conns := fs.String("conns", "32,128", "comma-separated keep-alive connection counts")
	fs.StringVar(&c.keymintBin, "keymint", "", "keymint binary to test (default: build ./cmd/keymint)")
	fs.StringVar(&c.loadrefBin, "loadref", "", "reference server binary (default: build ./cmd/loadref)")
	fs.IntVar(&c.seedKeys, "seed-keys", 0, "write this many extra API keys into the ES256 org's database before the run")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	only := fs.String("run", "", "run only the scenarios whose name matches this regexp (the reference always runs)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.BoolVar(&c.markdown, "md", false, "print the table as Markdown (for docs/PERFORMANCE.md)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (binaries, data dir, server logs)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick && !set["duration"] {
		c.duration = 3 * time.Second
	}
	if c.duration <= 0 || c.duration > 10*time.Minute {
		return c, errors.New("-duration must be between 0 and 10m")
	}
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return c, fmt.Errorf("-conns: %q is not a count between 1 and 4096", s)
		}
		c.conns = append(c.conns, n)
	}
	if c.seedKeys < 0 {
		return c, errors.New("-seed-keys must not be negative")
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return c, fmt.Errorf("-run: %w", err)
		}
		c.only = re
	}
	return c, nil
}

// scenario is one kind of request, sent to one server.
type scenario struct {
	name   string
	server func() *proc // the process whose memory is reported
	target vegeta.Target
	// prepare, if set, runs before each attack and may refresh the target
	// (the management scenario takes a fresh JWT each time).
	prepare func(ctx context.Context, t *vegeta.Target) error
}

// row is one scenario at one connection count.
type row struct {
	Scenario     string         `json:"scenario"`
	Conns        int            `json:"conns"`
	Requests     uint64         `json:"requests"`
	ReqPerSec    float64        `json:"req_per_sec"` // successful responses a second
	P50Ms        float64        `json:"p50_ms"`
	P90Ms        float64        `json:"p90_ms"`
	P99Ms        float64        `json:"p99_ms"`
	MaxMs        float64        `json:"max_ms"`
	Errors       uint64         `json:"errors"` // transport errors and non-2xx/3xx
	ErrorPct     float64        `json:"error_pct"`
	Ratio        float64        `json:"ratio"`     // req/s over the reference mean at this conns
	P99Ratio     float64        `json:"p99_ratio"` // p99 over the reference mean p99 at this conns
	Process      string         `json:"process"`
	Memory       memory         `json:"memory"`
	StatusCodes  map[string]int `json:"status_codes"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
}

type report struct {
	Machine          machine  `json:"machine"`
	StartedAt        string   `json:"started_at"`
	DurationPer      string   `json:"duration_per_scenario"`
	SeedKeys         int      `json:"seed_keys"`
	LoadavgStart     string   `json:"loadavg_start"`
	LoadavgEnd       string   `json:"loadavg_end"`
	KeymintSource    string   `json:"keymint_source"`
	KeymintIdle      memory   `json:"keymint_memory_before_load"`
	KeymintReadyMs   float64  `json:"keymint_ready_ms"` // start (or restart after seeding) to /readyz
	Results          []row    `json:"results"`
	ReferenceDrift   []string `json:"reference_drift"`
	LoadGeneratorLib string   `json:"load_generator"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", a...) }

	tmp, err := os.MkdirTemp("", "keymint-loadtest-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.keep {
			logf("kept %s", tmp)
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()

	source := "binary " + cfg.keymintBin
	if cfg.keymintBin == "" || cfg.loadrefBin == "" {
		if cfg.keymintBin == "" {
			source = sourceVersion(ctx)
		}
		logf("building keymint and loadref (keymint at %s)", source)
		km, lr, err := build(ctx, filepath.Join(tmp, "bin"))
		if err != nil {
			return err
		}
		if cfg.keymintBin == "" {
			cfg.keymintBin = km
		}
		if cfg.loadrefBin == "" {
			cfg.loadrefBin = lr
		}
	}

	setup := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer setup.CloseIdleConnections()

	// keymint: start, bootstrap, optionally seed (stopped), restart.
	dataDir := filepath.Join(tmp, "data")
	kmAddr, err := freeAddr()
	if err != nil {
		return err
	}
	base := "http://" + kmAddr
	var km *proc
	var kmReadyIn time.Duration
	startKeymint := func() error {
		began := time.Now()
		p, err := startProc("keymint", filepath.Join(tmp, "keymint.log"), cfg.keymintBin,
			"serve", "--addr", kmAddr, "--data-dir", dataDir)
		if err != nil {
			return err
		}
		km = p
		if err := p.waitReady(ctx, 2*time.Minute, httpOK(setup, http.MethodGet, base+"/readyz")); err != nil {
			return err
		}
		kmReadyIn = time.Since(began)
		return nil
	}
	defer func() {
		if km != nil {
			if serr := km.stop(25 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	if err := startKeymint(); err != nil {
		return err
	}
	rootRaw, err := os.ReadFile(filepath.Join(dataDir, "root.key"))
	if err != nil {
		return err
	}
	root := strings.TrimSpace(string(rootRaw))
	orgs := map[string]org{}
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		o, err := bootstrap(ctx, setup, base, root, "lt-"+strings.ToLower(alg), alg)
		if err != nil {
			return err
		}
		orgs[alg] = o
	}
	logf("keymint on %s (pid %d, ready in %v): orgs %s, %s, %s bootstrapped", kmAddr, km.pid(),
		kmReadyIn.Round(time.Millisecond), orgs["ES256"].ID, orgs["EdDSA"].ID, orgs["RS256"].ID)
	if cfg.seedKeys > 0 {
		if err := km.stop(25 * time.Second); err != nil {
			return err
		}
		km = nil
		setup.CloseIdleConnections()
		began := time.Now()
		step := max(cfg.seedKeys/10, 10000)
		err := seedKeys(ctx, filepath.Join(dataDir, "keymint.db"), orgs["ES256"].ID, cfg.seedKeys, func(done int) {
			if done%step == 0 || done == cfg.seedKeys {
				logf("seeded %d/%d keys into %s", done, cfg.seedKeys, orgs["ES256"].ID)
			}
		})
		if err != nil {
			return fmt.Errorf("seed keys: %w", err)
		}
		if fi, err := os.Stat(filepath.Join(dataDir, "keymint.db")); err == nil {
			logf("seeding took %v; keymint.db is %.1f MiB", time.Since(began).Round(time.Millisecond), float64(fi.Size())/(1<<20))
		}
		if err := startKeymint(); err != nil {
			return err
		}
		logf("keymint restarted (pid %d), ready in %v", km.pid(), kmReadyIn.Round(time.Millisecond))
	}

	// The reference server.
	refAddr, err := freeAddr()
	if err != nil {
		return err
	}
	ref, err := startProc("loadref", filepath.Join(tmp, "loadref.log"), cfg.loadrefBin, "--addr", refAddr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := ref.stop(15 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	if err := ref.waitReady(ctx, 30*time.Second, httpOK(setup, http.MethodPost, "http://"+refAddr+"/token")); err != nil {
		return err
	}

	es := orgs["ES256"]
	exchange := func(o org) vegeta.Target {
		return vegeta.Target{Method: http.MethodPost, URL: base + "/api/v1/apikeys/" + o.KeyID + "/token",
			Header: http.Header{"X-Api-Key": {o.Secret}}}
	}
	reference := scenario{name: "reference", server: func() *proc { return ref },
		target: vegeta.Target{Method: http.MethodPost, URL: "http://" + refAddr + "/token"}}
	onKeymint := func() *proc { return km }
	scenarios := []scenario{
		{name: "exchange ES256", server: onKeymint, target: exchange(orgs["ES256"])},
		{name: "exchange EdDSA", server: onKeymint, target: exchange(orgs["EdDSA"])},
		{name: "exchange RS256", server: onKeymint, target: exchange(orgs["RS256"])},
		{name: "oauth2 ES256", server: onKeymint, target: vegeta.Target{
			Method: http.MethodPost, URL: base + "/oauth2/token",
			Body: []byte(url.Values{"grant_type": {"client_credentials"}}.Encode()),
			Header: http.Header{
				"Content-Type":  {"application/x-www-form-urlencoded"},
				"Authorization": {"Basic " + basicAuth(es.KeyID, es.Secret)},
			}}},
		{name: "jwks ES256", server: onKeymint, target: vegeta.Target{
			Method: http.MethodGet, URL: base + "/orgs/" + es.ID + "/.well-known/jwks.json"}},
		{name: "mgmt GET (JWT)", server: onKeymint,
			target: vegeta.Target{Method: http.MethodGet, URL: base + "/api/v1/apikeys/" + es.KeyID},
			prepare: func(ctx context.Context, t *vegeta.Target) error {
				jwt, err := exchangeOnce(ctx, setup, base, es)
				if err != nil {
					return err
				}
				t.Header = http.Header{"Authorization": {"Bearer " + jwt}}
				return nil
			}},
	}
	if cfg.only != nil {
		var keep []scenario
		for _, s := range scenarios {
			if cfg.only.MatchString(s.name) {
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			return fmt.Errorf("-run %q matches no scenario", cfg.only)
		}
		scenarios = keep
	}

	rep := report{
		Machine:          machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		StartedAt:        time.Now().UTC().Format(time.RFC3339),
		DurationPer:      cfg.duration.String(),
		SeedKeys:         cfg.seedKeys,
		LoadavgStart:     loadavg(),
		KeymintSource:    source,
		KeymintIdle:      km.memory(),
		KeymintReadyMs:   float64(kmReadyIn) / float64(time.Millisecond),
		LoadGeneratorLib: "github.com/tsenart/vegeta/v12/lib",
	}
	runs := len(cfg.conns) * (len(scenarios) + 2)
	logf("%d runs of %v each (about %v); %d CPUs, load average %s",
		runs, cfg.duration, time.Duration(runs)*cfg.duration, rep.Machine.CPUs, rep.LoadavgStart)

	do := func(s scenario, label string, conns int) error {
		if s.prepare != nil {
			if err := s.prepare(ctx, &s.target); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		if err := probe(ctx, setup, s.target); err != nil {
			return fmt.Errorf("%s: a single request fails, not starting the load: %w", s.name, err)
		}
		r, err := attack(ctx, label, s.target, conns, cfg.duration, cfg.timeout)
		if err != nil {
			return err
		}
		p := s.server()
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during %s (%v):\n%s", p.name, label, p.err, tail(p.log, 20))
		default:
		}
		r.Process, r.Memory = p.name, p.memory()
		logf("%-20s conns %4d  %9.0f req/s  p99 %7.2fms  errors %d  %s RSS %.1f MiB (anon %.1f MiB)",
			label, conns, r.ReqPerSec, r.P99Ms, r.Errors, p.name, float64(r.Memory.RSSKiB)/1024, float64(r.Memory.AnonKiB)/1024)
		rep.Results = append(rep.Results, r)
		return nil
	}
	for _, n := range cfg.conns {
		if err := do(reference, "reference (first)", n); err != nil {
			return err
		}
	}
	for _, s := range scenarios {
		for _, n := range cfg.conns {
			if err := do(s, s.name, n); err != nil {
				return err
			}
		}
	}
	for _, n := range cfg.conns {
		if err := do(reference, "reference (last)", n); err != nil {
			return err
		}
	}
	rep.LoadavgEnd = loadavg()
	rep.ReferenceDrift = ratios(rep.Results)

	printTable(stdout, rep, cfg.markdown)
	if cfg.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		logf("wrote %s", cfg.jsonOut)
	}
	return nil
}

// attack runs one vegeta attack: conns workers over at most conns
// keep-alive connections, no rate limit, for d.
func attack(ctx context.Context, name string, tgt vegeta.Target, conns int, d, timeout time.Duration) (row, error) {
	tr := &http.Transport{Proxy: nil} // loopback only; never a proxy from the environment
	a := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}), // first: the options below configure tr
		vegeta.Workers(uint64(conns)),
		vegeta.MaxWorkers(uint64(conns)),
		vegeta.Connections(conns),
		vegeta.MaxConnections(conns),
		vegeta.KeepAlive(true),
		vegeta.Timeout(timeout),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.MaxBody(0), // read and discard bodies without keeping them
	)
	defer tr.CloseIdleConnections() // leave no idle connections on the server for the next scenario
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()

	var m vegeta.Metrics
	rate := vegeta.Rate{Freq: 0} // 0: as fast as the workers go
	for res := range a.Attack(vegeta.NewStaticTargeter(tgt), rate, d, name) {
		m.Add(res)
	}
	m.Close()
	if err := ctx.Err(); err != nil {
		return row{}, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	errs := m.Requests - uint64(m.Success*float64(m.Requests)+0.5)
	r := row{
		Scenario: name, Conns: conns, Requests: m.Requests, ReqPerSec: m.Throughput,
		P50Ms: ms(m.Latencies.P50), P90Ms: ms(m.Latencies.P90), P99Ms: ms(m.Latencies.P99), MaxMs: ms(m.Latencies.Max),
		Errors: errs, StatusCodes: m.StatusCodes,
	}
	if m.Requests > 0 {
		r.ErrorPct = 100 * float64(errs) / float64(m.Requests)
	}
	if len(m.Errors) > 10 {
		m.Errors = m.Errors[:10]
	}
	r.ErrorSamples = m.Errors
	return r, nil
}

// probe sends the target once and requires a 2xx answer.
func probe(ctx context.Context, c *http.Client, t vegeta.Target) error {
	req, err := t.Request()
	if err != nil {
		return err
	}
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s: %s: %s", t.Method, t.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// ratios fills Ratio and P99Ratio of every row against the mean of the
// reference rows at the same connection count, and returns a line per
// connection count on how far the reference moved between first and last.
func ratios(rows []row) []string {
	type ref struct {
		rps, p99 []float64
	}
	refs := map[int]*ref{}
	for _, r := range rows {
		if strings.HasPrefix(r.Scenario, "reference") {
			if refs[r.Conns] == nil {
				refs[r.Conns] = &ref{}
			}
			refs[r.Conns].rps = append(refs[r.Conns].rps, r.ReqPerSec)
			refs[r.Conns].p99 = append(refs[r.Conns].p99, r.P99Ms)
		}
	}
	for i := range rows {
		f := refs[rows[i].Conns]
		if f == nil {
			continue
		}
		if m := mean(f.rps); m > 0 {
			rows[i].Ratio = rows[i].ReqPerSec / m
		}
		if m := mean(f.p99); m > 0 {
			rows[i].P99Ratio = rows[i].P99Ms / m
		}
	}
	var drift []string
	for _, r := range rows {
		f := refs[r.Conns]
		if !strings.HasPrefix(r.Scenario, "reference (first)") || f == nil || len(f.rps) != 2 || f.rps[0] == 0 {
			continue
		}
		change := 100 * (f.rps[1] - f.rps[0]) / f.rps[0]
		line := fmt.Sprintf("reference at %d conns: %.0f req/s first, %.0f last (%+.1f%%)", r.Conns, f.rps[0], f.rps[1], change)
		if change > 15 || change < -15 {
			line += " — the machine's load changed during the run; treat ratios with care"
		}
		drift = append(drift, line)
	}
	return drift
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func printTable(w io.Writer, rep report, markdown bool) {
	fmt.Fprintf(w, "\nkeymint load test: %d CPUs (%s), %s, %s a run, %d seeded keys; load average %s before, %s after\n",
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.DurationPer, rep.SeedKeys, rep.LoadavgStart, rep.LoadavgEnd)
	fmt.Fprintf(w, "keymint %s; RSS before load: %.1f MiB\n\n", rep.KeymintSource, float64(rep.KeymintIdle.RSSKiB)/1024)
	header := []string{"scenario", "conns", "req/s", "p50", "p99", "errors", "ratio", "p99 ratio", "RSS", "peak RSS"}
	cells := func(r row) []string {
		return []string{r.Scenario, strconv.Itoa(r.Conns), fmt.Sprintf("%.0f", r.ReqPerSec),
			fmt.Sprintf("%.2fms", r.P50Ms), fmt.Sprintf("%.2fms", r.P99Ms),
			fmt.Sprintf("%d (%.2f%%)", r.Errors, r.ErrorPct), fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf("%.2f", r.P99Ratio),
			fmt.Sprintf("%.1f MiB", float64(r.Memory.RSSKiB)/1024), fmt.Sprintf("%.1f MiB", float64(r.Memory.PeakKiB)/1024)}
	}
	if markdown {
		fmt.Fprintf(w, "| %s |\n|:---|%s\n", strings.Join(header, " | "), strings.Repeat("---:|", len(header)-1))
		for _, r := range rep.Results {
			fmt.Fprintf(w, "| %s |\n", strings.Join(cells(r), " | "))
		}
	} else {
		width := len(header[0])
		for _, r := range rep.Results {
			width = max(width, len(r.Scenario))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, c := range append([][]string{header}, rowsCells(rep.Results, cells)...) {
			c[0] = fmt.Sprintf("%-*s", width, c[0]) // the name left-aligned, figures right-aligned
			fmt.Fprintln(tw, strings.Join(c, "\t")+"\t")
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nreq/s counts 2xx/3xx responses; errors are transport errors and other statuses.")
	fmt.Fprintln(w, "ratio = req/s / mean reference req/s at the same conns; p99 ratio = p99 / mean reference p99.")
	fmt.Fprintln(w, "RSS (VmRSS, VmHWM) is the process under test (keymint, or loadref for the reference rows) after the run;")
	fmt.Fprintln(w, "it includes bbolt's memory-mapped file pages (see rss_anon_kib in -json for heap and stacks alone).")
	for _, d := range rep.ReferenceDrift {
		fmt.Fprintln(w, d)
	}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			fmt.Fprintf(w, "%s at %d conns: status codes %v; %s\n", r.Scenario, r.Conns, r.StatusCodes, strings.Join(r.ErrorSamples, "; "))
		}
	}
}

func rowsCells(rows []row, cells func(row) []string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = cells(r)
	}
	return out
}

func basicAuth(user, pass string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
