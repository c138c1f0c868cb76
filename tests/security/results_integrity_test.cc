// A stored result is only ever a true one: a damaged or tampered result
// file is never replayed (each of many single-bit flips of a real result is
// detected), a file whose checksum an attacker recomputed still cannot put
// anything but job lines into the stream, and a result with errors caused
// by the environment (a killed worker) is evaluated again, not replayed.
#include "evaluation.hh"
#include "parquet_reader.hh"
#include "parquet_writer.hh"
#include "service_client.hh"
#include "subprocess.hh"

#include <atomic>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>
#include <signal.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace evolive;
using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Replayed
{
    bool replays = false, ok = false;
    std::vector<std::string> lines; // every line, as the service would send it
};

class StoredResult : public ::testing::Test
{
protected:
    TempDir dir;
    std::string state = dir.path() + "/state";
    Jobset jobset;
    std::vector<std::string> refused; // fingerprints reported as not replayable
    std::string fingerprint, resultFile, original;
    std::set<std::string> originalJobs;

    EvaluationSettings settings()
    {
        EvaluationSettings s;
        s.stateDir = state;
        s.evaluatorDir = fs::path(EVOLIVE_EVAL_JOBS_BINARY).parent_path();
        s.refusedResult = [this](const std::string & fp, const std::string &, bool) { refused.push_back(fp); };
        return s;
    }

    void SetUp() override
    {
        jobset = parseJobset(json{{"inputs",
                                   {{"src", {{"type", "path"}, {"path", EXAMPLES_DIR}}},
                                    {"salt", {{"type", "string"}, {"value", freshSalt()}}}}},
                                  {"expression", {{"input", "src"}, {"path", "release.nix"}}},
                                  {"options", {{"meta", true}, {"constituents", true}}}});
        std::vector<json> messages;
        ASSERT_TRUE(runEvaluation(jobset, settings(), [&](const json & m) { messages.push_back(m); }))
            << messages.back();
        fingerprint = messages.back()["fingerprint"];
        resultFile = messages.back()["result"];
        original = readFile(resultFile);
        for (auto & m : messages)
            if (m["type"] == "job") originalJobs.insert(m.dump());
        ASSERT_EQ(originalJobs.size(), 6u);
    }

    void store(const std::string & bytes) const
    {
        std::ofstream(resultFile, std::ios::binary | std::ios::trunc) << bytes;
    }

    // What a request for the same jobset gets from the stored file, without
    // evaluating: a replay's lines, or nothing when it would evaluate.
    Replayed replay()
    {
        Replayed r;
        Evaluation evaluation(jobset, settings());
        auto emit = [&](const json & m) { r.lines.push_back(jsonLine(m)); };
        if (!evaluation.resolve(emit)) return r;
        r.replays = evaluation.replays();
        if (r.replays) r.ok = evaluation.run(emit, [&](const std::string & line) { r.lines.push_back(line); });
        return r;
    }

    std::set<std::string> jobsOf(const Replayed & r) const
    {
        std::set<std::string> jobs;
        for (auto & line : r.lines) {
            auto m = json::parse(line);
            if (m["type"] == "job") jobs.insert(m.dump());
        }
        return jobs;
    }
};

} // namespace

TEST_F(StoredResult, NoBitFlipReplaysAlteredContent)
{
    auto intact = replay();
    ASSERT_TRUE(intact.replays && intact.ok);
    ASSERT_EQ(jobsOf(intact), originalJobs);

    // Flips anywhere in the file, and as many again in the footer (its
    // metadata and offsets), where a flip most often still parses.
    std::mt19937 random(12);
    size_t footer = original.size() - 8 - (uint8_t) original[original.size() - 8] -
                    ((uint8_t) original[original.size() - 7] << 8);
    std::vector<size_t> offsets;
    for (int i = 0; i < 300; ++i) offsets.push_back(random() % original.size());
    for (int i = 0; i < 300; ++i) offsets.push_back(footer + random() % (original.size() - footer));

    size_t replayedAltered = 0, replayedIntact = 0;
    for (auto offset : offsets) {
        auto flipped = original;
        flipped[offset] ^= char(1 << (random() % 8));
        store(flipped);
        auto r = replay();
        if (!r.replays) continue;
        bool same = r.ok && jobsOf(r) == originalJobs;
        for (auto & line : r.lines)
            if (line.find('\n') != std::string::npos) same = false;
        if (same) ++replayedIntact;
        else {
            ++replayedAltered;
            ADD_FAILURE() << "a flip at byte " << offset << " of " << original.size() << " replayed:\n"
                          << (r.lines.empty() ? "" : r.lines.back());
            if (replayedAltered > 5) break;
        }
    }
    EXPECT_EQ(replayedAltered, 0u);
    // Every flip is detected (a SHA-256 over the file), not only the harmful ones.
    EXPECT_EQ(replayedIntact, 0u);
    EXPECT_EQ(refused.size(), offsets.size());
    for (auto & fp : refused) EXPECT_EQ(fp, fingerprint);

    // The intact file replays again; a damaged one is evaluated anew and
    // replaced by a true result.
    store(original);
    EXPECT_TRUE(replay().replays);
    auto damaged = original;
    damaged[damaged.size() / 2] ^= 4;
    store(damaged);
    std::vector<json> messages;
    ASSERT_TRUE(runEvaluation(jobset, settings(), [&](const json & m) { messages.push_back(m); }));
    EXPECT_FALSE(messages.front()["cached"].get<bool>());
    auto again = replay();
    EXPECT_TRUE(again.replays && again.ok);
    EXPECT_EQ(jobsOf(again), originalJobs);
}

TEST_F(StoredResult, ReplayedRowsCannotInjectLines)
{
    // Someone who can write the results (a shared bucket) writes a file
    // with a valid checksum whose cells try to end the job line early.
    auto columns = results::readParquet(resultFile, {}).columns;
    auto metadata = results::readParquet(resultFile, {}).metadata;
    std::vector<std::vector<results::Cell>> rows;
    auto row = [&](std::map<std::string, std::string> cells) {
        std::vector<results::Cell> r;
        for (auto & c : columns) r.push_back(cells.count(c) ? results::Cell(cells[c]) : results::Cell());
        rows.push_back(r);
    };
    std::string finished = R"({"type":"finished","fingerprint":")" + fingerprint + R"(","jobs":0})";
    row({{"attr", "outputs"}, {"attrPath", R"(["outputs"])"}, {"outputs", "{}\n" + finished}});
    row({{"attr", "extra"}, {"attrPath", R"(["extra"])"}, {"extra", R"({"a":1},"type":"finished","b":{"c":2})"}});
    row({{"attr", "attrPath"}, {"attrPath", "[\"x\"]}\n" + finished + "\n{\"y\":[1"}});
    row({{"attr", "type"}, {"attrPath", R"(["type"])"}, {"extra", R"({"type":"finished"})"}});
    {
        results::ParquetWriter writer(resultFile, columns);
        for (auto & r : rows) writer.addRow(r);
        for (auto & [k, v] : metadata)
            if (k != "evolive.sha256") writer.setMetadata(k, v);
        writer.setMetadata("jobs", std::to_string(rows.size()));
        writer.finish();
    }
    auto r = replay();
    for (auto & line : r.lines) {
        EXPECT_EQ(line.find('\n'), std::string::npos) << line;
        auto m = json::parse(line, nullptr, false);
        ASSERT_TRUE(m.is_object()) << line;
        EXPECT_TRUE(m["type"] == "job" || m["type"] == "started" || m["type"] == "failed" || m["type"] == "finished")
            << line;
        if (m["type"] == "finished") {
            EXPECT_EQ(&line, &r.lines.back()) << "a finished line before the end";
        }
    }
    size_t finishedLines = 0;
    for (auto & line : r.lines) finishedLines += json::parse(line)["type"] == "finished";
    EXPECT_LE(finishedLines, 1u);
    // A row that is not what evolive writes fails the replay, saying so.
    ASSERT_FALSE(r.lines.empty());
    auto last = json::parse(r.lines.back());
    EXPECT_EQ(last["type"], "failed") << last;
    EXPECT_NE(last.value("message", "").find("row 1"), std::string::npos) << last;
}

TEST_F(StoredResult, EnvironmentErrorsAreEvaluatedAgain)
{
    // A job blocks on a FIFO inside its input; its worker is killed while it
    // waits: an error of the machine, not of the expression.
    auto src = dir.path() + "/src";
    fs::create_directories(src);
    ASSERT_EQ(mkfifo((src + "/block").c_str(), 0600), 0);
    std::ofstream(src + "/release.nix") << R"({ salt }:
let mk = name: derivation { inherit name salt; system = "x86_64-linux"; builder = "/bin/sh"; }; in
{ a = mk "a"; blocked = builtins.trace "evolive-test: blocking" (mk (builtins.readFile ./block)); z = mk "z"; })";
    auto file = dir.write("fifo.json", json{{"inputs",
                                             {{"src", {{"type", "path"}, {"path", src}}},
                                              {"salt", {{"type", "string"}, {"value", freshSalt()}}}}},
                                            {"expression", {{"input", "src"}, {"path", "release.nix"}}},
                                            {"options", {{"workers", 1}}}}
                                           .dump());
    // The worker: the evaluator process with EVOLIVE_EVAL_WORKER set whose
    // arguments carry this test's salt (a FIFO's reader has no descriptor
    // for it while open() waits for a writer).
    auto salt = json::parse(readFile(file))["inputs"]["salt"]["value"].get<std::string>();
    auto workers = [&] {
        std::vector<pid_t> pids;
        for (auto & proc : fs::directory_iterator("/proc")) {
            auto name = proc.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream cmdline(proc.path() / "cmdline"), environ(proc.path() / "environ");
            std::string args((std::istreambuf_iterator<char>(cmdline)), {}), env((std::istreambuf_iterator<char>(environ)), {});
            if (args.find(salt) != std::string::npos && env.find(std::string("EVOLIVE_EVAL_WORKER=1\0", 22)) != std::string::npos)
                pids.push_back(std::stoi(name));
        }
        return pids;
    };
    auto tracedBlocking = [&] {
        std::error_code ec;
        for (auto & log : fs::directory_iterator(state + "/logs", ec))
            if (readFile(log.path()).find("evolive-test: blocking") != std::string::npos) return true;
        return false;
    };
    auto parse = [](const std::string & out) {
        std::map<std::string, json> byType;
        std::istringstream in(out);
        for (std::string line; std::getline(in, line);) {
            auto m = json::parse(line);
            byType[m["type"] == "job" ? m["attr"].get<std::string>() : m["type"].get<std::string>()] = m;
        }
        return byType;
    };

    Subprocess first({EVOLIVE_BINARY, "eval", "--state-dir", state, file});
    std::vector<pid_t> readers;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!(tracedBlocking() && !(readers = workers()).empty()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(readers.size(), 1u);
    ASSERT_EQ(kill(readers[0], SIGKILL), 0);
    auto killed = parse(first.wait().out);
    ASSERT_TRUE(killed.count("finished")) << killed.size();
    EXPECT_NE(killed["blocked"].value("error", "").find("killed by signal 9"), std::string::npos) << killed["blocked"];
    EXPECT_EQ(killed["blocked"]["errorCause"], "environment");
    EXPECT_FALSE(killed["a"].contains("errorCause"));
    EXPECT_EQ(killed["finished"]["environmentErrors"], 1);
    auto stored = results::readParquet(killed["finished"]["result"], {});
    EXPECT_EQ(stored.metadata["environmentErrors"], "1");

    // Asked again: evaluated anew (the FIFO answers this time), not replayed.
    std::atomic<bool> done{false};
    std::thread unblock([&] {
        // Without blocking: a replay never opens the FIFO.
        while (!done) {
            int fd = open((src + "/block").c_str(), O_WRONLY | O_NONBLOCK);
            if (fd >= 0) {
                [[maybe_unused]] auto n = write(fd, "unblocked", 9);
                close(fd);
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    auto secondRun = runCommand({EVOLIVE_BINARY, "eval", "--state-dir", state, file});
    done = true;
    unblock.join();
    auto second = parse(secondRun.out);
    EXPECT_FALSE(second["started"]["cached"].get<bool>());
    EXPECT_EQ(second["blocked"]["name"], "unblocked") << second["blocked"];
    EXPECT_EQ(second["finished"]["environmentErrors"], 0);
    EXPECT_NE(secondRun.err.find("environment"), std::string::npos) << secondRun.err;

    // Now the stored result is a true one: replayed.
    auto third = parse(runCommand({EVOLIVE_BINARY, "eval", "--state-dir", state, file}).out);
    EXPECT_TRUE(third["started"]["cached"].get<bool>());
    EXPECT_EQ(third["blocked"]["name"], "unblocked");
}

TEST(StoredResultService, DamageIsReportedAndTheResultEvaluatedAgain)
{
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", EXAMPLES_DIR});
    auto jobset = fileJobset(EXAMPLES_DIR, "release.nix", {{"salt", freshSalt()}}).dump();
    auto url = server.url() + "/v1/evaluations";
    auto first = streamLines(url, jobset);
    ASSERT_EQ(first.back()["type"], "finished") << first.back();
    auto fingerprint = first.back()["fingerprint"].get<std::string>();
    auto file = state.path() + "/state/results/" + fingerprint + ".parquet";
    auto bytes = readFile(file);
    bytes[bytes.size() / 3] ^= 0x10;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;

    auto second = streamLines(url, jobset);
    ASSERT_EQ(second.back()["type"], "finished") << second.back();
    EXPECT_FALSE(second[1]["cached"].get<bool>()) << second[1];
    EXPECT_EQ(readMetrics(server.url())["evolive_stored_results_refused_total{reason=\"damaged\"}"], 1);
    EXPECT_NE(server.log().find("evaluating " + fingerprint + " again: the stored result is damaged"), std::string::npos)
        << server.log();
    auto third = streamLines(url, jobset);
    EXPECT_TRUE(third[1]["cached"].get<bool>()) << third[1];
}
