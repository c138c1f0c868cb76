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

std::string errorMessage(const std::string & rendered)
{
    if (!rendered.starts_with("error:\n")) return rendered;
    // From the last line that begins (after its indentation) with `error: `.
    size_t found = std::string::npos;
    for (size_t line = 0; line < rendered.size();) {
        auto text = rendered.find_first_not_of(' ', line);
        if (text != std::string::npos && rendered.compare(text, 7, "error: ") == 0) found = text;
        auto next = rendered.find('\n', line);
        if (next == std::string::npos) break;
        line = next + 1;
    }
    return found == std::string::npos ? rendered : rendered.substr(found);
}

} // namespace evolive::test
