#include "diff_command.hh"

#include "diff_format.hh"
#include "evaluation.hh"
#include "result_diff.hh"
#include "s3_result_store.hh"

#include <filesystem>
#include <iostream>
#include <memory>

namespace evolive {

namespace fs = std::filesystem;

namespace {

struct DiffCommandOptions
{
    std::string old, now;
    std::string results; // "": STATE/results
    std::string stateDir;
    std::string format = "json";
    std::optional<size_t> limit;
};

// A local result file for OLD or NEW: a file as it is, a fingerprint from
// the result store (opened once, on first need: S3 wants credentials).
class ResultLocator
{
public:
    explicit ResultLocator(const DiffCommandOptions & o) : o_(o) {}

    std::string locate(const std::string & what)
    {
        if (fs::is_regular_file(what)) return what;
        if (!results::isFingerprint(what))
            throw std::runtime_error("'" + what + "' is neither a result file nor a fingerprint (64 hexadecimal digits)");
        if (!store_) store_ = results::openResultStore(o_.results, o_.stateDir.empty() ? defaultStateDir() : o_.stateDir);
        auto found = store_->find(what);
        if (!found) throw std::runtime_error("no stored result for " + what + " in " + store_->describe());
        return *found;
    }

private:
    const DiffCommandOptions & o_;
    std::shared_ptr<results::ResultStore> store_;
};

int runDiffCommand(const DiffCommandOptions & o)
{
    try {
        ResultLocator locator(o);
        auto oldPath = locator.locate(o.old);
        auto newPath = locator.locate(o.now);
        auto diff = web::compareResults(oldPath, newPath);
        if (o.format == "text") std::cout << web::diffText(diff, o.limit.value_or(20));
        else if (o.format == "markdown") std::cout << web::diffMarkdown(diff, o.limit.value_or(100));
        else std::cout << web::diffJson(diff, o.limit.value_or(0)).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        std::cout.flush();
        return 0;
    } catch (std::exception & e) {
        std::cerr << "evolive diff: " << e.what() << "\n";
        return 1;
    }
}

} // namespace

void addDiffCommand(CLI::App & app)
{
    auto options = std::make_shared<DiffCommandOptions>();
    auto * cmd = app.add_subcommand("diff", "Compare two evaluations: added, removed, changed, rebuilt, newly failing, fixed");
    cmd->add_option("old", options->old, "the old evaluation: a fingerprint or a result file (.parquet)")->required();
    cmd->add_option("new", options->now, "the new evaluation: a fingerprint or a result file (.parquet)")->required();
    cmd->add_option("--results", options->results,
                    "where results are kept: a directory or s3://BUCKET?...&prefix=P (default: STATE/results)");
    cmd->add_option("--state-dir", options->stateDir,
                    "the state directory (default: $EVOLIVE_STATE_DIR, else ~/.local/state/evolive)");
    cmd->add_option("--format", options->format, "json (default), text, or markdown (for a pull request)")
        ->check(CLI::IsMember({"json", "text", "markdown"}));
    cmd->add_option("--limit", options->limit,
                    "names shown per list, 0 for all (default: json all, text 20, markdown 100)");
    cmd->callback([options]() { throw CLI::RuntimeError(runDiffCommand(*options)); });
}

} // namespace evolive
