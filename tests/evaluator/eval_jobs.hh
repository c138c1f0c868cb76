// Running evolive-eval-jobs in tests and reading its output.
#pragma once

#include "subprocess.hh"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace evolive::test {

struct EvalRun
{
    Completed process;
    std::vector<nlohmann::json> lines;          // every stdout line, parsed
    std::map<std::string, nlohmann::json> jobs; // by attr
};

// Parses JSON lines; a line that does not parse fails the current test.
EvalRun parseEvalOutput(Completed process);

// Runs evolive-eval-jobs with `args` and parses what it prints.
EvalRun evalJobs(const std::vector<std::string> & args);

// The message of an error as Nix renders it, `error: MESSAGE...`. Nix 2.8
// starts with it; Nix 2.26 starts with `error:` alone and the frames of
// the evaluation that led to it (`… while calling the 'throw' builtin`,
// even without --show-trace), and puts the message in its last `error:`
// line. Both give the same text here, so tests hold for both versions.
std::string errorMessage(const std::string & rendered);

// The binary under test, the folder of test data, and the benchmarks'
// workloads (bench/workloads), which tests run at small sizes.
std::string evalJobsBinary();
std::string testDataDir();
std::string workloadsDir();

} // namespace evolive::test
