// Every row of every table of a store, as text, for "nothing changed" comparisons: a table or
// row that cannot be read fails the test rather than dumping as empty. Blobs are printed in hex,
// columns joined with '|', rows sorted by all their columns. A store without a row is "".
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <vector>

namespace plumb::testing {

inline std::string storeDumpOf(const std::string& db_path,
                               const std::vector<std::string>& skip = {}) {
  if (!std::filesystem::exists(db_path)) return "";  // no store yet: nothing in it
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db_path << ": " << (db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return "unreadable";
  }
  sqlite3_busy_timeout(db, 5000);
  auto rows = [&](const std::string& sql, int* columns) {
    std::vector<std::string> out;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
      return out;
    }
    if (columns) *columns = sqlite3_column_count(q);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(q); ++c) {
        if (c) row += "|";
        if (sqlite3_column_type(q, c) == SQLITE_BLOB) {
          const auto* b = static_cast<const unsigned char*>(sqlite3_column_blob(q, c));
          static const char* hex = "0123456789abcdef";
          for (int i = 0; i < sqlite3_column_bytes(q, c); ++i)
            row += std::string{hex[b[i] >> 4], hex[b[i] & 15]};
        } else if (const unsigned char* t = sqlite3_column_text(q, c)) {
          row += reinterpret_cast<const char*>(t);
        }
      }
      out.push_back(row);
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    sqlite3_finalize(q);
    return out;
  };
  std::string out;
  for (const auto& table :
       rows("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name", nullptr)) {
    bool skipped = false;
    for (const auto& s : skip) skipped |= s == table;
    if (skipped) continue;
    int columns = 0;
    (void)rows("SELECT * FROM " + table + " LIMIT 0", &columns);
    std::string order;
    for (int c = 1; c <= columns; ++c) order += (c > 1 ? "," : "") + std::to_string(c);
    out += table + ":\n";
    for (const auto& row : rows("SELECT * FROM " + table + " ORDER BY " + order, nullptr))
      out += "  |" + row + "|\n";
  }
  sqlite3_close(db);
  // No row anywhere dumps as "", like a store never made: bad input that only opened (and so
  // created) the store changed nothing.
  return out.find("  |") == std::string::npos ? "" : out;
}

}  // namespace plumb::testing
