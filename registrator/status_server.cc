// The -http status server (see status_server.h): /health, /metrics and /services over
// cpp-httplib, reading the bridge's state only; nothing it serves is secret.
#include "registrator/status_server.h"

#include <httplib.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "registrator/common/host_port.h"
#include "registrator/common/log.h"
#include "registrator/model/service_json.h"

namespace registrator {
namespace {

void AppendCounter(std::string* out, const char* name, const char* help, uint64_t value,
                   const std::string& labels = "") {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n", name, labels,
                  " ", value, "\n");
}

// Full precision: absl::StrCat prints doubles with 6 significant digits, which would round a
// Unix timestamp by up to ~5,000 s.
void AppendGauge(std::string* out, const char* name, const char* help, double value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ",
                  absl::StrFormat("%.17g", value), "\n");
}

}  // namespace

StatusServer::StatusServer(const Bridge* bridge, std::function<absl::Status()> backend_ping,
                           absl::Duration ping_cache)
    : bridge_(bridge), backend_ping_(std::move(backend_ping)), ping_cache_(ping_cache) {}

StatusServer::~StatusServer() { Stop(); }

absl::Status StatusServer::Start(const std::string& address) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("-http \"", address, "\" must be host:port, e.g. 127.0.0.1:9090"));
  }
  if (host.empty()) host = "0.0.0.0";

  server_ = std::make_unique<httplib::Server>();
  // Scrapers keep connections alive; a short idle timeout keeps Stop() prompt.
  server_->set_keep_alive_timeout(1);
  // Whoever can reach the port is untrusted: only small GETs are served, a request body over
  // 1 KiB is refused (413), and a client that sends or reads too slowly is dropped. httplib
  // also bounds the request line and each header (8 KiB) and serves from a fixed thread pool.
  server_->set_payload_max_length(1024);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_max_count(100);
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto [status, body] = Health();
    res.status = status;
    res.set_content(body, "text/plain; charset=utf-8");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/services", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ServicesJson(), "application/json");
  });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("-http: cannot listen on ", address));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  REG_LOG_INFO("serving /health, /metrics and /services on ", host, ":", port_);
  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    REG_LOG_WARN("-http listens on ", host,
                 ", not only loopback: anyone who can reach it sees this host's services");
  }
  return absl::OkStatus();
}

void StatusServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

std::pair<int, std::string> StatusServer::Health() {
  const BridgeStats stats = bridge_->stats();
  // The ping is a network call: never under mu_. One probe refreshes the cached result while
  // concurrent probes answer from the cache instead of queueing behind a slow backend.
  absl::Status backend;
  bool ping_now = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - last_ping_ >= ping_cache_ && !ping_in_flight_) {
      ping_in_flight_ = true;
      ping_now = true;
    }
    backend = last_ping_status_;
  }
  if (ping_now) {
    backend = backend_ping_ ? backend_ping_() : absl::OkStatus();
    absl::MutexLock lock(&mu_);
    last_ping_status_ = backend;
    last_ping_ = absl::Now();
    ping_in_flight_ = false;
  }
  std::string reasons;
  if (!stats.docker_connected) reasons.append("docker: event stream not connected\n");
  // An error text may quote a URI or a server's answer: never let it carry a secret.
  if (!backend.ok()) {
    absl::StrAppend(&reasons, "backend: ", RedactSecrets(backend.message()), "\n");
  }
  if (reasons.empty()) return {200, "ok\n"};
  return {503, reasons};
}

std::string StatusServer::MetricsText() const {
  const BridgeStats s = bridge_->stats();
  std::string out;
  AppendCounter(&out, "registrator_events_total", "Docker events received.", s.events);
  AppendCounter(&out, "registrator_events_dropped_total",
                "Events dropped because too many containers were pending (a resync follows).",
                s.events_dropped);
  AppendCounter(&out, "registrator_reconciles_total", "Containers reconciled.", s.reconciles);
  absl::StrAppend(&out,
                  "# HELP registrator_backend_writes_total Backend writes by kind and result.\n"
                  "# TYPE registrator_backend_writes_total counter\n");
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"register\",result=\"ok\"} ",
                  s.registers, "\n");
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"register\",result=\"error\"} ",
                  s.register_failures, "\n");
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"deregister\",result=\"ok\"} ",
                  s.deregisters, "\n");
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"deregister\",result=\"error\"} ",
                  s.deregister_failures, "\n");
  // Docker health written on its own (Consul's "Docker health" check updates).
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"health\",result=\"ok\"} ",
                  s.health_updates, "\n");
  absl::StrAppend(&out, "registrator_backend_writes_total{kind=\"health\",result=\"error\"} ",
                  s.health_update_failures, "\n");
  AppendCounter(&out, "registrator_retries_total", "Retries of failed writes and inspects.",
                s.retries);
  AppendCounter(&out, "registrator_resyncs_total", "Full resyncs.", s.resyncs);
  AppendCounter(&out, "registrator_ttl_refreshes_total", "TTL refresh rounds.", s.refreshes);
  AppendCounter(&out, "registrator_drift_checks_total",
                "Backend listings the drift watch asked for.", s.drift_checks);
  AppendGauge(&out, "registrator_backend_watched", "1 while the backend is watched for drift.",
              s.watching ? 1 : 0);
  AppendCounter(&out, "registrator_docker_reconnects_total",
                "Times the Docker event stream reconnected.", s.docker_reconnects);
  AppendGauge(&out, "registrator_services_registered", "Services this host has registered.",
              static_cast<double>(s.services));
  AppendGauge(&out, "registrator_docker_connected", "1 while the Docker event stream is live.",
              s.docker_connected ? 1 : 0);
  AppendGauge(&out, "registrator_last_sync_timestamp_seconds",
              "Unix time of the last successful resync (0 = never).",
              s.last_sync == absl::InfinitePast()
                  ? 0
                  : absl::ToDoubleSeconds(s.last_sync - absl::UnixEpoch()));
  return out;
}

std::string StatusServer::ServicesJson() const {
  std::string out = "[";
  bool first = true;
  for (const Service& service : bridge_->RegisteredServices()) {
    if (!first) out.push_back(',');
    first = false;
    absl::StrAppend(&out, "{", ServiceJsonMembers(service), "}");
  }
  out.append("]\n");
  return out;
}

}  // namespace registrator
