#include "label/sqlite.h"

#include "core/error.h"

namespace rlhf::label {

Db::Db(const std::string& path, bool create) : path_(path) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
    RLHF_FAIL(path, ": cannot open the task database (", msg, ")",
              create ? "; check that the directory is writable" : "; is this a task directory made by `rlhf label new`?");
  }
  sqlite3_busy_timeout(db_, 10000);  // another process (status, raters add) may hold the write lock briefly
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    RLHF_FAIL(path_, ": database error: ", msg, " (in: ", sql.substr(0, 60), ")");
  }
}

Stmt Db::prepare(const std::string& sql) { return Stmt(*this, sql); }

Stmt::Stmt(Db& db, const std::string& sql) : db_(&db) {
  int rc = sqlite3_prepare_v2(db.raw(), sql.c_str(), int(sql.size()), &s_, nullptr);
  RLHF_CHECK(rc == SQLITE_OK, db.path(), ": database error: ", sqlite3_errmsg(db.raw()), " (in: ", sql.substr(0, 60), ")");
}

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
  sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  RLHF_CHECK(rc == SQLITE_DONE, db_->path(), ": database error: ", sqlite3_errmsg(db_->raw()),
             rc == SQLITE_FULL ? "; the disk is full: free some space and retry" : "");
  return false;
}

void Stmt::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Stmt::col_text(int i) const {
  const unsigned char* p = sqlite3_column_text(s_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(s_, i))) : std::string();
}

Transaction::Transaction(Db& db, bool durable) : db_(db), durable_(durable) {
  if (!durable_) db_.exec("PRAGMA synchronous=NORMAL");
  db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
  if (!durable_) sqlite3_exec(db_.raw(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace rlhf::label
