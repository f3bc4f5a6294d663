#include "plugin/docker/http.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/dl.h"
#include "base/log.h"

namespace plumb::docker {
namespace {

// Requests from dockerd are a few hundred bytes; anything near this is not from it.
constexpr size_t kMaxBody = 1 << 20;
// Bodies being received, all connections together: clients that send large bodies slowly (or
// never finish them) cost at most this much memory. A body up to kSmallBody is always taken,
// so dockerd's calls are served whatever others do.
constexpr size_t kMaxBodiesInFlight = 32 << 20;
constexpr size_t kSmallBody = 64 << 10;
// Connections at once (libmicrohttpd's default, FD_SETSIZE - 4, let a thousand idle clients
// shut dockerd out); each has its thread, with a small stack.
constexpr unsigned kMaxConnections = 4096;
constexpr size_t kThreadStack = 256 << 10;
// A connection that sends nothing for this long is closed: an idle or slow client frees its
// place soon. dockerd opens a new connection when it needs one.
constexpr unsigned kIdleTimeoutSeconds = 15;

// The libmicrohttpd entry points plumb uses, resolved when the daemon starts.
struct MhdLib {
  decltype(&MHD_start_daemon) start = nullptr;
  decltype(&MHD_stop_daemon) stop = nullptr;
  decltype(&MHD_create_response_from_buffer) response = nullptr;
  decltype(&MHD_add_response_header) header = nullptr;
  decltype(&MHD_queue_response) queue = nullptr;
  decltype(&MHD_destroy_response) destroy = nullptr;

  bool resolve(const DynamicLibrary& lib) {
    return lib.resolve("MHD_start_daemon", start) && lib.resolve("MHD_stop_daemon", stop) &&
           lib.resolve("MHD_create_response_from_buffer", response) &&
           lib.resolve("MHD_add_response_header", header) &&
           lib.resolve("MHD_queue_response", queue) && lib.resolve("MHD_destroy_response", destroy);
  }
};

struct Request {
  std::string body;
  bool too_large = false;
  bool busy = false;   // the bodies in flight were at their cap
  size_t counted = 0;  // of the bodies in flight, this one's
};

}  // namespace

struct HttpServer::Impl {
  const MhdLib* mhd = nullptr;
  HttpHandler handler;
  UniqueFd fd;
  MHD_Daemon* daemon = nullptr;
  std::atomic<size_t> in_flight{0};  // body buffers' bytes, of requests not yet answered

  static MHD_Result onRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                              const char* /*version*/, const char* upload, size_t* upload_size,
                              void** con_cls) {
    auto* self = static_cast<Impl*>(cls);
    auto* req = static_cast<Request*>(*con_cls);
    if (!req) {
      *con_cls = new Request;
      return MHD_YES;
    }
    if (*upload_size != 0) {
      size_t n = *upload_size;
      *upload_size = 0;
      if (req->too_large || req->busy) return MHD_YES;  // read and dropped
      if (req->body.size() + n > kMaxBody) {
        req->too_large = true;
      } else if (req->body.size() + n > kSmallBody &&
                 self->in_flight.load() + n > kMaxBodiesInFlight) {
        req->busy = true;
      } else {
        // What the body's buffer holds is what counts: it grows by doubling.
        req->body.append(upload, n);
        size_t now = req->body.capacity();
        self->in_flight.fetch_add(now - req->counted);
        req->counted = now;
      }
      if (req->too_large || req->busy) {
        self->in_flight.fetch_sub(req->counted);
        req->counted = 0;
        std::string().swap(req->body);
      }
      return MHD_YES;
    }
    HttpReply reply;
    if (req->too_large) {
      reply = {413, R"({"Err":"request body larger than 1 MiB"})"};
    } else if (req->busy) {
      reply = {503, R"({"Err":"too many request bodies in flight: try again"})"};
    } else {
      try {
        reply = self->handler(method, url, req->body);
      } catch (const std::exception& e) {
        // A handler bug must cost one request, not the daemon and every container's network.
        log::get("docker")->error("{} {}: {}", method, url, e.what());
        reply = {500, std::string(R"({"Err":"internal error: )") + e.what() + "\"}"};
      }
    }
    MHD_Response* resp =
        self->mhd->response(reply.body.size(), reply.body.data(), MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    self->mhd->header(resp, "Content-Type", reply.content_type.c_str());
    MHD_Result r = self->mhd->queue(conn, static_cast<unsigned>(reply.status), resp);
    self->mhd->destroy(resp);
    return r;
  }

  static void onCompleted(void* cls, MHD_Connection* /*conn*/, void** con_cls,
                          MHD_RequestTerminationCode /*why*/) {
    auto* req = static_cast<Request*>(*con_cls);
    if (req) static_cast<Impl*>(cls)->in_flight.fetch_sub(req->counted);
    delete req;
    *con_cls = nullptr;
  }
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(UniqueFd listen_fd, HttpHandler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer);
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  PLUMB_ASSIGN(impl.mhd, loadOnce<MhdLib>("libmicrohttpd.so.12", "libmicrohttpd12"));
  impl.handler = std::move(handler);
  impl.fd = std::move(listen_fd);
  impl.daemon = impl.mhd->start(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO |
          MHD_USE_ERROR_LOG,
      0, nullptr, nullptr, &Impl::onRequest, &impl, MHD_OPTION_LISTEN_SOCKET, impl.fd.get(),
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::onCompleted, &impl, MHD_OPTION_CONNECTION_TIMEOUT,
      kIdleTimeoutSeconds, MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
      MHD_OPTION_THREAD_STACK_SIZE, kThreadStack, MHD_OPTION_END);
  if (!impl.daemon) return fail(Errc::kIo, "failed to start the HTTP server");
  // The library's now: MHD_stop_daemon closes the listening socket, and a second close here
  // could close whatever another thread had opened under that number in between.
  (void)impl.fd.release();
  return server;
}

HttpServer::~HttpServer() {
  if (impl_ && impl_->daemon) impl_->mhd->stop(impl_->daemon);
}

Result<UniqueFd> listenUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return fail(Errc::kInvalid, "socket path " + path + " is too long");
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    // /run/docker/plugins may not exist before dockerd first runs.
    std::string dir = path.substr(0, slash);
    for (size_t i = 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') {
        std::string part = dir.substr(0, i);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
          return failErrno(errno, "failed to create " + part);
      }
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failErrno(errno, "failed to create a unix socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return fail(Errc::kExists, "another daemon is already listening on " + path);
    }
  }
  // A socket left by a daemon that was killed: nothing listens on it any more. Anything else
  // under that name (a file, a directory, a link) is not plumb's to remove.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(Errc::kExists, "failed to listen on " + path +
                                     ": it exists and is not a socket (plumb removes "
                                     "only a socket no daemon listens on)");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return failErrno(errno, "failed to remove stale socket " + path);
  }
  mode_t old = ::umask(0177);  // 0600: root only, from the moment it exists
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::umask(old);
  if (rc != 0) return failErrno(err, "failed to bind " + path);
  if (::listen(fd.get(), 128) != 0) return failErrno(errno, "failed to listen on " + path);
  return fd;
}

}  // namespace plumb::docker
