// One proxied TCP connection: the client's socket, the backend's, and a flow each way. Owns
// both sockets; borrows a pipe from its loop's pool for a flow only while that flow holds bytes,
// and the loop's copy buffer only within one call.
// Internal to the proxy.
#pragma once

#include <cstdint>
#include <memory>

#include "base/fd.h"
#include "plugin/proxy/list.h"
#include "plugin/proxy/loop.h"
#include "plugin/proxy/pipe_pool.h"

namespace plumb::proxy {

struct Service;
class Backend;
class BackendSet;
class Worker;

// What one pump of a flow ended with.
enum class FlowOutcome {
  kBlocked,  // waiting for the source to have bytes or the destination to take them
  kDone,     // the source closed and everything it sent was delivered (FIN passed on)
  kReset,    // an error on either socket: the connection is over
};

class TcpConn final : public ListHook {
 public:
  TcpConn(Worker& worker, Service& service, UniqueFd client);
  ~TcpConn();
  TcpConn(const TcpConn&) = delete;
  TcpConn& operator=(const TcpConn&) = delete;

  // Picks a backend and connects; on failure with every backend, resets the client.
  void start();
  // The idle or connect timer fired.
  void timedOut();
  // Closes both sockets now (drain timeout, service removed); reset: with RST.
  void close(bool reset);

  bool connecting() const { return state_ == State::kConnecting; }
  int64_t lastActivityMs() const { return last_ms_; }
  const Service& service() const { return service_; }

 private:
  enum class State { kConnecting, kOpen, kClosed };
  struct Side final : Handler {
    TcpConn* conn = nullptr;
    UniqueFd fd;
    void onEvents(uint32_t events) override { conn->onEvents(*this, events); }
  };
  struct Flow {
    std::unique_ptr<Pipe> pipe;
    size_t held = 0;    // bytes in the pipe
    bool eof = false;   // the source sent FIN
    bool shut = false;  // FIN passed on to the destination
    bool paused = false;
    bool bulk = false;    // filled the copy buffer once: splices from now on
    bool urgent = false;  // urgent data came: recv (not splice) until the socket is drained
  };

  void onEvents(Side& side, uint32_t events);
  void closeSide(Side& side, bool reset);
  void tryConnect();
  void connected(uint32_t events);
  void connectFailed(const std::string& why);
  FlowOutcome pump(Flow& flow, Side& from, Side& to, bool to_backend, bool short_read_drains);
  void pumpBoth();
  void settle(FlowOutcome last);
  void touch();

  Worker& worker_;
  Service& service_;
  Side client_;
  Side backend_side_;
  Flow up_;                          // client -> backend
  Flow down_;                        // backend -> client
  std::shared_ptr<BackendSet> set_;  // the backends it was given (held while it lives)
  Backend* backend_ = nullptr;
  uint64_t tried_ = 0;
  int64_t last_ms_ = 0;
  uint32_t client_events_ = 0;  // reported while connecting
  State state_ = State::kConnecting;
};

}  // namespace plumb::proxy
