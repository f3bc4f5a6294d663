#include "plugin/core/directory.h"

#include <ctime>

namespace plumb::core {
namespace {

ServiceRecord readService(const Stmt& q) {
  ServiceRecord r;
  r.name = q.text(0);
  r.udp = q.text(1) == "udp";
  r.guest = q.text(2);
  r.netns = q.text(3);
  r.address = q.text(4);
  r.port = static_cast<int>(q.integer(5));
  r.created = q.integer(6);
  return r;
}

LinkRecord readLink(const Stmt& q) {
  LinkRecord r;
  r.guest = q.text(0);
  r.name = q.text(1);
  r.udp = q.text(2) == "udp";
  r.netns = q.text(3);
  r.port = static_cast<int>(q.integer(4));
  r.created = q.integer(5);
  return r;
}

constexpr const char* kServiceColumns = "name, proto, guest, netns, address, port, created";
constexpr const char* kLinkColumns = "guest, name, proto, netns, port, created";

// Every row of `SELECT columns FROM table where`, its ?s bound to args in order, each read
// by read.
template <class Record, class... Args>
Result<std::vector<Record>> selectAll(Store& store, Record (*read)(const Stmt&),
                                      const char* columns, const char* table, const char* where,
                                      const Args&... args) {
  std::vector<Record> out;
  PLUMB_TRY(store.read([&](Db& db) -> Status {
    std::string sql = "SELECT ";
    sql.append(columns).append(" FROM ").append(table).append(" ").append(where);
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    int i = 0;
    (q.bind(++i, args), ...);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) return {};
      out.push_back(read(q));
    }
  }));
  return out;
}

// Deletes guest's rows of name in table (of one protocol, or both); none: the error when
// there were none.
Status deleteNamed(Store& store, const char* table, const std::string& guest,
                   const std::string& name, std::optional<bool> udp, const std::string& none) {
  return store.write([&](Db& db) -> Status {
    std::string sql = "DELETE FROM ";
    sql.append(table).append(" WHERE guest=? AND name=?");
    if (udp) sql.append(" AND proto=?");
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    q.bind(1, guest).bind(2, name);
    if (udp) q.bind(3, protoName(*udp));
    PLUMB_TRY(q.run());
    if (sqlite3_changes(db.handle()) == 0) return fail(Errc::kNotFound, none);
    return {};
  });
}

}  // namespace

Status validateServiceName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::kInvalid, "'" + name + "' is not a service name: " + why);
  };
  if (name.empty() || name.size() > 63) return bad("it must be 1-63 characters long");
  if (!std::isalnum(static_cast<unsigned char>(name[0])))
    return bad("it must start with a letter or a digit");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return bad("only letters, digits, '-', '_' and '.' may be in it");
  }
  return {};
}

Status Directory::expose(const ServiceRecord& r) {
  return store_.write([&](Db& db) -> Status {
    std::string sql = std::string("INSERT OR REPLACE INTO services(") + kServiceColumns +
                      ") VALUES(?,?,?,?,?,?,?)";
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    q.bind(1, r.name)
        .bind(2, protoName(r.udp))
        .bind(3, r.guest)
        .bind(4, r.netns)
        .bind(5, r.address);
    q.bind(6, static_cast<long long>(r.port)).bind(7, static_cast<long long>(::time(nullptr)));
    return q.run();
  });
}

Status Directory::unexpose(const std::string& guest, const std::string& name,
                           std::optional<bool> udp) {
  return deleteNamed(store_, "services", guest, name, udp,
                     "guest " + guest + " exposes no service " + name);
}

Result<std::vector<ServiceRecord>> Directory::services() {
  return selectAll(store_, readService, kServiceColumns, "services", "ORDER BY name, proto, guest");
}

Result<std::vector<ServiceRecord>> Directory::endpoints(const std::string& name, bool udp) {
  return selectAll(store_, readService, kServiceColumns, "services",
                   "WHERE name=? AND proto=? ORDER BY guest", name, std::string(protoName(udp)));
}

Status Directory::link(const LinkRecord& r) {
  return store_.write([&](Db& db) -> Status {
    std::string sql =
        std::string("INSERT OR REPLACE INTO links(") + kLinkColumns + ") VALUES(?,?,?,?,?,?)";
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    q.bind(1, r.guest).bind(2, r.name).bind(3, protoName(r.udp)).bind(4, r.netns);
    q.bind(5, static_cast<long long>(r.port)).bind(6, static_cast<long long>(::time(nullptr)));
    return q.run();
  });
}

Status Directory::unlink(const std::string& guest, const std::string& name,
                         std::optional<bool> udp) {
  return deleteNamed(store_, "links", guest, name, udp,
                     "guest " + guest + " has no link to " + name);
}

Result<std::vector<LinkRecord>> Directory::links() {
  return selectAll(store_, readLink, kLinkColumns, "links", "ORDER BY guest, name, proto");
}

Result<std::optional<LinkRecord>> Directory::findLink(const std::string& guest,
                                                      const std::string& name, bool udp) {
  PLUMB_ASSIGN(auto found, selectAll(store_, readLink, kLinkColumns, "links",
                                     "WHERE guest=? AND name=? AND proto=?", guest, name,
                                     std::string(protoName(udp))));
  if (found.empty()) return std::optional<LinkRecord>();
  return std::optional<LinkRecord>(std::move(found.front()));
}

Status Directory::forgetGuest(const std::string& guest) {
  return store_.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto a, db.prepare("DELETE FROM links WHERE guest=?"));
    PLUMB_TRY(a.bind(1, guest).run());
    PLUMB_ASSIGN(auto b, db.prepare("DELETE FROM services WHERE guest=?"));
    return b.bind(1, guest).run();
  });
}

}  // namespace plumb::core
