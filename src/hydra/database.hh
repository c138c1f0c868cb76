// Hydra's PostgreSQL database: connecting, checking that it has the tables
// and columns hydra-eval-jobset reads and writes, and retrying
// transactions that PostgreSQL aborts to break a deadlock.
#pragma once

#include <pqxx/pqxx>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace evolive::hydra {

// The database cannot be reached, or is not a Hydra database this program
// can write to.
struct DatabaseError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

// Throws DatabaseError naming the database (without its password).
std::unique_ptr<pqxx::connection> connectDatabase(const std::string & url);

// `url` with any password replaced by ***.
std::string redactedUrl(const std::string & url);

struct SchemaProblems
{
    std::vector<std::string> missing; // "table.column" (or "table" when the table is missing)
    bool canRecordErrors = true;      // jobsets' error columns are all there
    std::string message() const;
};

// Compares the database with what hydra-eval-jobset uses.
SchemaProblems checkSchema(pqxx::connection & conn);

// True for a deadlock (SQLSTATE 40P01) or a serialisation failure (40001).
bool isRetryable(const std::exception & e);

// Runs `attempt` (one whole transaction) until it commits, at most 10
// times, waiting `n` seconds after the n-th abort, as Hydra's script does;
// other errors, and the tenth retryable one, are thrown.
void withRetries(const std::string & what, const std::function<void()> & attempt);

} // namespace evolive::hydra
