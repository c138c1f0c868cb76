// Jobs on their way into Hydra's tables. While the evaluation runs, each
// job's row is streamed (COPY, in batches, each in a short transaction of
// its own) into a temporary table of the evaluation's own connection, which
// no other session sees and which locks nothing of Hydra's. The evaluation's
// one transaction then makes builds, outputs and members from it with a few
// INSERT ... SELECT statements (evaluation_writer.hh).
#pragma once

#include "build_row.hh"

#include <pqxx/pqxx>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace evolive::hydra {

class StagingTable
{
public:
    // Creates pg_temp.evolive_jobs (dropping one left on this connection).
    explicit StagingTable(pqxx::connection & conn);

    // One COPY of `rows`, numbered from size() on, in a transaction of its own.
    void append(const std::vector<BuildRow> & rows);
    size_t size() const { return size_; }
    // Once every row is in: statistics for the planner (it is a table of
    // our own; Hydra's tables are left as they are).
    void analyze();
    // Time spent in append(), all batches together.
    double writeSeconds() const { return writeSeconds_; }

    static constexpr const char * table = "evolive_jobs";

private:
    pqxx::connection & conn_;
    size_t size_ = 0;
    double writeSeconds_ = 0;
};

// Feeds a StagingTable from a thread of its own, so that the evaluator's
// output is read on while a batch is written.
class StagingWriter
{
public:
    explicit StagingWriter(StagingTable & table, size_t batchRows = 2000);
    ~StagingWriter();

    void add(BuildRow row);
    // Throws the error a write had, if one had (so that an evaluation whose
    // rows cannot be written stops early).
    void check();
    // Writes what is left and stops; throws the first error the writes had.
    void finish();

private:
    void run();

    StagingTable & table_;
    size_t batchRows_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<BuildRow> pending_;
    bool done_ = false;
    std::exception_ptr error_; // guarded by mutex_
    std::thread thread_;
};

} // namespace evolive::hydra
