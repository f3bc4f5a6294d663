#include "plugin/core/vf_claims.h"

#include <fcntl.h>
#include <sys/file.h>

#include <filesystem>

namespace plumb::core {

namespace {

constexpr const char* kColumns = "id, pci, pf, vf, network, container_id, ifname, original";

VfClaim claimOf(const Stmt& q) {
  VfClaim c;
  c.id = q.integer(0);
  c.pci = q.text(1);
  c.pf = q.text(2);
  c.vf = static_cast<int>(q.integer(3));
  c.owner = {q.text(4), q.text(5), q.text(6)};
  c.original = q.text(7);
  return c;
}

Result<std::optional<VfClaim>> findIn(Db& db, const std::string& pci) {
  PLUMB_ASSIGN(
      auto q,
      db.prepare((std::string("SELECT ") + kColumns + " FROM vf_claims WHERE pci=?").c_str()));
  q.bind(1, pci);
  PLUMB_ASSIGN(bool row, q.step());
  if (!row) return std::optional<VfClaim>();
  return std::optional<VfClaim>(claimOf(q));
}

Result<long long> insert(Db& db, const VfClaim& c, const std::string& original) {
  PLUMB_ASSIGN(auto q, db.prepare("INSERT INTO vf_claims(pci, pf, vf, network, container_id, "
                                  "ifname, original) VALUES(?,?,?,?,?,?,?)"));
  q.bind(1, c.pci).bind(2, c.pf).bind(3, static_cast<long long>(c.vf)).bind(4, c.owner.network);
  q.bind(5, c.owner.container_id).bind(6, c.owner.ifname).bind(7, original);
  PLUMB_TRY(q.run());
  return static_cast<long long>(sqlite3_last_insert_rowid(db.handle()));
}

}  // namespace

Result<UniqueFd> VfClaims::lock(const std::string& pci) {
  std::string path =
      (std::filesystem::path(store_.path()).parent_path() / ("vf-" + pci + ".lock")).string();
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return failErrno(errno, "failed to lock VF " + pci + " (" + path + ")");
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return failErrno(errno, "failed to lock VF " + pci);
  }
  return fd;
}

Result<VfClaim> VfClaims::claim(const VfClaim& want, long long takeover) {
  VfClaim out = want;
  PLUMB_TRY(store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto held, findIn(db, want.pci));
    out.original.clear();
    if (held) {
      if (held->id != takeover) {
        return fail(Errc::kExists,
                    "VF " + want.pci + " is held by attachment " + held->owner.str());
      }
      out.original = held->original;
      PLUMB_ASSIGN(auto del, db.prepare("DELETE FROM vf_claims WHERE id=?"));
      del.bind(1, held->id);
      PLUMB_TRY(del.run());
    }
    PLUMB_ASSIGN(out.id, insert(db, want, out.original));
    return {};
  }));
  return out;
}

Result<VfClaim> VfClaims::claimFree(const VfClaim& want,
                                    const std::vector<std::pair<int, std::string>>& candidates) {
  VfClaim out = want;
  out.original.clear();
  PLUMB_TRY(store_.write([&](Db& db) -> Status {
    for (const auto& [index, pci] : candidates) {
      PLUMB_ASSIGN(auto held, findIn(db, pci));
      if (held) continue;
      out.vf = index;
      out.pci = pci;
      PLUMB_ASSIGN(out.id, insert(db, out, ""));
      return {};
    }
    return fail(Errc::kExhausted, "no free VF on PF " + want.pf + " (" +
                                      std::to_string(candidates.size()) +
                                      " usable, every one held by an attachment)");
  }));
  return out;
}

Result<std::optional<VfClaim>> VfClaims::find(const std::string& pci) {
  std::optional<VfClaim> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(out, findIn(db, pci));
    return {};
  }));
  return out;
}

Result<std::optional<VfClaim>> VfClaims::heldBy(const AttachmentKey& owner) {
  std::optional<VfClaim> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare((std::string("SELECT ") + kColumns +
                                     " FROM vf_claims WHERE network=? AND container_id=? AND "
                                     "ifname=?")
                                        .c_str()));
    q.bind(1, owner.network).bind(2, owner.container_id).bind(3, owner.ifname);
    PLUMB_ASSIGN(bool row, q.step());
    if (row) out = claimOf(q);
    return {};
  }));
  return out;
}

Result<std::vector<VfClaim>> VfClaims::list(const std::string& network) {
  std::vector<VfClaim> out;
  PLUMB_TRY(store_.read([&](Db& db) -> Status {
    std::string sql = std::string("SELECT ") + kColumns + " FROM vf_claims" +
                      (network.empty() ? "" : " WHERE network=?") + " ORDER BY id";
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    if (!network.empty()) q.bind(1, network);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      out.push_back(claimOf(q));
    }
    return {};
  }));
  return out;
}

Status VfClaims::saveOriginal(long long id, const std::string& original) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("UPDATE vf_claims SET original=? WHERE id=?"));
    q.bind(1, original).bind(2, id);
    PLUMB_TRY(q.run());
    if (sqlite3_changes(db.handle()) == 0)
      return fail(Errc::kNotFound, "the VF claim " + std::to_string(id) + " is gone");
    return {};
  });
}

Status VfClaims::release(long long id) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("DELETE FROM vf_claims WHERE id=?"));
    q.bind(1, id);
    return q.run();
  });
}

}  // namespace plumb::core
