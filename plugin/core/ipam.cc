#include "plugin/core/ipam.h"

#include <cstring>

namespace plumb::core {
namespace {

// 16-byte big-endian numbers: SQLite compares BLOBs with memcmp, so they sort as addresses.
std::string key(const IpAddr& a) {
  std::string k(16, '\0');
  std::memcpy(k.data() + (16 - a.size()), a.data(), a.size());
  return k;
}

IpAddr fromKey(const std::string& k, bool v6) {
  unsigned __int128 n = 0;
  for (unsigned char c : k) n = (n << 8) | c;
  return IpAddr::fromNumber(v6, n);
}

std::string subnetKey(const IpPrefix& p) { return p.network().str(); }

struct Span {
  IpAddr lo, hi;
};

// Creates the subnet's free space on first use.
Status ensureSubnet(Db& db, const IpPrefix& subnet) {
  PLUMB_ASSIGN(auto ins, db.prepare("INSERT OR IGNORE INTO ip_subnets VALUES(?)"));
  ins.bind(1, subnetKey(subnet));
  PLUMB_TRY(ins.run());
  if (sqlite3_changes(db.handle()) == 0) return {};
  IpRange whole{subnet, std::nullopt, std::nullopt, std::nullopt};
  PLUMB_ASSIGN(auto span, db.prepare("INSERT INTO ip_free VALUES(?,?,?)"));
  span.bind(1, subnetKey(subnet))
      .bindBlob(2, key(whole.firstUsable()))
      .bindBlob(3, key(whole.lastUsable()));
  return span.run();
}

// The free span holding addr, if any.
Result<std::optional<Span>> spanHolding(Db& db, const std::string& sk, const IpAddr& addr) {
  PLUMB_ASSIGN(
      auto q,
      db.prepare("SELECT lo, hi FROM ip_free WHERE subnet=? AND lo<=? ORDER BY lo DESC LIMIT 1"));
  q.bind(1, sk).bindBlob(2, key(addr));
  PLUMB_ASSIGN(bool row, q.step());
  if (!row) return std::optional<Span>();
  Span s{fromKey(q.blob(0), addr.isV6()), fromKey(q.blob(1), addr.isV6())};
  if (s.hi < addr) return std::optional<Span>();
  return std::optional<Span>(s);
}

// The first free span starting after addr.
Result<std::optional<Span>> spanAfter(Db& db, const std::string& sk, const IpAddr& addr) {
  PLUMB_ASSIGN(
      auto q, db.prepare("SELECT lo, hi FROM ip_free WHERE subnet=? AND lo>? ORDER BY lo LIMIT 1"));
  q.bind(1, sk).bindBlob(2, key(addr));
  PLUMB_ASSIGN(bool row, q.step());
  if (!row) return std::optional<Span>();
  return std::optional<Span>(
      Span{fromKey(q.blob(0), addr.isV6()), fromKey(q.blob(1), addr.isV6())});
}

// Removes addr from span s (which holds it), splitting it.
Status takeFrom(Db& db, const std::string& sk, const Span& s, const IpAddr& addr) {
  PLUMB_ASSIGN(auto del, db.prepare("DELETE FROM ip_free WHERE subnet=? AND lo=?"));
  del.bind(1, sk).bindBlob(2, key(s.lo));
  PLUMB_TRY(del.run());
  PLUMB_ASSIGN(auto ins, db.prepare("INSERT INTO ip_free VALUES(?,?,?)"));
  if (s.lo < addr) {
    ins.bind(1, sk).bindBlob(2, key(s.lo)).bindBlob(3, key(addr.plus(-1)));
    PLUMB_TRY(ins.run());
  }
  if (addr < s.hi) {
    PLUMB_ASSIGN(auto ins2, db.prepare("INSERT INTO ip_free VALUES(?,?,?)"));
    ins2.bind(1, sk).bindBlob(2, key(addr.plus(1))).bindBlob(3, key(s.hi));
    PLUMB_TRY(ins2.run());
  }
  return {};
}

Status recordAlloc(Db& db, const IpPrefix& subnet, const IpAddr& addr,
                   const std::optional<IpAddr>& gw, const AttachmentKey& owner) {
  PLUMB_ASSIGN(auto q, db.prepare("INSERT INTO ip_allocs VALUES(?,?,?,?,?,?,?,?)"));
  q.bind(1, subnetKey(subnet))
      .bindBlob(2, key(addr))
      .bind(3, addr.str())
      .bind(4, static_cast<long long>(subnet.len()));
  q.bind(5, gw ? gw->str() : "")
      .bind(6, owner.network)
      .bind(7, owner.container_id)
      .bind(8, owner.ifname);
  return q.run();
}

// Whether addr is allocated in any subnet: subnets may overlap (198.18.60.0/24 and
// 198.18.60.0/25, two networks or two ranges of one), and an address is one address whichever
// subnet's free space it was taken from.
Result<bool> allocatedAnywhere(Db& db, const IpAddr& addr) {
  // The text as well as the key: an IPv4 address and the IPv6 one that ends in its four bytes
  // (::c612:5 and 198.18.0.5) share a 16-byte key.
  PLUMB_ASSIGN(auto q, db.prepare("SELECT 1 FROM ip_allocs WHERE ip=? AND addr=? LIMIT 1"));
  q.bindBlob(1, key(addr)).bind(2, addr.str());
  return q.step();
}

// Whether addr was ever given back in this store: a neighbour may still hold it with the MAC
// of whoever had it.
Result<bool> releasedBefore(Db& db, const IpAddr& addr) {
  PLUMB_ASSIGN(auto q, db.prepare("SELECT 1 FROM ip_released WHERE ip=? AND addr=?"));
  q.bindBlob(1, key(addr)).bind(2, addr.str());
  return q.step();
}

Status rememberReleased(Db& db, const IpAddr& addr) {
  PLUMB_ASSIGN(auto q, db.prepare("INSERT OR IGNORE INTO ip_released VALUES(?,?)"));
  q.bindBlob(1, key(addr)).bind(2, addr.str());
  return q.run();
}

// Takes addr if free. false: already taken.
Result<bool> takeSpecific(Db& db, const IpPrefix& subnet, const IpAddr& addr) {
  PLUMB_ASSIGN(bool elsewhere, allocatedAnywhere(db, addr));
  if (elsewhere) return false;
  std::string sk = subnetKey(subnet);
  PLUMB_ASSIGN(auto s, spanHolding(db, sk, addr));
  if (!s) return false;
  PLUMB_TRY(takeFrom(db, sk, *s, addr));
  return true;
}

// Next free address of the range, round-robin from the range's cursor (as host-local).
Result<std::optional<IpAddr>> takeNext(Db& db, const IpRange& r) {
  std::string sk = subnetKey(r.subnet);
  std::string range_key = r.start->str() + "-" + r.end->str();
  IpAddr from = *r.start;
  PLUMB_ASSIGN(auto cur, db.prepare("SELECT last FROM ip_cursor WHERE subnet=? AND range_key=?"));
  cur.bind(1, sk).bind(2, range_key);
  PLUMB_ASSIGN(bool has_cursor, cur.step());
  if (has_cursor) {
    IpAddr last = fromKey(cur.blob(0), r.subnet.addr().isV6());
    if (last >= *r.start && last < *r.end) from = last.plus(1);
  }
  auto findFrom = [&](const IpAddr& start,
                      const IpAddr& limit) -> Result<std::optional<std::pair<Span, IpAddr>>> {
    using Found = std::optional<std::pair<Span, IpAddr>>;
    // The next address free in this subnet that no overlapping subnet has handed out.
    for (IpAddr at = start;;) {
      std::optional<Span> span;
      PLUMB_ASSIGN(span, spanHolding(db, sk, at));
      if (!span) {
        PLUMB_ASSIGN(span, spanAfter(db, sk, at));
        if (!span || limit < span->lo) return Found();
        at = span->lo;
      }
      for (;; at = at.plus(1)) {
        if (limit < at) return Found();
        PLUMB_ASSIGN(bool elsewhere, allocatedAnywhere(db, at));
        if (!elsewhere) return Found({*span, at});
        if (at == span->hi) break;
      }
      if (at == limit) return Found();
      at = at.plus(1);
    }
  };
  PLUMB_ASSIGN(auto found, findFrom(from, *r.end));
  if (!found && from != *r.start) {
    PLUMB_ASSIGN(found, findFrom(*r.start, from.plus(-1)));
  }
  // The gateway is never handed out (host-local's rule); it is not an allocation either.
  if (found && r.gateway && found->second == *r.gateway) {
    const IpAddr gw = *r.gateway;
    found.reset();
    if (gw < *r.end) PLUMB_ASSIGN(found, findFrom(gw.plus(1), *r.end));
    if (!found && *r.start < gw) PLUMB_ASSIGN(found, findFrom(*r.start, gw.plus(-1)));
  }
  if (!found) return std::optional<IpAddr>();
  auto [span, addr] = *found;
  PLUMB_TRY(takeFrom(db, sk, span, addr));
  PLUMB_ASSIGN(auto upd, db.prepare("INSERT OR REPLACE INTO ip_cursor VALUES(?,?,?)"));
  upd.bind(1, sk).bind(2, range_key).bindBlob(3, key(addr));
  PLUMB_TRY(upd.run());
  return std::optional<IpAddr>(addr);
}

// Returns addr to the free space, merging with its neighbours.
Status giveBack(Db& db, const std::string& sk, const IpAddr& addr) {
  IpAddr lo = addr, hi = addr;
  PLUMB_ASSIGN(auto holding, spanHolding(db, sk, addr));
  if (holding) return {};  // already free
  PLUMB_ASSIGN(
      auto left,
      db.prepare("SELECT lo, hi FROM ip_free WHERE subnet=? AND lo<? ORDER BY lo DESC LIMIT 1"));
  left.bind(1, sk).bindBlob(2, key(addr));
  PLUMB_ASSIGN(bool has_left, left.step());
  if (has_left) {
    IpAddr l_hi = fromKey(left.blob(1), addr.isV6());
    if (l_hi >= addr) return {};  // already free
    if (l_hi.plus(1) == addr) lo = fromKey(left.blob(0), addr.isV6());
  }
  PLUMB_ASSIGN(auto right, db.prepare("SELECT lo, hi FROM ip_free WHERE subnet=? AND lo=?"));
  right.bind(1, sk).bindBlob(2, key(addr.plus(1)));
  PLUMB_ASSIGN(bool has_right, right.step());
  if (has_right && addr.plus(1) > addr) hi = fromKey(right.blob(1), addr.isV6());
  PLUMB_ASSIGN(auto del, db.prepare("DELETE FROM ip_free WHERE subnet=? AND (lo=? OR lo=?)"));
  del.bind(1, sk).bindBlob(2, key(lo)).bindBlob(3, key(addr.plus(1)));
  PLUMB_TRY(del.run());
  PLUMB_ASSIGN(auto ins, db.prepare("INSERT INTO ip_free VALUES(?,?,?)"));
  ins.bind(1, sk).bindBlob(2, key(lo)).bindBlob(3, key(hi));
  return ins.run();
}

// A subnet none of whose addresses is held any more is forgotten (its free space is whole
// again; ensureSubnet makes it anew on next use), so that what was taken and given back
// leaves the store as it was. Its round-robin cursor stays: a released address is not handed
// out again at once.
Status forgetIfUnused(Db& db, const std::string& sk) {
  PLUMB_ASSIGN(auto held, db.prepare("SELECT 1 FROM ip_allocs WHERE subnet=? LIMIT 1"));
  held.bind(1, sk);
  PLUMB_ASSIGN(bool any, held.step());
  if (any) return {};
  PLUMB_ASSIGN(auto spans, db.prepare("DELETE FROM ip_free WHERE subnet=?"));
  spans.bind(1, sk);
  PLUMB_TRY(spans.run());
  PLUMB_ASSIGN(auto subnet, db.prepare("DELETE FROM ip_subnets WHERE subnet=?"));
  subnet.bind(1, sk);
  return subnet.run();
}

Result<std::vector<Allocation>> ownedBy(Db& db, const AttachmentKey& owner) {
  std::vector<Allocation> out;
  // IPv4 keys sort before IPv6 ones: results list IPv4 first, as range sets usually do.
  PLUMB_ASSIGN(
      auto q2,
      db.prepare("SELECT addr, prefix, gateway FROM ip_allocs WHERE network=? AND container_id=? "
                 "AND ifname=? ORDER BY ip"));
  q2.bind(1, owner.network).bind(2, owner.container_id).bind(3, owner.ifname);
  for (;;) {
    PLUMB_ASSIGN(bool row, q2.step());
    if (!row) break;
    PLUMB_ASSIGN(auto addr, IpAddr::parse(q2.text(0)));
    Allocation a{IpPrefix(addr, static_cast<int>(q2.integer(1))), std::nullopt};
    if (!q2.text(2).empty()) {
      auto gw = IpAddr::parse(q2.text(2));
      if (gw.ok()) a.gateway = *gw;
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace

IpAddr IpRange::firstUsable() const {
  IpPrefix net = subnet.network();
  if (net.isV4() && net.len() >= 31) return net.addr();
  return net.addr().plus(1);
}

IpAddr IpRange::lastUsable() const {
  IpAddr last = subnet.last();
  if (subnet.isV4() && subnet.len() < 31) return last.plus(-1);
  return last;
}

std::string IpRange::describe() const {
  return (start ? start->str() : firstUsable().str()) + "-" +
         (end ? end->str() : lastUsable().str()) + " of " + subnet.network().str();
}

Status IpRange::normalise() {
  subnet = subnet.network();
  int bits = subnet.isV4() ? 32 : 128;
  if (subnet.len() == 0) {
    return fail(Errc::kInvalid, "subnet " + subnet.str() +
                                    " is every address there is; give the network's own subnet");
  }
  if (subnet.len() == bits) {
    return fail(Errc::kInvalid, "subnet " + subnet.str() +
                                    " holds one address: no room for a container and a gateway");
  }
  if (!start) start = firstUsable();
  if (!end) end = lastUsable();
  auto inside = [&](const IpAddr& a, const char* what) -> Status {
    if (!subnet.contains(a)) {
      return fail(Errc::kInvalid,
                  std::string(what) + " " + a.str() + " is outside subnet " + subnet.str());
    }
    return {};
  };
  PLUMB_TRY(inside(*start, "rangeStart"));
  PLUMB_TRY(inside(*end, "rangeEnd"));
  if (*end < *start)
    return fail(Errc::kInvalid, "rangeEnd " + end->str() + " is before rangeStart " + start->str());
  if (gateway) {
    PLUMB_TRY(inside(*gateway, "gateway"));
    // On the bridge, the network or broadcast address would make the kernel answer for the
    // whole subnet.
    if (subnet.isV4() && subnet.len() < 31 &&
        (*gateway == subnet.addr() || *gateway == subnet.last())) {
      return fail(Errc::kInvalid, "gateway " + gateway->str() + " is the " +
                                      (*gateway == subnet.addr() ? "network" : "broadcast") +
                                      " address of " + subnet.str());
    }
  }
  return {};
}

Result<std::vector<Allocation>> Ipam::allocate(const IpamRequest& req) {
  std::vector<Allocation> out;
  PLUMB_TRY(store_.write([&](Db& db) -> Status {
    out.clear();
    PLUMB_ASSIGN(out, ownedBy(db, req.owner));
    if (!out.empty()) return {};
    std::vector<bool> used(req.requested.size(), false);
    for (const auto& set : req.range_sets) {
      std::optional<Allocation> got;
      // A requested address picks its range set.
      for (size_t i = 0; i < req.requested.size() && !got; ++i) {
        if (used[i]) continue;
        const IpAddr& want = req.requested[i];
        // The set's range that holds it; a set may have several ranges in one subnet.
        const IpRange* holder = nullptr;
        const IpRange* same_subnet = nullptr;
        for (const auto& r : set) {
          if (!r.subnet.contains(want)) continue;
          same_subnet = &r;
          if (want >= *r.start && want <= *r.end) holder = &r;
        }
        if (!holder && same_subnet) {
          return fail(Errc::kInvalid, "requested address " + want.str() + " is outside range " +
                                          same_subnet->describe());
        }
        if (holder) {
          const IpRange& r = *holder;
          if (r.gateway && want == *r.gateway) {
            return fail(Errc::kInvalid, "requested address " + want.str() + " is the gateway");
          }
          used[i] = true;
          PLUMB_TRY(ensureSubnet(db, r.subnet));
          PLUMB_ASSIGN(bool took, takeSpecific(db, r.subnet, want));
          if (!took)
            return fail(Errc::kExists, "requested address " + want.str() + " is already in use");
          PLUMB_ASSIGN(bool reused, releasedBefore(db, want));
          got = Allocation{IpPrefix(want, r.subnet.len()), r.gateway, !reused};
          PLUMB_TRY(recordAlloc(db, r.subnet, want, r.gateway, req.owner));
        }
      }
      if (got) {
        out.push_back(*got);
        continue;
      }
      for (const auto& r : set) {
        PLUMB_TRY(ensureSubnet(db, r.subnet));
        PLUMB_ASSIGN(auto addr, takeNext(db, r));
        if (!addr) continue;
        PLUMB_ASSIGN(bool reused, releasedBefore(db, *addr));
        got = Allocation{IpPrefix(*addr, r.subnet.len()), r.gateway, !reused};
        PLUMB_TRY(recordAlloc(db, r.subnet, *addr, r.gateway, req.owner));
        break;
      }
      if (!got) {
        std::string ranges;
        for (const auto& r : set) ranges += (ranges.empty() ? "" : ", ") + r.describe();
        return fail(Errc::kExhausted, "no free address in range " + ranges);
      }
      out.push_back(*got);
    }
    for (size_t i = 0; i < req.requested.size(); ++i) {
      if (!used[i])
        return fail(Errc::kInvalid,
                    "requested address " + req.requested[i].str() + " fits no configured range");
    }
    return {};
  }));
  return out;
}

Status Ipam::release(const AttachmentKey& owner) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT subnet, ip, addr FROM ip_allocs WHERE network=? AND "
                                    "container_id=? AND ifname=?"));
    q.bind(1, owner.network).bind(2, owner.container_id).bind(3, owner.ifname);
    std::vector<std::pair<std::string, IpAddr>> held;
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      PLUMB_ASSIGN(auto a, IpAddr::parse(q.text(2)));
      held.emplace_back(q.text(0), a);
    }
    for (const auto& [sk, a] : held) {
      PLUMB_TRY(giveBack(db, sk, a));
      PLUMB_TRY(rememberReleased(db, a));
    }
    PLUMB_ASSIGN(
        auto del,
        db.prepare("DELETE FROM ip_allocs WHERE network=? AND container_id=? AND ifname=?"));
    del.bind(1, owner.network).bind(2, owner.container_id).bind(3, owner.ifname);
    PLUMB_TRY(del.run());
    for (const auto& [sk, a] : held) PLUMB_TRY(forgetIfUnused(db, sk));
    return {};
  });
}

Result<std::vector<Allocation>> Ipam::lookup(const AttachmentKey& owner) {
  std::vector<Allocation> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(out, ownedBy(db, owner));
    return {};
  }));
  return out;
}

Status Ipam::reserve(const IpPrefix& subnet, const IpAddr& addr, const AttachmentKey& owner,
                     const std::optional<IpAddr>& gateway) {
  if (!subnet.contains(addr))
    return fail(Errc::kInvalid, addr.str() + " is outside subnet " + subnet.str());
  return store_.write([&](Db& db) -> Status {
    PLUMB_TRY(ensureSubnet(db, subnet));
    PLUMB_ASSIGN(bool took, takeSpecific(db, subnet, addr));
    if (!took) return fail(Errc::kExists, "address " + addr.str() + " is already in use");
    return recordAlloc(db, subnet, addr, gateway, owner);
  });
}

Status Ipam::releaseAddress(const IpPrefix& subnet, const IpAddr& addr) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto del, db.prepare("DELETE FROM ip_allocs WHERE subnet=? AND ip=?"));
    del.bind(1, subnetKey(subnet)).bindBlob(2, key(addr));
    PLUMB_TRY(del.run());
    if (sqlite3_changes(db.handle()) == 0) return {};
    PLUMB_TRY(giveBack(db, subnetKey(subnet), addr));
    PLUMB_TRY(rememberReleased(db, addr));
    return forgetIfUnused(db, subnetKey(subnet));
  });
}

Result<long long> Ipam::countHeld(const IpPrefix& subnet, const IpAddr& lo, const IpAddr& hi) {
  long long n = 0;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT COUNT(*) FROM ip_allocs WHERE subnet=? AND ip>=? AND "
                                    "ip<=?"));
    q.bind(1, subnetKey(subnet)).bindBlob(2, key(lo)).bindBlob(3, key(hi));
    PLUMB_ASSIGN(bool row, q.step());
    n = row ? q.integer(0) : 0;
    return {};
  }));
  return n;
}

Result<std::vector<AttachmentKey>> Ipam::owners(const std::string& network) {
  std::vector<AttachmentKey> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(
        auto q,
        db.prepare("SELECT DISTINCT network, container_id, ifname FROM ip_allocs WHERE network=?"));
    q.bind(1, network);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      out.push_back({q.text(0), q.text(1), q.text(2)});
    }
    return {};
  }));
  return out;
}

Result<std::vector<std::pair<AttachmentKey, std::string>>> Ipam::held() {
  std::vector<std::pair<AttachmentKey, std::string>> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT network, container_id, ifname, addr FROM ip_allocs "
                                    "ORDER BY network, container_id, ifname"));
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      out.push_back({{q.text(0), q.text(1), q.text(2)}, q.text(3)});
    }
    return {};
  }));
  return out;
}

namespace {

Result<Pool> readPool(const Stmt& q) {
  PLUMB_ASSIGN(auto subnet, IpPrefix::parse(q.text(1)));
  return Pool{q.text(0), subnet, q.text(2), q.text(3)};
}

Result<std::vector<Pool>> allPools(Db& db) {
  std::vector<Pool> out;
  PLUMB_ASSIGN(auto q, db.prepare("SELECT id, subnet, frontend, config FROM ip_pools ORDER BY id"));
  for (;;) {
    PLUMB_ASSIGN(bool row, q.step());
    if (!row) break;
    PLUMB_ASSIGN(auto p, readPool(q));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

Status Ipam::addPool(const Pool& pool) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto pools, allPools(db));
    for (const auto& p : pools) {
      if (p.id == pool.id) return fail(Errc::kExists, "pool " + pool.id + " already exists");
      if (p.subnet.overlaps(pool.subnet)) {
        return fail(Errc::kExists, "subnet " + pool.subnet.str() + " overlaps pool " + p.id);
      }
    }
    PLUMB_ASSIGN(auto q, db.prepare("INSERT INTO ip_pools VALUES(?,?,?,?)"));
    q.bind(1, pool.id).bind(2, pool.subnet.network().str()).bind(3, pool.frontend);
    q.bind(4, pool.config);
    PLUMB_TRY(q.run());
    return ensureSubnet(db, pool.subnet);
  });
}

Result<std::optional<Pool>> Ipam::findPool(const std::string& id) {
  std::optional<Pool> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q,
                 db.prepare("SELECT id, subnet, frontend, config FROM ip_pools WHERE id=?"));
    q.bind(1, id);
    PLUMB_ASSIGN(bool row, q.step());
    if (!row) return {};
    PLUMB_ASSIGN(auto p, readPool(q));
    out = std::move(p);
    return {};
  }));
  return out;
}

Result<std::vector<Pool>> Ipam::listPools() {
  std::vector<Pool> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(out, allPools(db));
    return {};
  }));
  return out;
}

Status Ipam::updatePoolConfig(const std::string& id, const std::string& config) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("UPDATE ip_pools SET config=? WHERE id=?"));
    q.bind(1, config).bind(2, id);
    PLUMB_TRY(q.run());
    if (sqlite3_changes(db.handle()) == 0)
      return fail(Errc::kNotFound, "pool " + id + " is unknown");
    return {};
  });
}

Status Ipam::removePool(const std::string& id) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("DELETE FROM ip_pools WHERE id=?"));
    q.bind(1, id);
    return q.run();
  });
}

std::string IpamAddresses::describe() const {
  std::string out;
  for (const auto& set : req_.range_sets) {
    for (const auto& r : set) out += (out.empty() ? "" : ", ") + r.subnet.str();
  }
  return "allocate addresses in " + out;
}

Result<Addressing> IpamAddresses::allocate() {
  PLUMB_ASSIGN(auto got, Ipam(store_).allocate(req_));
  Addressing out;
  for (const auto& a : got) out.addresses.push_back({a.address, a.gateway, a.fresh});
  out.routes = routes_;
  return out;
}

Status IpamAddresses::release() { return Ipam(store_).release(req_.owner); }

}  // namespace plumb::core
