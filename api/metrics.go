package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatctl/chatctl/api/chat"
	"github.com/chatctl/chatctl/buildinfo"
	"github.com/chatctl/chatctl/store"
)

// metrics are the server's Prometheus series. Each server has its own
// registry so tests can run several servers in one process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	wsConns  prometheus.Gauge
	messages prometheus.Counter

	// series caches the request counter and latency observer of each
	// route and status: looking them up by labels hashes the labels on
	// every request.
	series sync.Map // seriesKey -> requestSeries
}

type seriesKey struct {
	route string
	code  int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func newMetrics(db store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatctl_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chatctl_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatctl_logins_total",
			Help: "Password logins by result: ok, failed or limited.",
		}, []string{"result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatctl_tokens_total",
			Help: "Tokens by event (issued, refreshed, rejected) and, for rejections, the reason.",
		}, []string{"event", "reason"}),
		wsConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatctl_ws_connections",
			Help: "Open WebSocket connections.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatctl_messages_total",
			Help: "Chat messages committed.",
		}),
	}
	commits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chatctl_message_commits_total",
		Help: "Store transactions that committed chat messages (group commits; see chatctl_messages_total).",
	}, func() float64 { return float64(db.MessageCommits()) })
	auditDropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chatctl_audit_dropped_total",
		Help: "Audit-log entries not recorded: the queue was full (a login flood) or the store write failed.",
	}, func() float64 { return float64(db.AuditDropped()) })
	m.reg.MustRegister(auditDropped)
	m.reg.MustRegister(m.requests, m.latency, m.logins, m.tokens, m.wsConns, m.messages, commits,
		buildInfoGauge(buildinfo.Get()),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Pre-create the series dashboards expect, so they read 0, not absent.
	for _, r := range []string{"ok", "failed", "limited"} {
		m.logins.WithLabelValues(r)
	}
	m.tokens.WithLabelValues("issued", "")
	m.tokens.WithLabelValues("refreshed", "")
	return m
}

// registerCluster adds the series of the node's broker and of cross-node
// delivery (SPEC §7): read from hub at each scrape.
func (m *metrics) registerCluster(hub *chat.Hub) {
	lag := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "chatctl_cluster_delivery_lag_seconds",
		Help:    "Delay from the commit of a message on another node (its timestamp) to its delivery here.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	hub.OnRemoteLag(func(d time.Duration) { lag.Observe(max(d, 0).Seconds()) })
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatctl_broker_up",
		Help: "1 while the broker reaches the other nodes (always 1 for a single node without a broker).",
	}, func() float64 {
		if hub.Broker().Up() {
			return 1
		}
		return 0
	})
	nodes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatctl_cluster_nodes",
		Help: "Live nodes of the cluster, this one included.",
	}, func() float64 { return float64(hub.Broker().Stats().Nodes) })
	holes := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chatctl_cluster_holes_filled_total",
		Help: "Messages of other nodes read from the store because their publication was late or lost (holes and tails).",
	}, func() float64 { return float64(hub.ClusterStats().HolesFilled) })
	received := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chatctl_cluster_messages_received_total",
		Help: "Messages of other nodes delivered here from the broker.",
	}, func() float64 { return float64(hub.ClusterStats().Remote) })
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "chatctl_cluster_dropped_total",
		Help: "Broker publications lost (disconnected, or a full delivery queue); the store fills them in.",
	}, func() float64 { return float64(hub.Broker().Stats().Dropped) })
	m.reg.MustRegister(lag, up, nodes, holes, received, dropped)
}

// observe records one finished request.
func (m *metrics) observe(route string, code int, d time.Duration) {
	key := seriesKey{route, code}
	v, ok := m.series.Load(key)
	if !ok {
		v, _ = m.series.LoadOrStore(key, requestSeries{
			count:   m.requests.WithLabelValues(route, strconv.Itoa(code)),
			latency: m.latency.WithLabelValues(route),
		})
	}
	s := v.(requestSeries)
	s.count.Inc()
	s.latency.Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// buildInfoGauge is chatctl_build_info: always 1, with the binary's
// version, VCS revision and Go version as labels (what `chatctl version`
// prints), so dashboards can tell which build each server runs.
func buildInfoGauge(info buildinfo.Info) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatctl_build_info",
		Help: "Build of this server: version, VCS revision and Go version as labels; always 1.",
		ConstLabels: prometheus.Labels{
			"version":   info.Version,
			"revision":  info.Revision,
			"goversion": info.GoVersion,
		},
	}, func() float64 { return 1 })
}

// metricsOnPublic is GET /metrics of the public listener: the metrics,
// unless metrics.listen moved them to their own address, in which case
// 404 (as if the route were not there), so that nothing about the server
// leaks to the internet.
func (s *Server) metricsOnPublic() http.Handler {
	if s.cfg.Metrics.Listen != "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			errBody(w, http.StatusNotFound, "Not Found")
		})
	}
	return s.metrics.handler()
}
