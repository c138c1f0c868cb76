#include "staging.hh"

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace evolive::hydra {

namespace {

constexpr size_t columnCount = 17;

const std::vector<std::string> & columns()
{
    static const std::vector<std::string> c{
        "ordinal", "job", "nixname", "system", "drvpath", "outputs", "first_output_name", "first_output_path",
        "description", "license", "homepage", "maintainers", "maxsilent", "timeout", "priority", "ischannel",
        "constituents"};
    return c;
}

using Fields = std::array<std::optional<std::string>, columnCount>;

Fields fieldsOf(size_t ordinal, const BuildRow & r)
{
    auto number = [](const std::optional<long> & n) -> std::optional<std::string> {
        if (!n) return std::nullopt;
        return std::to_string(*n);
    };
    return {std::to_string(ordinal), r.job, r.nixName, r.system, r.drvPath, r.outputs, r.firstOutputName,
            r.firstOutputPath, r.description, r.license, r.homepage, r.maintainers, number(r.maxSilent),
            number(r.timeout), std::to_string(r.priority), std::to_string(r.isChannel), r.constituents};
}

// stream_to takes a tuple; a null `const char *` is SQL NULL.
template<size_t... I>
auto asTuple(const Fields & f, std::index_sequence<I...>)
{
    return std::make_tuple((f[I] ? f[I]->c_str() : static_cast<const char *>(nullptr))...);
}

} // namespace

StagingTable::StagingTable(pqxx::connection & conn) : conn_(conn)
{
    pqxx::work tx(conn_);
    tx.exec(std::string("drop table if exists pg_temp.") + table);
    tx.exec(std::string("create temporary table ") + table +
            " (ordinal integer not null, job text not null, nixname text, system text, drvpath text not null, "
            "outputs jsonb not null, first_output_name text not null, first_output_path text, description text, "
            "license text, homepage text, maintainers text, maxsilent integer, timeout integer, "
            "priority integer not null, ischannel integer not null, constituents jsonb, "
            // Filled in by the evaluation's transaction:
            "build_id integer, isnew integer, prev_finished integer, prev_drvpath text)");
    tx.commit();
}

void StagingTable::append(const std::vector<BuildRow> & rows)
{
    if (rows.empty()) return;
    auto started = std::chrono::steady_clock::now();
    pqxx::work tx(conn_);
#if PQXX_VERSION_MAJOR >= 7
    // libpqxx 7 (Debian 13) makes the stream from quoted names.
    std::string columnList;
    for (auto & column : columns()) columnList += (columnList.empty() ? "" : ", ") + tx.quote_name(column);
    auto copy = pqxx::stream_to::raw_table(tx, table, columnList);
#else
    pqxx::stream_to copy(tx, table, columns());
#endif
    size_t ordinal = size_;
    for (auto & row : rows) {
        auto fields = fieldsOf(ordinal++, row);
        copy << asTuple(fields, std::make_index_sequence<columnCount>{});
    }
    copy.complete();
    tx.commit();
    size_ = ordinal;
    writeSeconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

void StagingTable::analyze()
{
    pqxx::nontransaction tx(conn_);
    // Only the columns joins and sorts use (all of them takes five times longer).
    tx.exec(std::string("analyze ") + table + " (job, drvpath, first_output_path)");
}

StagingWriter::StagingWriter(StagingTable & table, size_t batchRows)
    : table_(table), batchRows_(batchRows), thread_([this] { run(); })
{
}

StagingWriter::~StagingWriter()
{
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void StagingWriter::add(BuildRow row)
{
    {
        std::lock_guard lock(mutex_);
        pending_.push_back(std::move(row));
        if (pending_.size() < batchRows_) return;
    }
    wake_.notify_all();
}

void StagingWriter::check()
{
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
}

void StagingWriter::finish()
{
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
}

void StagingWriter::run()
{
    for (;;) {
        std::vector<BuildRow> batch;
        bool last;
        {
            std::unique_lock lock(mutex_);
            // A full batch, or what came within half a second.
            wake_.wait_for(lock, std::chrono::milliseconds(500), [&] { return done_ || pending_.size() >= batchRows_; });
            last = done_;
            while (!pending_.empty()) {
                batch.push_back(std::move(pending_.front()));
                pending_.pop_front();
            }
        }
        bool failed;
        {
            std::lock_guard lock(mutex_);
            failed = error_ != nullptr;
        }
        if (!failed) {
            try {
                table_.append(batch);
            } catch (...) {
                std::lock_guard lock(mutex_);
                error_ = std::current_exception();
            }
        }
        if (last) {
            std::lock_guard lock(mutex_);
            if (pending_.empty()) return;
        }
    }
}

} // namespace evolive::hydra
