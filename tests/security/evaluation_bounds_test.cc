// Bounded at the source: a failed evaluation's message carries a bounded
// tail of its log, however much the evaluator wrote; what dead processes
// left half-written (result files, checkouts) is removed at start, and what
// live ones are writing is left alone.
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json lastLine(const std::string & out)
{
    auto trimmed = out.substr(0, out.find_last_not_of('\n') + 1);
    return json::parse(trimmed.substr(trimmed.rfind('\n') + 1));
}

// A process id that was in use and is not any more.
pid_t deadPid()
{
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    return pid;
}

} // namespace

TEST(EvaluationBounds, AFailedEvaluationsMessageHasABoundedTail)
{
    TempDir dir;
    // 20 MB on one line of the log (a trace), then the error that ends it.
    auto file = dir.write("release.nix", R"({ }:
builtins.trace (builtins.concatStringsSep "" (builtins.genList (_: "0123456789") 2000000))
  (throw "the root fails after a long trace"))");
    auto run = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", dir.path() + "/state", file});
    EXPECT_EQ(run.exitCode, 1);
    auto failed = lastLine(run.out);
    ASSERT_EQ(failed["type"], "failed") << run.out.substr(0, 500);
    auto message = failed["message"].get<std::string>();
    EXPECT_LT(message.size(), 16u * 1024) << message.size();
    EXPECT_NE(message.find("the root fails after a long trace"), std::string::npos) << message.substr(0, 500);
    EXPECT_LT(run.out.size(), 64u * 1024);
    // The whole log is still there, for who wants it.
    auto log = fs::directory_iterator(dir.path() + "/state/logs")->path();
    EXPECT_GT(fs::file_size(log), 20u * 1000 * 1000);
}

TEST(EvaluationBounds, LeftoversOfDeadProcessesAreRemovedAtStart)
{
    TempDir dir;
    auto state = dir.path() + "/state";
    auto dead = std::to_string(deadPid()), alive = std::to_string(getpid());
    std::string fp(64, 'a'), rev(40, 'b');
    fs::create_directories(state + "/results");
    fs::create_directories(state + "/git/checkouts");
    std::vector<std::string> gone{state + "/results/" + fp + ".parquet.tmp-" + dead,
                                  state + "/git/checkouts/" + rev + ".tmp-" + dead,
                                  state + "/git/checkouts/" + rev + "-submodules.tmp-" + dead};
    std::vector<std::string> kept{state + "/results/" + fp + ".parquet.tmp-" + alive,
                                  state + "/git/checkouts/" + rev + "-submodules.tmp-" + alive,
                                  state + "/results/" + std::string(64, 'c') + ".parquet"};
    for (auto & path : gone) {
        if (path.find("checkouts") != std::string::npos) {
            fs::create_directories(path + "/vendor/sub");
            std::ofstream(path + "/vendor/sub/file") << "half a checkout";
        } else {
            std::ofstream(path) << "half a result";
        }
    }
    for (auto & path : kept) std::ofstream(path) << "in use";

    auto run = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", state, "--expr", "{ }"});
    ASSERT_EQ(run.exitCode, 0) << run.out << run.err;
    for (auto & path : gone) EXPECT_FALSE(fs::exists(path)) << path;
    for (auto & path : kept) EXPECT_TRUE(fs::exists(path)) << path;
}
