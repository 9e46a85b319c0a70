// The -http status server (see status_server.h): /health, /metrics and /services over
// cpp-httplib, reading the bridge's state only; nothing it serves is secret.
#include "registrator/status_server.h"

#include <httplib.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "registrator/common/host_port.h"
#include "registrator/common/json.h"
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
std::string GaugeValue(double value) { return absl::StrFormat("%.17g", value); }

void AppendGauge(std::string* out, const char* name, const char* help, double value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ",
                  GaugeValue(value), "\n");
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string LabelValue(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

double LastSyncSeconds(const BridgeStats& s) {
  return s.last_sync == absl::InfinitePast()
             ? 0
             : absl::ToDoubleSeconds(s.last_sync - absl::UnixEpoch());
}

}  // namespace

StatusServer::StatusServer(const Bridge* bridge, std::function<absl::Status()> backend_ping,
                           absl::Duration ping_cache)
    : bridge_(bridge),
      registries_({RegistryStatus{"", bridge, std::move(backend_ping)}}),
      labelled_(false),
      ping_cache_(ping_cache),
      pings_(1) {}

StatusServer::StatusServer(const Bridge* docker_side, std::vector<RegistryStatus> registries,
                           absl::Duration ping_cache)
    : bridge_(docker_side),
      registries_(std::move(registries)),
      labelled_(true),
      ping_cache_(ping_cache),
      pings_(registries_.size()) {}

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

std::vector<absl::Status> StatusServer::PingAll() {
  // A ping is a network call: never under mu_. One probe refreshes a registry's cached result
  // while concurrent probes answer from the cache instead of queueing behind a slow backend.
  std::vector<absl::Status> result(registries_.size());
  std::vector<size_t> due;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < registries_.size(); ++i) {
      PingCache& cache = pings_[i];
      if (now - cache.last >= ping_cache_ && !cache.in_flight) {
        cache.in_flight = true;
        due.push_back(i);
      }
      result[i] = cache.status;
    }
  }
  auto ping = [this, &result](size_t i) {
    const RegistryStatus& registry = registries_[i];
    absl::Status status = registry.ping ? registry.ping() : absl::OkStatus();
    absl::MutexLock lock(&mu_);
    pings_[i].status = status;
    pings_[i].last = absl::Now();
    pings_[i].in_flight = false;
    result[i] = std::move(status);
  };
  if (due.size() == 1) {
    ping(due.front());
  } else {
    // Several registries: in parallel, so the probe takes as long as the slowest, not the sum.
    std::vector<std::thread> threads;
    threads.reserve(due.size());
    for (size_t i : due) threads.emplace_back(ping, i);
    for (std::thread& thread : threads) thread.join();
  }
  return result;
}

std::pair<int, std::string> StatusServer::Health() {
  const BridgeStats stats = bridge_->stats();
  const std::vector<absl::Status> pings = PingAll();
  if (!labelled_) {
    std::string reasons;
    if (!stats.docker_connected) reasons.append("docker: event stream not connected\n");
    // An error text may quote a URI or a server's answer: never let it carry a secret.
    if (!pings.front().ok()) {
      absl::StrAppend(&reasons, "backend: ", RedactSecrets(pings.front().message()), "\n");
    }
    if (reasons.empty()) return {200, "ok\n"};
    return {503, reasons};
  }
  // Several registries: one line each, whatever its state; 503 when any is not ok.
  bool ok = stats.docker_connected;
  std::string body =
      stats.docker_connected ? "docker: ok\n" : "docker: event stream not connected\n";
  for (size_t i = 0; i < registries_.size(); ++i) {
    ok = ok && pings[i].ok();
    absl::StrAppend(&body, "registry ", registries_[i].name, ": ",
                    pings[i].ok() ? "ok" : RedactSecrets(pings[i].message()), "\n");
  }
  return {ok ? 200 : 503, body};
}

std::string StatusServer::MetricsText() const {
  const BridgeStats s = bridge_->stats();
  std::vector<BridgeStats> per_registry;
  std::vector<std::string> label;  // `registry="..."` (empty with one registry).
  for (const RegistryStatus& registry : registries_) {
    per_registry.push_back(registry.bridge == bridge_ ? s : registry.bridge->stats());
    label.push_back(labelled_ ? absl::StrCat("registry=\"", LabelValue(registry.name), "\"") : "");
  }
  std::string out;
  // One family, one line per registry: `name{registry="..."} value` (`name value` with one).
  auto family = [&](const char* name, const char* help, const char* type, auto value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (size_t i = 0; i < per_registry.size(); ++i) {
      absl::StrAppend(&out, name, label[i].empty() ? "" : absl::StrCat("{", label[i], "}"), " ",
                      value(per_registry[i]), "\n");
    }
  };
  AppendCounter(&out, "registrator_events_total", "Docker events received.", s.events);
  AppendCounter(&out, "registrator_events_dropped_total",
                "Events dropped because too many containers were pending (a resync follows).",
                s.events_dropped);
  AppendCounter(&out, "registrator_reconciles_total", "Containers reconciled.", s.reconciles);
  absl::StrAppend(&out,
                  "# HELP registrator_backend_writes_total Backend writes by kind and result.\n"
                  "# TYPE registrator_backend_writes_total counter\n");
  for (size_t i = 0; i < per_registry.size(); ++i) {
    const BridgeStats& r = per_registry[i];
    const std::string prefix = label[i].empty() ? "" : absl::StrCat(label[i], ",");
    const std::pair<const char*, uint64_t> writes[] = {
        {"kind=\"register\",result=\"ok\"", r.registers},
        {"kind=\"register\",result=\"error\"", r.register_failures},
        {"kind=\"deregister\",result=\"ok\"", r.deregisters},
        {"kind=\"deregister\",result=\"error\"", r.deregister_failures},
        // Docker health written on its own (Consul's "Docker health" check updates).
        {"kind=\"health\",result=\"ok\"", r.health_updates},
        {"kind=\"health\",result=\"error\"", r.health_update_failures},
    };
    for (const auto& [kind, value] : writes) {
      absl::StrAppend(&out, "registrator_backend_writes_total{", prefix, kind, "} ", value, "\n");
    }
  }
  family("registrator_retries_total", "Retries of failed writes and inspects.", "counter",
         [](const BridgeStats& r) { return r.retries; });
  if (labelled_) {
    AppendCounter(&out, "registrator_inspect_retries_total",
                  "Retries of failed Docker inspects (shared by every registry).", s.retries);
  }
  family("registrator_resyncs_total", "Full resyncs.", "counter",
         [](const BridgeStats& r) { return r.resyncs; });
  family("registrator_ttl_refreshes_total", "TTL refresh rounds.", "counter",
         [](const BridgeStats& r) { return r.refreshes; });
  family("registrator_drift_checks_total", "Backend listings the drift watch asked for.", "counter",
         [](const BridgeStats& r) { return r.drift_checks; });
  family("registrator_backend_watched", "1 while the backend is watched for drift.", "gauge",
         [](const BridgeStats& r) { return r.watching ? 1 : 0; });
  AppendCounter(&out, "registrator_docker_reconnects_total",
                "Times the Docker event stream reconnected.", s.docker_reconnects);
  family("registrator_services_registered", "Services this host has registered.", "gauge",
         [](const BridgeStats& r) { return GaugeValue(static_cast<double>(r.services)); });
  AppendGauge(&out, "registrator_docker_connected", "1 while the Docker event stream is live.",
              s.docker_connected ? 1 : 0);
  family("registrator_last_sync_timestamp_seconds",
         "Unix time of the last successful resync (0 = never).", "gauge",
         [](const BridgeStats& r) { return GaugeValue(LastSyncSeconds(r)); });
  return out;
}

std::string StatusServer::ServicesJson() const {
  std::string out = "[";
  bool first = true;
  for (const RegistryStatus& registry : registries_) {
    for (const Service& service : registry.bridge->RegisteredServices()) {
      if (!first) out.push_back(',');
      first = false;
      absl::StrAppend(&out, "{", ServiceJsonMembers(service));
      if (labelled_) {
        absl::StrAppend(&out, ",\"registry\":");
        AppendJsonString(&out, registry.name);
      }
      out.push_back('}');
    }
  }
  out.append("]\n");
  return out;
}

}  // namespace registrator
