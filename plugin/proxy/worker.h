// One loop's share of the proxy: its thread's epoll set, pipe pool, TCP connections (in
// connect-timeout and idle order), the UDP listeners it serves and, on the first loop, the
// active health checks. Everything here runs on the loop's thread. Internal to the proxy.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <map>
#include <memory>
#include <vector>

#include "plugin/proxy/list.h"
#include "plugin/proxy/loop.h"
#include "plugin/proxy/pipe_pool.h"
#include "plugin/proxy/proxy.h"
#include "plugin/proxy/service.h"

namespace plumb::proxy {

class TcpConn;
class UdpListener;
class HealthChecker;

// Buffers for one recvmmsg/sendmmsg batch, shared by every UDP socket of a loop.
struct DatagramBatch {
  static constexpr int kSize = 32;
  static constexpr size_t kMaxDatagram = 65536;
  DatagramBatch();
  // kSize * kMaxDatagram, left uninitialised: only the pages datagrams touch become resident.
  std::unique_ptr<char[]> data;
  mmsghdr in[kSize];
  mmsghdr out[kSize];
  iovec in_iov[kSize];
  iovec out_iov[kSize];
  sockaddr_storage addrs[kSize];
  // IP_PKTINFO / IPV6_PKTINFO: where a datagram to a wildcard listener was sent, and so where
  // its reply must come from.
  alignas(cmsghdr) char in_control[kSize][64];
  alignas(cmsghdr) char out_control[kSize][64];
};

class Worker {
 public:
  Worker(const Options& options, bool runs_health_checks);
  ~Worker();
  Status init();
  Loop& loop() { return *loop_; }
  PipePool& pipes() { return pipes_; }
  const Options& options() const { return options_; }
  DatagramBatch& batch();
  // Where small TCP transfers are copied through (TcpConn::pump), within one call.
  std::vector<char>& copyBuffer() { return copy_buffer_; }

  // The other loops, for spreading connections (set before the loops run).
  void setPeers(std::vector<Worker*> peers) { peers_ = std::move(peers); }
  // TCP connections this loop carries now; read by the other loops.
  int load() const { return load_.load(std::memory_order_relaxed); }

  // On the loop's thread (post them from elsewhere).
  void addService(const std::shared_ptr<Service>& service, bool serve_udp);
  void removeService(uint64_t id);
  // The service's backends changed (Service::backends() has the new set).
  void backendsChanged(uint64_t id);
  void startDrain();

  // TCP connections report their state changes here.
  void connecting(TcpConn* c);
  void opened(TcpConn* c);
  void touched(TcpConn* c);
  void closed(TcpConn* c);  // unlinks; the connection is freed after the batch

 private:
  class Acceptor;
  // A connection accepted here, or by a busier loop that handed it over.
  void adopt(const std::shared_ptr<Service>& service, UniqueFd client);
  void resumeAcceptor(uint64_t id);  // after it rested for want of descriptors
  void sweep();
  void closeAllConnections(bool reset);
  void closeServiceConnections(uint64_t id);

  Options options_;
  bool runs_health_checks_;
  std::unique_ptr<Loop> loop_;
  PipePool pipes_;
  std::unique_ptr<DatagramBatch> batch_;
  std::vector<char> copy_buffer_ = std::vector<char>(16384);
  HookList connecting_;  // by connect start
  HookList open_;        // by last activity
  std::map<uint64_t, std::shared_ptr<Service>> services_;
  std::map<uint64_t, std::unique_ptr<Acceptor>> acceptors_;
  std::map<uint64_t, std::unique_ptr<UdpListener>> udp_;
  std::unique_ptr<HealthChecker> health_;
  std::vector<Worker*> peers_;
  std::atomic<int> load_{0};
  bool draining_ = false;
  int64_t drain_deadline_ms_ = 0;
};

}  // namespace plumb::proxy
