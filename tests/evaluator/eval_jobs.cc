#include "eval_jobs.hh"

#include <gtest/gtest.h>
#include <sstream>

namespace evolive::test {

std::string evalJobsBinary() { return EVOLIVE_EVAL_JOBS_BINARY; }
std::string testDataDir() { return EVOLIVE_TEST_DATA_DIR; }
std::string workloadsDir() { return EVOLIVE_WORKLOADS_DIR; }

EvalRun parseEvalOutput(Completed process)
{
    EvalRun run;
    std::istringstream in(process.out);
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
        if (j.is_discarded()) continue;
        EXPECT_TRUE(j.contains("attr")) << line;
        auto attr = j.value("attr", std::string());
        EXPECT_EQ(run.jobs.count(attr), 0u) << "reported twice: " << attr;
        run.jobs[attr] = j;
        run.lines.push_back(j);
    }
    run.process = std::move(process);
    return run;
}

EvalRun evalJobs(const std::vector<std::string> & args)
{
    std::vector<std::string> argv{evalJobsBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return parseEvalOutput(runCommand(argv));
}

} // namespace evolive::test
