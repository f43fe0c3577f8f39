// A thin RAII layer over SQLite's C API for the labelling task store: a connection (WAL journal,
// synchronous=FULL so that a committed transaction survives kill -9 and power loss), prepared
// statements with positional binding, and transactions that roll back unless committed.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rlhf::label {

class Stmt;

class Db {
 public:
  // Opens (creating if `create`) the database file; errors name the file and the fix.
  Db(const std::string& path, bool create);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const std::string& sql);
  Stmt prepare(const std::string& sql);
  int64_t last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
  int64_t changes() const { return sqlite3_changes(db_); }
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A prepared statement. bind(1, x) ...; step() returns true while there is a row; col_*(i) read it.
class Stmt {
 public:
  Stmt(Db& db, const std::string& sql);
  ~Stmt();
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, int64_t(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, *v) : bind_null(i); }
  bool step();
  void run() { while (step()) {} }  // for statements without rows
  void reset();
  int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }
  double col_double(int i) const { return sqlite3_column_double(s_, i); }
  std::string col_text(int i) const;
  bool col_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

 private:
  Db* db_;
  sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE (the write lock taken up front, so two writers never deadlock on an upgrade);
// rolled back on destruction unless commit() ran. `durable` = false commits without waiting for the
// disk (synchronous=NORMAL: safe against kill -9, and made durable by the next durable commit, which
// syncs the whole journal) for state that may be lost in a power cut, such as a lease.
class Transaction {
 public:
  explicit Transaction(Db& db, bool durable = true);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false, durable_ = true;
};

}  // namespace rlhf::label
