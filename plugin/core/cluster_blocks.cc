#include "plugin/core/cluster_blocks.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/json.h"

namespace plumb::core {
namespace {

using json = nlohmann::json;

bool segmentOk(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 63) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  }
  return true;
}

// "198.18.0.0/20" as a key segment: "198.18.0.0-20" (IPv6's colons are fine in a key).
std::string segment(const IpPrefix& p) {
  std::string s = p.str();
  for (char& c : s)
    if (c == '/') c = '-';
  return s;
}

std::string hostKey(const ClusterSpec& spec, const std::string& host) {
  std::string k = spec.prefix;
  k.append("/hosts/").append(host);
  return k;
}

}  // namespace

Status validateClusterSpec(const ClusterSpec& spec) {
  const std::string& p = spec.prefix;
  if (p.empty() || p[0] != '/' || p.back() == '/')
    return fail(Errc::kInvalid,
                "etcd prefix '" + p + "' must start with '/' and not end with one (\"/plumb\")");
  for (size_t start = 1; start <= p.size();) {
    size_t slash = p.find('/', start);
    std::string seg =
        p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!segmentOk(seg))
      return fail(Errc::kInvalid, "etcd prefix '" + p + "': segment '" + seg +
                                      "' is not letters, digits, '-', '_' and '.' (nor . or ..)");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (!segmentOk(spec.host))
    return fail(Errc::kInvalid, "host name '" + spec.host +
                                    "' is not letters, digits, '-', '_' and '.' (set PLUMB_HOST)");
  if (spec.lease_ttl_s < 2 || spec.lease_ttl_s > 3600)
    return fail(Errc::kInvalid, "a lease TTL of " + std::to_string(spec.lease_ttl_s) +
                                    " s is out of range (2-3600)");
  return {};
}

HostLease::HostLease(etcd::Kv& kv, ClusterSpec spec, Clock clock)
    : kv_(kv), spec_(std::move(spec)), clock_(std::move(clock)) {}

Result<int64_t> HostLease::current(bool* lapsed) {
  if (lapsed) *lapsed = false;
  auto now = clock_();
  auto half = std::chrono::milliseconds(spec_.lease_ttl_s * 500);
  if (id_ != 0 && now - renewed_ < half) return id_;
  if (id_ != 0) {
    auto ttl = kv_.keepAlive(id_);
    if (ttl.ok()) {
      renewed_ = now;
      return id_;
    }
    if (ttl.error().code != Errc::kNotFound) {
      auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - renewed_).count();
      return fail(ttl.error().code,
                  "host " + spec_.host + " hands out no address: its etcd lease (renewed " +
                      std::to_string(ago) + " s ago, TTL " + std::to_string(spec_.lease_ttl_s) +
                      " s) cannot be renewed: " + ttl.error().message);
    }
    if (lapsed) *lapsed = true;  // expired: a new one, and the host's blocks move to it
  }
  auto lease = kv_.grant(spec_.lease_ttl_s);
  if (!lease.ok())
    return std::move(lease).error().wrap("host " + spec_.host +
                                         " hands out no address: no etcd lease");
  json v = {{"lease", lease->id}};
  auto put = kv_.put(hostKey(spec_, spec_.host), v.dump(), lease->id);
  if (!put.ok()) return std::move(put).error().wrap("failed to register host " + spec_.host);
  id_ = lease->id;
  renewed_ = now;
  return id_;
}

BlockClaims::BlockClaims(etcd::Kv& kv, ClusterSpec spec, IpPrefix subnet, int block_len)
    : kv_(kv), spec_(std::move(spec)), subnet_(subnet.network()), block_len_(block_len) {
  dir_ = spec_.prefix;
  dir_.append("/ipam/").append(segment(subnet_)).append("/blocks/");
}

Status BlockClaims::validate(const IpPrefix& subnet, int block_len) {
  int max = subnet.isV4() ? 30 : 126;
  if (block_len < subnet.len() || block_len > max)
    return fail(Errc::kInvalid, "blockSize " + std::to_string(block_len) + " does not fit " +
                                    subnet.network().str() + " (from " +
                                    std::to_string(subnet.len()) + " to " + std::to_string(max) +
                                    ")");
  if (block_len - subnet.len() > 20)
    return fail(Errc::kInvalid, "blockSize " + std::to_string(block_len) + " cuts " +
                                    subnet.network().str() + " into over a million blocks");
  return {};
}

std::string BlockClaims::key(const IpPrefix& block) const { return dir_ + segment(block); }

std::string BlockClaims::value(int64_t lease, bool used) const {
  return json{{"host", spec_.host}, {"lease", lease}, {"state", used ? "used" : "claimed"}}.dump();
}

Result<BlockRecord> readBlockClaim(const std::string& dir, const etcd::KeyValue& kv) {
  if (kv.key.compare(0, dir.size(), dir) != 0)
    return fail(Errc::kDecode, "block key " + kv.key + " is outside " + dir);
  std::string seg = kv.key.substr(dir.size());
  auto dash = seg.rfind('-');
  if (dash == std::string::npos)
    return fail(Errc::kDecode, "block key " + kv.key + " is malformed");
  seg[dash] = '/';
  auto block = IpPrefix::parse(seg);
  if (!block.ok()) return fail(Errc::kDecode, "block key " + kv.key + " is malformed");
  PLUMB_ASSIGN(json v, json_read::parse(kv.value));
  BlockRecord r;
  r.block = *block;
  r.mod_revision = kv.mod_revision;
  if (!v.is_object()) return fail(Errc::kDecode, "block " + kv.key + " holds no JSON object");
  PLUMB_TRY(json_read::str(v, "host", r.host));
  r.lease = json_read::valueOr(v, "lease", int64_t{0});
  r.used = json_read::valueOr(v, "state", std::string()) == "used";
  return r;
}

Result<std::vector<BlockRecord>> BlockClaims::list() {
  PLUMB_ASSIGN(auto range, kv_.range(dir_, etcd::prefixEnd(dir_)));
  std::vector<BlockRecord> out;
  for (const auto& kv : range.kvs) {
    PLUMB_ASSIGN(auto r, read(kv));
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const BlockRecord& a, const BlockRecord& b) {
    return a.block.addr() < b.block.addr();
  });
  return out;
}

Result<std::vector<IpPrefix>> BlockClaims::mine() {
  PLUMB_ASSIGN(auto all, list());
  std::vector<IpPrefix> out;
  for (const auto& r : all)
    if (r.host == spec_.host) out.push_back(r.block);
  return out;
}

Result<bool> BlockClaims::leaseAlive(const std::string& host, int64_t lease) {
  PLUMB_ASSIGN(auto r, kv_.range(hostKey(spec_, host)));
  return !r.kvs.empty() && r.kvs[0].lease == lease;
}

Result<bool> BlockClaims::tryClaim(const IpPrefix& block, const BlockRecord* held, int64_t lease,
                                   bool used) {
  std::string k = key(block);
  etcd::Compare guard = etcd::Compare::absent(k);
  if (held) {
    // Another host's (or an earlier life of this one's) block that never held an address,
    // whose owner's lease is gone: free again. One that held an address is not, ever.
    if (held->used) return false;
    PLUMB_ASSIGN(bool alive, leaseAlive(held->host, held->lease));
    if (alive) return false;
    guard = etcd::Compare::unchangedSince(k, held->mod_revision);
  }
  PLUMB_ASSIGN(auto t, kv_.txn({guard}, {etcd::TxnOp::put(k, value(lease, used))}));
  if (t.succeeded) return true;
  // Not succeeded: another host took it between the read and the claim, or this very claim
  // went through on a member that died before it answered, and the client asked again on
  // another, whose guard then failed on the claim itself. The block is then this host's under
  // this lease: ours (the host's claims are serialised by its claim lock, so no other claim of
  // this host's can have made it).
  PLUMB_ASSIGN(auto now, kv_.range(k));
  if (now.kvs.empty()) return false;
  auto rec = read(now.kvs[0]);
  return rec.ok() && rec->host == spec_.host && rec->lease == lease;
}

Result<IpPrefix> BlockClaims::claim(int64_t lease, bool used) {
  PLUMB_ASSIGN(auto held, list());
  std::map<IpAddr, BlockRecord> by_addr;
  for (auto& r : held) by_addr.emplace(r.block.addr(), std::move(r));
  unsigned __int128 count = static_cast<unsigned __int128>(1) << (block_len_ - subnet_.len());
  unsigned __int128 size = static_cast<unsigned __int128>(1)
                           << ((subnet_.isV4() ? 32 : 128) - block_len_);
  for (unsigned __int128 i = 0; i < count; ++i) {
    IpPrefix block(IpAddr::fromNumber(!subnet_.isV4(), subnet_.addr().number() + i * size),
                   block_len_);
    auto it = by_addr.find(block.addr());
    PLUMB_ASSIGN(bool took,
                 tryClaim(block, it == by_addr.end() ? nullptr : &it->second, lease, used));
    if (took) return block;
  }
  return fail(Errc::kExhausted,
              "no free block of /" + std::to_string(block_len_) + " is left in " + subnet_.str() +
                  " (" + std::to_string(static_cast<long long>(count)) + " blocks, all held)");
}

Result<IpPrefix> BlockClaims::claimHolding(int64_t lease, const IpAddr& addr, bool used) {
  if (!subnet_.contains(addr))
    return fail(Errc::kInvalid, addr.str() + " is outside " + subnet_.str());
  IpPrefix block = IpPrefix(addr, block_len_).network();
  PLUMB_ASSIGN(auto r, kv_.range(key(block)));
  std::optional<BlockRecord> held;
  if (!r.kvs.empty()) {
    PLUMB_ASSIGN(held, read(r.kvs[0]));
    if (held->host == spec_.host) return block;
  }
  PLUMB_ASSIGN(bool took, tryClaim(block, held ? &*held : nullptr, lease, used));
  if (took) return block;
  return fail(Errc::kExists, "block " + block.str() + " holding " + addr.str() +
                                 " is held by host " + (held ? held->host : "another host"));
}

Result<BlockRecord> BlockClaims::owned(const IpPrefix& block) {
  PLUMB_ASSIGN(auto r, kv_.range(key(block)));
  if (r.kvs.empty()) return fail(Errc::kNotFound, "block " + block.str() + " is not claimed");
  PLUMB_ASSIGN(auto rec, read(r.kvs[0]));
  if (rec.host != spec_.host)
    return fail(Errc::kNotFound, "block " + block.str() + " is held by " + rec.host);
  return rec;
}

Status BlockClaims::change(const BlockRecord& rec, const etcd::TxnOp& op) {
  PLUMB_ASSIGN(auto t,
               kv_.txn({etcd::Compare::unchangedSince(key(rec.block), rec.mod_revision)}, {op}));
  if (!t.succeeded) return fail(Errc::kTryAgain, "block " + rec.block.str() + " changed meanwhile");
  return {};
}

Status BlockClaims::markUsed(const IpPrefix& block) {
  PLUMB_ASSIGN(auto rec, owned(block));
  if (rec.used) return {};
  return change(rec, etcd::TxnOp::put(key(block), value(rec.lease, true)));
}

Status BlockClaims::release(const IpPrefix& block) {
  PLUMB_ASSIGN(auto rec, owned(block));
  return change(rec, etcd::TxnOp::del(key(block)));
}

Status BlockClaims::rebind(int64_t lease) {
  PLUMB_ASSIGN(auto all, list());
  for (const auto& r : all) {
    if (r.host != spec_.host || r.lease == lease) continue;
    std::string k = key(r.block);
    PLUMB_ASSIGN(auto t, kv_.txn({etcd::Compare::unchangedSince(k, r.mod_revision)},
                                 {etcd::TxnOp::put(k, value(lease, r.used))}));
    if (!t.succeeded) continue;  // reclaimed meanwhile (it never held an address): not ours
  }
  return {};
}

}  // namespace plumb::core
