#include "database.hh"

#include <chrono>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <thread>

namespace evolive::hydra {

namespace {

// Every column hydra-eval-jobset reads or writes, by table.
const std::map<std::string, std::vector<std::string>> & usedColumns()
{
    static const std::map<std::string, std::vector<std::string>> columns{
        {"projects", {"name", "declfile"}},
        {"jobsets", {"id", "project", "name", "nixexprinput", "nixexprpath", "flake", "type", "enabled", "forceeval",
                     "errormsg", "errortime", "lastcheckedtime", "fetcherrormsg"}},
        {"jobsetinputs", {"project", "jobset", "name", "type", "emailresponsible"}},
        {"jobsetinputalts", {"project", "jobset", "input", "altnr", "value"}},
        {"builds", {"id", "finished", "timestamp", "jobset_id", "job", "nixname", "description", "drvpath", "system",
                    "license", "homepage", "maintainers", "maxsilent", "timeout", "ischannel", "iscurrent",
                    "priority", "buildstatus", "releasename"}},
        {"buildoutputs", {"build", "name", "path"}},
        {"buildinputs", {"build", "name", "value"}},
        {"evaluationerrors", {"id", "errormsg", "errortime"}},
        {"jobsetevals", {"id", "jobset_id", "evaluationerror_id", "timestamp", "checkouttime", "evaltime",
                         "hasnewbuilds", "hash", "nrbuilds", "flake", "nixexprinput", "nixexprpath"}},
        {"jobsetevalinputs", {"eval", "name", "altnr", "type", "uri", "revision", "shortrevlength", "value",
                              "dependency", "path", "sha256hash"}},
        {"jobsetevalmembers", {"eval", "build", "isnew"}},
        {"aggregateconstituents", {"aggregate", "constituent"}},
        {"cachedpathinputs", {"srcpath", "timestamp", "lastseen", "sha256hash", "storepath"}},
        {"cachedgitinputs", {"uri", "branch", "revision", "isdeepclone", "sha256hash", "storepath"}},
    };
    return columns;
}

// What recording an error on the jobset needs.
const std::set<std::string> errorColumns{"jobsets", "jobsets.id", "jobsets.project", "jobsets.name",
                                         "jobsets.errormsg", "jobsets.errortime", "jobsets.lastcheckedtime",
                                         "jobsets.fetcherrormsg"};

} // namespace

std::string redactedUrl(const std::string & url)
{
    static const std::regex urlPassword("^(postgres(ql)?://[^:/@]*):[^@/]*@");
    static const std::regex keyPassword("(password\\s*=\\s*)('([^'\\\\]|\\\\.)*'|\\S+)");
    auto out = std::regex_replace(url, urlPassword, "$1:***@");
    return std::regex_replace(out, keyPassword, "$1***");
}

std::unique_ptr<pqxx::connection> connectDatabase(const std::string & url)
{
    try {
        auto conn = std::make_unique<pqxx::connection>(url);
        // The evaluation's staging table lives in its session: a connection
        // that breaks must stay broken rather than silently reconnect
        // without it (libpqxx 7 never reconnects).
#if PQXX_VERSION_MAJOR < 7
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
#endif
        return conn;
    } catch (std::exception & e) {
        std::string reason = e.what();
        while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
        throw DatabaseError("cannot connect to Hydra's database (" + redactedUrl(url) + "): " + reason);
    }
}

std::string SchemaProblems::message() const
{
    std::string list;
    for (auto & m : missing) list += (list.empty() ? "" : ", ") + m;
    return "the database does not have Hydra's schema as hydra-eval-jobset uses it: missing " + list +
           " (is this Hydra's database, initialised by hydra-init?)";
}

SchemaProblems checkSchema(pqxx::connection & conn)
{
    std::map<std::string, std::set<std::string>> have;
    pqxx::read_transaction tx(conn);
    for (auto row : tx.exec("select table_name, column_name from information_schema.columns "
                            "where table_schema = any(current_schemas(false))"))
        have[row[0].as<std::string>()].insert(row[1].as<std::string>());
    SchemaProblems problems;
    for (auto & [table, columns] : usedColumns()) {
        auto t = have.find(table);
        if (t == have.end()) {
            problems.missing.push_back(table);
            if (errorColumns.count(table)) problems.canRecordErrors = false;
            continue;
        }
        for (auto & c : columns)
            if (!t->second.count(c)) {
                problems.missing.push_back(table + "." + c);
                if (errorColumns.count(table + "." + c)) problems.canRecordErrors = false;
            }
    }
    return problems;
}

bool isRetryable(const std::exception & e)
{
    if (dynamic_cast<const pqxx::deadlock_detected *>(&e) || dynamic_cast<const pqxx::serialization_failure *>(&e))
        return true;
    if (auto * sql = dynamic_cast<const pqxx::sql_error *>(&e))
        return sql->sqlstate() == "40P01" || sql->sqlstate() == "40001";
    return false;
}

void withRetries(const std::string & what, const std::function<void()> & attempt)
{
    for (int n = 1;; ++n) {
        try {
            attempt();
            return;
        } catch (std::exception & e) {
            if (n >= 10 || !isRetryable(e)) throw;
            std::cerr << what << " aborted (attempt " << n << "), retrying: " << e.what();
            if (std::string(e.what()).back() != '\n') std::cerr << '\n';
            std::this_thread::sleep_for(std::chrono::seconds(n));
        }
    }
}

} // namespace evolive::hydra
