// HttpClient over libcurl (see http_client.h): pooled easy handles for requests, a multi handle
// per stream so another thread can cancel it promptly.
#include "registrator/common/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#ifdef REGISTRATOR_CURL_MBEDTLS
#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#endif

namespace registrator {
namespace {

constexpr size_t kMaxIdleHandles = 32;
constexpr size_t kMaxErrorBody = 64 * 1024;
// A stream's poll waits up to a day: see Stream().
constexpr int kStreamIdlePollMs = 24 * 60 * 60 * 1000;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_ALL); });
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;

struct BoundedBody {
  std::string* body;
  size_t limit;
  size_t keep;
  CURL* curl;
  size_t received = 0;
  bool sized = false;
  bool exceeded = false;
};

size_t AppendToString(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<BoundedBody*>(user);
  const size_t length = size * count;
  if (out->received + length > out->limit) {
    out->exceeded = true;
    return CURL_WRITEFUNC_ERROR;
  }
  if (!out->sized) {
    out->sized = true;
    // Room for all of an announced body at once, plus simdjson's padding: no reallocation and
    // copy while a 10 MB listing arrives (each doubling held old and new at once), and the JSON
    // parsers read it in place instead of copying it (issue 14).
    curl_off_t announced = -1;
    if (curl_easy_getinfo(out->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK &&
        announced > 0 && static_cast<uint64_t>(announced) <= out->limit) {
      out->body->reserve(std::min(static_cast<size_t>(announced), out->keep) + kBodyPadding);
    }
  }
  out->received += length;
  if (out->body->size() < out->keep) {
    out->body->append(data, std::min(length, out->keep - out->body->size()));
  }
  return length;
}

absl::Status TransportError(CURLcode code, const char* error_buffer, const HttpRequest& request) {
  // A refused server certificate is named as such: the TLS library's own wording differs
  // (OpenSSL: "unable to get local issuer certificate", mbedTLS: "BADCERT_NOT_TRUSTED").
  const std::string detail =
      absl::StrCat(request.method, " ", request.path, ": ",
                   code == CURLE_PEER_FAILED_VERIFICATION ? "server certificate refused: " : "",
                   error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code));
  if (code == CURLE_OPERATION_TIMEDOUT) return absl::DeadlineExceededError(detail);
  return absl::UnavailableError(detail);
}

// AbortHttpTransfers(): Sends started before the generation changed give up. Their sockets are
// tracked from creation to close (curl keeps the close callback with the connection), so a
// shutdown never hits a descriptor that was closed and reused.
std::atomic<uint64_t> g_abort_generation{0};
absl::Mutex g_sockets_mu;
absl::flat_hash_set<curl_socket_t>& Sockets() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_sockets_mu) {
  static auto* sockets = new absl::flat_hash_set<curl_socket_t>();
  return *sockets;
}

curl_socket_t OpenSocket(void*, curlsocktype, curl_sockaddr* address) {
  const curl_socket_t fd = ::socket(address->family, address->socktype, address->protocol);
  if (fd != CURL_SOCKET_BAD) {
    absl::MutexLock lock(&g_sockets_mu);
    Sockets().insert(fd);
  }
  return fd;
}

int CloseSocket(void*, curl_socket_t fd) {
  absl::MutexLock lock(&g_sockets_mu);
  Sockets().erase(fd);
  return ::close(fd);
}

// Called by curl at least once a second while a transfer runs: non-zero aborts it.
int AbortCheck(void* started_generation, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  if (started_generation == nullptr) return 0;  // A pooled handle between requests.
  return g_abort_generation.load() != *static_cast<uint64_t*>(started_generation) ? 1 : 0;
}

// Keeps the response headers a request asked for (HttpRequest::response_headers). A header
// callback rather than curl_easy_header(): the static release build's libcurl is configured with
// --disable-headers-api.
struct HeaderCapture {
  const std::vector<std::string>* names;
  std::vector<std::pair<std::string, std::string>>* out;
};

size_t CaptureHeader(char* data, size_t size, size_t count, void* user) {
  auto* capture = static_cast<HeaderCapture*>(user);
  const size_t length = size * count;
  absl::string_view line(data, length);
  // A status line starts a response (an interim 1xx, then the final one): keep only the last.
  if (absl::StartsWith(line, "HTTP/")) {
    capture->out->clear();
    return length;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return length;
  const absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  for (const std::string& wanted : *capture->names) {
    if (!absl::EqualsIgnoreCase(wanted, name)) continue;
    // A repeated header reads as its last value.
    auto it = std::find_if(capture->out->begin(), capture->out->end(),
                           [&](const auto& kept) { return kept.first == wanted; });
    if (it != capture->out->end()) {
      it->second = std::string(value);
    } else {
      capture->out->emplace_back(wanted, std::string(value));
    }
  }
  return length;
}

// Installs CaptureHeader on `curl` when the request wants headers (`capture` must outlive the
// transfer).
void CaptureHeaders(CURL* curl, const HttpRequest& request, HttpResponse* response,
                    HeaderCapture* capture) {
  if (request.response_headers.empty()) return;
  *capture = HeaderCapture{&request.response_headers, &response->headers};
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CaptureHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, capture);
}

#ifdef REGISTRATOR_CURL_MBEDTLS
// The release build's libcurl does TLS with Debian's mbedTLS 2.28 (tools/static-deps), whose host
// name check compares only DNS names and the CN: a server certificate for an IP address (an
// iPAddress subjectAltName, what Consul's and etcd's tooling issue for https://10.0.0.5:8501)
// fails with BADCERT_CN_MISMATCH, although OpenSSL (the dev build) accepts it. This verify
// callback adds the iPAddress check: when the URL's host is an IP literal and the server
// certificate lists exactly that address, the mismatch flag is cleared. Every other flag
// (untrusted, expired...) and every other certificate in the chain is left as mbedTLS found it.

// True when the certificate's subjectAltName extension holds an iPAddress of exactly `address`
// (4 or 16 bytes). Walks the DER of the extensions, which mbedTLS 2.28 keeps raw (its parsed
// subject_alt_names list holds only DNS names).
bool CertificateHasIpAddress(const mbedtls_x509_crt& crt, const unsigned char* address,
                             size_t address_len) {
  unsigned char* p = crt.v3_ext.p;
  if (p == nullptr) return false;
  const unsigned char* const ext_end = crt.v3_ext.p + crt.v3_ext.len;
  size_t len = 0;
  // Extensions ::= SEQUENCE OF Extension
  if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
      0) {
    return false;
  }
  const unsigned char* const seq_end = p + len;
  while (p < seq_end) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    if (mbedtls_asn1_get_tag(&p, seq_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
        0) {
      return false;
    }
    const unsigned char* const one_end = p + len;
    mbedtls_x509_buf oid;
    if (mbedtls_asn1_get_tag(&p, one_end, &oid.len, MBEDTLS_ASN1_OID) != 0) return false;
    oid.p = p;
    p += oid.len;
    int critical = 0;  // Optional: get_bool leaves p alone when the next element is no BOOLEAN.
    const int bool_result = mbedtls_asn1_get_bool(&p, one_end, &critical);
    if (bool_result != 0 && bool_result != MBEDTLS_ERR_ASN1_UNEXPECTED_TAG) return false;
    if (mbedtls_asn1_get_tag(&p, one_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0) return false;
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0) {
      // GeneralNames ::= SEQUENCE OF GeneralName; iPAddress is [7] IMPLICIT OCTET STRING.
      const unsigned char* const value_end = p + len;
      if (mbedtls_asn1_get_tag(&p, value_end, &len,
                               MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) {
        return false;
      }
      const unsigned char* const names_end = p + len;
      while (p < names_end) {
        const int tag = *p++;
        if (mbedtls_asn1_get_len(&p, names_end, &len) != 0) return false;
        if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_IP_ADDRESS) &&
            len == address_len && memcmp(p, address, len) == 0) {
          return true;
        }
        p += len;
      }
      return false;
    }
    p = const_cast<unsigned char*>(one_end);
  }
  return false;
}

// mbedTLS verify callback; `context` is the endpoint's base URL (a member of the HttpClient,
// which outlives its connections' handshakes).
int VerifyIpAddressSan(void* context, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  if (depth != 0 || (*flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) == 0) return 0;
  CURLU* url = curl_url();
  if (url == nullptr) return 0;
  char* host = nullptr;
  if (curl_url_set(url, CURLUPART_URL, static_cast<const std::string*>(context)->c_str(), 0) ==
          CURLUE_OK &&
      curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    std::string literal = host;
    // An IPv6 host comes bracketed ("[::1]"), possibly with a zone id, which certificates lack.
    if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
      literal = literal.substr(1, literal.size() - 2);
    }
    unsigned char address[16];
    size_t address_len = 0;
    if (inet_pton(AF_INET, literal.c_str(), address) == 1) {
      address_len = 4;
    } else if (inet_pton(AF_INET6, literal.c_str(), address) == 1) {
      address_len = 16;
    }
    if (address_len != 0 && CertificateHasIpAddress(*crt, address, address_len)) {
      *flags &= ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_CN_MISMATCH);
    }
  }
  curl_free(host);
  curl_url_cleanup(url);
  return 0;
}

CURLcode InstallIpAddressCheck(CURL*, void* ssl_config, void* base_url) {
  mbedtls_ssl_conf_verify(static_cast<mbedtls_ssl_config*>(ssl_config), &VerifyIpAddressSan,
                          base_url);
  return CURLE_OK;
}
#endif  // REGISTRATOR_CURL_MBEDTLS

}  // namespace

std::string HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

void AbortHttpTransfers() {
  ++g_abort_generation;
  absl::MutexLock lock(&g_sockets_mu);
  // Wakes every poll on these sockets at once; idle pooled connections die too (curl notices
  // a dead connection before reusing it).
  for (curl_socket_t fd : Sockets()) ::shutdown(fd, SHUT_RDWR);
}

void StreamCancel::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

bool StreamCancel::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

HttpClient::HttpClient(HttpEndpoint endpoint) : endpoint_(std::move(endpoint)) { GlobalInitOnce(); }

HttpClient::~HttpClient() {
  absl::MutexLock lock(&mu_);
  for (const IdleHandle& idle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(idle.handle));
}

void* HttpClient::AcquireHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_handles_.empty()) {
      const std::thread::id self = std::this_thread::get_id();
      auto own = std::find_if(idle_handles_.rbegin(), idle_handles_.rend(),
                              [self](const IdleHandle& idle) { return idle.user == self; });
      // Otherwise the most recently used one: its connection is the likeliest to be alive.
      auto pick = own != idle_handles_.rend() ? own.base() - 1 : idle_handles_.end() - 1;
      void* handle = pick->handle;
      idle_handles_.erase(pick);
      return handle;
    }
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return nullptr;
  ConfigureEndpoint(curl);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, &CloseSocket);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &AbortCheck);
  return curl;
}

void HttpClient::ReleaseHandle(void* handle) {
  // The handle keeps its live connection, so the next request reuses it. What pointed into the
  // finished Send's stack frame and request is cleared: curl must never touch it while idle.
  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, nullptr);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  absl::MutexLock lock(&mu_);
  if (idle_handles_.size() < kMaxIdleHandles) {
    idle_handles_.push_back({handle, std::this_thread::get_id()});
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

void HttpClient::ConfigureEndpoint(void* raw) const {
  CURL* curl = static_cast<CURL*>(raw);
  if (!endpoint_.unix_socket.empty()) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, endpoint_.unix_socket.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(endpoint_.connect_timeout)));
  // Send the path exactly as built: libcurl would otherwise resolve "." and ".." segments, and a
  // key segment of ".." would move the request to another endpoint of the server (a second
  // wall behind ValidateServiceKeys; see README "Security model").
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  // Never follow redirects or use a proxy from the environment: we only talk to the one server.
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  if (!endpoint_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, endpoint_.ca_file.c_str());
  if (!endpoint_.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, endpoint_.cert_file.c_str());
  }
  if (!endpoint_.key_file.empty())
    curl_easy_setopt(curl, CURLOPT_SSLKEY, endpoint_.key_file.c_str());
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, endpoint_.verify_peer ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, endpoint_.verify_peer ? 2L : 0L);
#ifdef REGISTRATOR_CURL_MBEDTLS
  if (endpoint_.verify_peer) {
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, &InstallIpAddressCheck);
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, const_cast<std::string*>(&endpoint_.base_url));
  }
#endif
  if (!endpoint_.basic_auth.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERPWD, endpoint_.basic_auth.c_str());
  }
}

void HttpClient::ConfigureRequest(void* raw, const HttpRequest& request,
                                  curl_slist** headers) const {
  CURL* curl = static_cast<CURL*>(raw);
  const std::string url = absl::StrCat(endpoint_.base_url, request.path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  // HTTPGET first: it takes back what a pooled handle's previous request set (a POST's body, an
  // upload), then CUSTOMREQUEST names the method (none for a GET).
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST,
                   request.method == "GET" ? nullptr : request.method.c_str());
  if (!request.body.empty() || request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  // No "Expect: 100-continue" round trip for small bodies.
  *headers = curl_slist_append(*headers, "Expect:");
  for (const std::string& header : request.headers) {
    *headers = curl_slist_append(*headers, header.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
}

absl::StatusOr<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  // The handle comes configured for the endpoint and Send's callbacks (AcquireHandle).
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  curl_slist* raw_headers = nullptr;
  ConfigureRequest(curl, request, &raw_headers);
  SlistPtr headers(raw_headers);

  HttpResponse response;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  BoundedBody body{&response.body, request.max_body_bytes, request.keep_body_bytes, curl};
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  HeaderCapture capture{};
  CaptureHeaders(curl, request, &response, &capture);
  uint64_t generation = g_abort_generation.load();
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &generation);
  const CURLcode code = curl_easy_perform(curl);
  if (g_abort_generation.load() != generation) {
    curl_easy_cleanup(curl);
    return absl::CancelledError(absl::StrCat(request.method, " ", request.path, ": aborted"));
  }
  if (code != CURLE_OK) {
    absl::Status status = body.exceeded
                              ? absl::ResourceExhaustedError(absl::StrCat(
                                    request.method, " ", request.path, ": response body over ",
                                    request.max_body_bytes, " bytes; refused"))
                              : TransportError(code, error_buffer, request);
    // A failed handle may hold a broken connection; do not pool it.
    curl_easy_cleanup(curl);
    return status;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  ReleaseHandle(curl);
  return response;
}

namespace {

struct StreamState {
  CURL* curl = nullptr;
  const std::function<bool(absl::string_view)>* on_data = nullptr;
  const std::function<void()>* on_headers_ok = nullptr;
  bool checked_status = false;
  long status = 0;
  std::string error_body;
  bool stopped_by_callback = false;
};

size_t StreamWrite(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<StreamState*>(user);
  const size_t length = size * count;
  if (!state->checked_status) {
    state->checked_status = true;
    curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &state->status);
    if (state->status < 300 && state->on_headers_ok != nullptr && *state->on_headers_ok) {
      (*state->on_headers_ok)();
    }
  }
  if (state->status >= 300) {
    if (state->error_body.size() < kMaxErrorBody) state->error_body.append(data, length);
    return length;
  }
  if (!(*state->on_data)(absl::string_view(data, length))) {
    state->stopped_by_callback = true;
    return CURL_WRITEFUNC_ERROR;
  }
  return length;
}

// Header callback: notices a 2xx status as soon as headers end, before any body byte, so a
// stream that stays silent (Docker /events when idle) is still reported live.
size_t StreamHeader(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<StreamState*>(user);
  const size_t length = size * count;
  if (!state->checked_status && length <= 2 &&
      (length == 0 || data[0] == '\r' || data[0] == '\n')) {
    long status = 0;
    curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &status);
    // Skip interim 1xx responses; their header block also ends with an empty line.
    if (status >= 200) {
      state->checked_status = true;
      state->status = status;
      if (status < 300 && state->on_headers_ok != nullptr && *state->on_headers_ok) {
        (*state->on_headers_ok)();
      }
    }
  }
  return length;
}

}  // namespace

HttpClient::CancellableRun HttpClient::RunCancellable(void* curl, void* multi_handle,
                                                      StreamCancel* cancel) {
  CURLM* multi = static_cast<CURLM*>(multi_handle);
  CancellableRun run;
  {
    absl::MutexLock lock(&cancel->mu_);
    if (cancel->cancelled_) {
      run.cancelled = true;
      return run;
    }
    cancel->multi_ = multi;
  }
  curl_multi_add_handle(multi, curl);
  CURLcode result = CURLE_OK;
  while (!run.done && !cancel->cancelled()) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg == CURLMSG_DONE) {
        result = message->data.result;
        run.done = true;
      }
    }
    if (run.done || running == 0) break;
    // No periodic wake-up while the transfer is idle: Cancel() wakes this poll itself
    // (curl_multi_wakeup), AbortHttpTransfers() shuts the socket down, and curl shortens the
    // wait on its own when one of its timers (the request's timeout) is due.
    curl_multi_poll(multi, nullptr, 0, kStreamIdlePollMs, nullptr);
  }
  {
    absl::MutexLock lock(&cancel->mu_);
    cancel->multi_ = nullptr;
  }
  curl_multi_remove_handle(multi, curl);
  run.cancelled = cancel->cancelled();
  run.result = result;
  return run;
}

absl::Status HttpClient::Stream(const HttpRequest& request,
                                const std::function<bool(absl::string_view)>& on_data,
                                StreamCancel* cancel, const std::function<void()>& on_headers_ok) {
  // A fresh handle: a stream's connection is never reused for anything else.
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  MultiPtr multi(curl_multi_init());
  if (curl == nullptr || multi == nullptr) return absl::ResourceExhaustedError("curl init failed");
  curl_slist* raw_headers = nullptr;
  ConfigureEndpoint(curl.get());
  ConfigureRequest(curl.get(), request, &raw_headers);
  SlistPtr headers(raw_headers);

  StreamState state;
  state.curl = curl.get();
  state.on_data = &on_data;
  state.on_headers_ok = &on_headers_ok;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &StreamWrite);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, &StreamHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &state);

  const CancellableRun run = RunCancellable(curl.get(), multi.get(), cancel);
  const CURLcode result = static_cast<CURLcode>(run.result);

  if (run.cancelled || state.stopped_by_callback) {
    return absl::CancelledError("stream cancelled");
  }
  if (result != CURLE_OK) return TransportError(result, error_buffer, request);
  if (state.status >= 300) {
    return absl::FailedPreconditionError(absl::StrCat(request.method, " ", request.path, ": HTTP ",
                                                      state.status, ": ", state.error_body));
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> HttpClient::LongPoll(const HttpRequest& request,
                                                  StreamCancel* cancel) {
  // A fresh handle on its own multi handle, as Stream: Cancel() wakes the poll at once, and the
  // connection held by a parked long poll is never one a Send is waiting to reuse.
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  MultiPtr multi(curl_multi_init());
  if (curl == nullptr || multi == nullptr) return absl::ResourceExhaustedError("curl init failed");
  curl_slist* raw_headers = nullptr;
  ConfigureEndpoint(curl.get());
  ConfigureRequest(curl.get(), request, &raw_headers);
  SlistPtr headers(raw_headers);

  HttpResponse response;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
  BoundedBody body{&response.body, request.max_body_bytes, request.keep_body_bytes, curl.get()};
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  HeaderCapture capture{};
  CaptureHeaders(curl.get(), request, &response, &capture);
  const CancellableRun run = RunCancellable(curl.get(), multi.get(), cancel);
  if (run.cancelled) {
    return absl::CancelledError(absl::StrCat(request.method, " ", request.path, ": cancelled"));
  }
  if (!run.done) return TransportError(CURLE_RECV_ERROR, error_buffer, request);
  const CURLcode result = static_cast<CURLcode>(run.result);
  if (result != CURLE_OK) {
    if (body.exceeded) {
      return absl::ResourceExhaustedError(absl::StrCat(request.method, " ", request.path,
                                                       ": response body over ",
                                                       request.max_body_bytes, " bytes; refused"));
    }
    return TransportError(result, error_buffer, request);
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string UrlEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace registrator
