// A small HTTP/1.1 client over libcurl, shared by the Docker client and the HTTP backends
// (Consul, etcd). It speaks to a unix socket or to http(s)://host:port, reuses connections, and
// streams long-lived responses (Docker /events, etcd watch) with prompt cancellation.
#ifndef REGISTRATOR_COMMON_HTTP_CLIENT_H_
#define REGISTRATOR_COMMON_HTTP_CLIENT_H_

#include <curl/curl.h>

#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace registrator {

// Where and how to connect. Either `unix_socket` is set (the URL's host is then only used for
// the Host header) or `base_url` names the server, e.g. "http://127.0.0.1:2379".
struct HttpEndpoint {
  std::string unix_socket;
  std::string base_url = "http://localhost";
  // TLS (https base_url): CA bundle to verify the server, and an optional client certificate.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify_peer = true;
  // HTTP basic auth "user:password", empty for none.
  std::string basic_auth;
  absl::Duration connect_timeout = absl::Seconds(5);
};

// Room reserved after a response body of announced length (simdjson's SIMDJSON_PADDING).
inline constexpr size_t kBodyPadding = 64;

struct HttpRequest {
  std::string method = "GET";
  // Path and query, starting with "/", already URL-encoded.
  std::string path;
  std::string body;
  // Extra headers, "Name: value".
  std::vector<std::string> headers;
  // Whole-request timeout; ignored by Stream (streams last until cancelled or closed).
  absl::Duration timeout = absl::Seconds(10);
  // Send fails (RESOURCE_EXHAUSTED) rather than hold a bigger body: a Docker inspect carries
  // whatever labels a container's author wrote. Ignored by Stream (it hands data on as it comes).
  size_t max_body_bytes = 64 << 20;
  // How much of the body HttpResponse::body keeps; the rest is read and dropped (max_body_bytes
  // still bounds all of it). A watch needs only the headers and a little for error messages, not
  // a second copy of a 10,000-service listing.
  size_t keep_body_bytes = std::numeric_limits<size_t>::max();
  // Response headers to return in HttpResponse::headers (names case-insensitive), e.g. Consul's
  // X-Consul-Index. Empty: none are read (the common case costs nothing).
  std::vector<std::string> response_headers;
};

struct HttpResponse {
  long status = 0;
  // When the server announced its length, capacity() leaves at least kBodyPadding bytes after the
  // body, so that simdjson parses it in place.
  std::string body;
  // The headers named in HttpRequest::response_headers that the server sent, in that order:
  // {name as requested, value}. A header sent twice gives its last value.
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of a header fetched through response_headers; "" when absent.
  std::string Header(absl::string_view name) const;
};

// Cancels a Stream from another thread, promptly (wakes the blocked poll).
class StreamCancel {
 public:
  StreamCancel() = default;
  StreamCancel(const StreamCancel&) = delete;
  StreamCancel& operator=(const StreamCancel&) = delete;

  void Cancel();
  bool cancelled() const;

 private:
  friend class HttpClient;
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  void* multi_ ABSL_GUARDED_BY(mu_) = nullptr;  // CURLM* of the running Stream, if any.
};

class HttpClient {
 public:
  explicit HttpClient(HttpEndpoint endpoint);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and returns the status and body. Transport failures (refused, timeout,
  // TLS) are UNAVAILABLE or DEADLINE_EXCEEDED, a body over max_body_bytes RESOURCE_EXHAUSTED;
  // any HTTP status is returned as a response. The path is sent as is (no dot-segment removal).
  // Thread-safe: handles (and their kept-alive connections) are pooled.
  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

  // Streams the body of a response to `on_data` as it arrives. Returns OK when the server ends
  // the response, CANCELLED when `cancel` fires or `on_data` returns false, UNAVAILABLE on a
  // transport error, and an error carrying the status and body when the server answers >= 300.
  // `on_headers_ok`, if set, runs once the server has answered 2xx (the stream is live).
  absl::Status Stream(const HttpRequest& request,
                      const std::function<bool(absl::string_view)>& on_data, StreamCancel* cancel,
                      const std::function<void()>& on_headers_ok = nullptr);

  // One request whose answer may take long (a Consul blocking query waits up to 10 minutes for
  // a change), cancellable from another thread: like Send (request.timeout bounds it, body limit,
  // response_headers), but on its own connection, and CANCELLED promptly when `cancel` fires.
  absl::StatusOr<HttpResponse> LongPoll(const HttpRequest& request, StreamCancel* cancel);

  const HttpEndpoint& endpoint() const { return endpoint_; }

 private:
  // A pooled handle already configured for the endpoint and Send's callbacks (ConfigureEndpoint,
  // ConfigureSend), or a fresh one configured so; nullptr when curl cannot make one.
  void* AcquireHandle();
  // Pools a handle after a successful Send without curl_easy_reset: its endpoint options stay
  // set (a reset and setting them again cost ~5 K instructions a request), and every option a
  // request sets is set again by the next (ConfigureRequest).
  void ReleaseHandle(void* handle);
  // Options that are the same for every request to this endpoint.
  void ConfigureEndpoint(void* handle) const;
  // Options of this request: URL, method, body and headers. Sets every one of them, so that
  // nothing of a handle's previous request stays in effect.
  void ConfigureRequest(void* handle, const HttpRequest& request, curl_slist** headers) const;
  // How RunCancellable ended: `done` when curl reported the transfer finished, with `result`
  // (a CURLcode); `cancelled` when `cancel` fired before or during it.
  struct CancellableRun {
    bool cancelled = false;
    bool done = false;
    int result = 0;
  };
  // Runs the easy handle `curl` on its own multi handle `multi` until it finishes, fails or
  // `cancel` fires (Cancel() wakes the poll): the transfer loop of Stream and LongPoll.
  static CancellableRun RunCancellable(void* curl, void* multi, StreamCancel* cancel);

  // An idle handle and the thread that last used it. A thread gets its own handle back when
  // there is one: curl's per-request buffers then stay in that thread's malloc arena, instead
  // of being freed into another thread's arena under its lock (a quarter of the futex calls at
  // start-up, issue 14).
  struct IdleHandle {
    void* handle;
    std::thread::id user;
  };

  const HttpEndpoint endpoint_;
  absl::Mutex mu_;
  std::vector<IdleHandle> idle_handles_ ABSL_GUARDED_BY(mu_);
};

// Aborts every HttpClient::Send in flight in this process, promptly: their sockets are shut
// down (waking a blocked poll) and their progress callbacks fail; they return CANCELLED. Sends
// started afterwards run normally. For a bounded shutdown (Bridge::Stop's deadline).
void AbortHttpTransfers();

// Percent-encodes `text` for use in a URL path segment or query value.
std::string UrlEncode(absl::string_view text);

}  // namespace registrator

#endif  // REGISTRATOR_COMMON_HTTP_CLIENT_H_
