package handlers

import (
	"time"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are keymint's Prometheus metrics, in a registry of their own.
// It implements issuer.Observer.
type Metrics struct {
	reg       *prometheus.Registry
	exchanges *prometheus.CounterVec
	signing   *prometheus.HistogramVec
	limited   prometheus.Counter
}

// NewMetrics registers keymint's metrics, the Go runtime's and, if
// dbStats is set, the database's (each value a gauge named
// keymint_bbolt_<name>).
func NewMetrics(dbStats func() map[string]float64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keymint", Name: "exchanges_total",
			Help: "Secret-for-token exchanges by outcome: ok, or the failure reason.",
		}, []string{"outcome"}),
		signing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keymint", Name: "token_signing_seconds",
			Help:    "Time to sign one token, by algorithm.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01},
		}, []string{"alg"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "keymint", Name: "exchange_rate_limited_total",
			Help: "Exchanges refused with 429 after repeated failures from one address.",
		}),
	}
	m.reg.MustRegister(m.exchanges, m.signing, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if dbStats != nil {
		m.reg.MustRegister(dbCollector(dbStats))
	}
	return m
}

// Exchange implements issuer.Observer.
func (m *Metrics) Exchange(outcome string) { m.exchanges.WithLabelValues(outcome).Inc() }

// Signed implements issuer.Observer.
func (m *Metrics) Signed(alg string, d time.Duration) {
	m.signing.WithLabelValues(alg).Observe(d.Seconds())
}

// middleware counts requests by route and status with latency
// histograms (echoprometheus: keymint_requests_total,
// keymint_request_duration_seconds, …).
func (m *Metrics) middleware() echo.MiddlewareFunc {
	return echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace: "keymint", Subsystem: "http", Registerer: m.reg,
		DoNotUseRequestPathFor404: true,
		Skipper:                   func(c echo.Context) bool { return c.Path() == "/metrics" },
	})
}

func (m *Metrics) handler() echo.HandlerFunc {
	return echoprometheus.NewHandlerWithConfig(echoprometheus.HandlerConfig{Gatherer: m.reg})
}

// dbCollector exports database statistics as gauges.
type dbCollector func() map[string]float64

func (f dbCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

func (f dbCollector) Collect(ch chan<- prometheus.Metric) {
	for name, v := range f() {
		desc := prometheus.NewDesc("keymint_bbolt_"+name, "bbolt statistic "+name+".", nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
}
