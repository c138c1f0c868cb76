// What an evaluation may see: by default, as Hydra runs nix-eval-jobs, in
// Nix's restricted mode (no file outside the inputs, no URL that is not
// allowed, no import from derivation) and with a scrubbed environment, for
// `evolive eval` and `evolive serve` alike. Loosening it is a setting of the
// server (or a flag of `evolive eval`), never a field of the request.
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One job per way out of the inputs; each puts what it got into its
// derivation, so that a leak shows in the .drv.
const char * releaseNix = R"({ salt, secretPath, secretNix, fromNixInput, ... }:
let
  mk = name: attrs: derivation ({ name = "restrict-${name}"; inherit salt; system = "x86_64-linux";
                                   builder = "/bin/sh"; } // attrs);
in {
  readFile = mk "read-file" { leaked = builtins.readFile (/. + secretPath); };
  readDir = mk "read-dir" { leaked = builtins.toJSON (builtins.readDir (/. + dirOf secretPath)); };
  importFile = mk "import" { leaked = import (/. + secretNix); };
  fetchFile = mk "fetch-file" { leaked = builtins.readFile (builtins.fetchurl "file://${secretPath}"); };
  fetchUrl = mk "fetch-url" { leaked = builtins.fetchurl "http://127.0.0.1:9/secret"; };
  nixInput = mk "nix-input" { leaked = fromNixInput; };
  ifd = mk "ifd" { leaked = import (derivation { name = "ifd-${salt}"; system = "x86_64-linux";
                                                 builder = "/bin/sh"; args = [ "-c" "echo 1 > $out" ]; }); };
  env = mk "env" { token = builtins.getEnv "EVOLIVE_TOKENS"; aws = builtins.getEnv "AWS_SECRET_ACCESS_KEY";
                   home = builtins.getEnv "HOME"; };
  inside = mk "inside" { fine = builtins.readFile ./data.txt; };
})";

const std::string secret = "the-server-secret-0123456789";
const std::string token = "a-token-of-the-server-0123456789";

struct Layout
{
    TempDir dir;
    std::string jobsetDir, secretPath, secretNix, salt = freshSalt();

    Layout()
    {
        jobsetDir = dir.path() + "/jobset";
        fs::create_directories(jobsetDir);
        dir.write("jobset/release.nix", releaseNix);
        dir.write("jobset/data.txt", "inside the input");
        secretPath = dir.write("secret.txt", secret);
        secretNix = dir.write("secret.nix", "\"" + secret + "\"");
    }

    json jobset() const
    {
        json inputs{{"src", {{"type", "path"}, {"path", jobsetDir}}},
                    {"salt", {{"type", "string"}, {"value", salt}}},
                    {"secretPath", {{"type", "string"}, {"value", secretPath}}},
                    {"secretNix", {{"type", "string"}, {"value", secretNix}}},
                    {"fromNixInput", {{"type", "nix"}, {"value", "builtins.readFile " + secretPath}}}};
        return {{"inputs", inputs}, {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
    }
};

std::map<std::string, json> jobsOf(const std::vector<json> & lines)
{
    std::map<std::string, json> jobs;
    for (auto & l : lines)
        if (l.value("type", "") == "job") jobs[l["attr"].get<std::string>()] = l;
    return jobs;
}

std::vector<json> parseLines(const std::string & out)
{
    std::vector<json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    return lines;
}

// The value of a derivation attribute, as Nix stored it in the .drv.
std::string drvAttr(const json & job, const std::string & name)
{
    auto r = runCommand({"nix-store", "--query", "--binding", name, job.at("drvPath").get<std::string>()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
}

std::string errorOf(const std::map<std::string, json> & jobs, const std::string & attr)
{
    auto it = jobs.find(attr);
    if (it == jobs.end()) return "<no job " + attr + ">";
    return it->second.value("error", "<no error: " + it->second.dump() + ">");
}

// Every way out is closed; what is inside the inputs is read as before.
void expectRestricted(const std::map<std::string, json> & jobs)
{
    for (auto attr : {"readFile", "readDir", "importFile", "fetchFile", "nixInput"}) {
        SCOPED_TRACE(attr);
        auto error = errorOf(jobs, attr);
        EXPECT_NE(error.find("forbidden in restricted mode"), std::string::npos) << error;
        EXPECT_EQ(error.find(secret), std::string::npos) << error;
    }
    auto url = errorOf(jobs, "fetchUrl");
    EXPECT_NE(url.find("access to URI 'http://127.0.0.1:9/secret' is forbidden in restricted mode"), std::string::npos)
        << url;
    auto ifd = errorOf(jobs, "ifd");
    EXPECT_NE(ifd.find("'allow-import-from-derivation' is disabled"), std::string::npos) << ifd;
    ASSERT_TRUE(jobs.count("env") && !jobs.at("env").contains("error")) << errorOf(jobs, "env");
    EXPECT_EQ(drvAttr(jobs.at("env"), "token"), "");
    EXPECT_EQ(drvAttr(jobs.at("env"), "aws"), "");
    ASSERT_TRUE(jobs.count("inside") && !jobs.at("inside").contains("error")) << errorOf(jobs, "inside");
    EXPECT_EQ(drvAttr(jobs.at("inside"), "fine"), "inside the input");
}

Completed runEvolive(const std::vector<std::string> & args)
{
    std::vector<std::string> argv{EVOLIVE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, {{"AWS_SECRET_ACCESS_KEY", secret}, {"EVOLIVE_TOKENS", token}});
}

} // namespace

TEST(EvaluationRestrict, EvolivEvalIsRestrictedByDefault)
{
    Layout layout;
    auto file = layout.dir.write("jobset.json", layout.jobset().dump());
    auto run = runEvolive({"eval", "--state-dir", layout.dir.path() + "/state", file});
    ASSERT_EQ(run.exitCode, 0) << run.out << run.err;
    expectRestricted(jobsOf(parseLines(run.out)));
}

TEST(EvaluationRestrict, EvolivEvalFlagsLoosenIt)
{
    Layout layout;
    auto file = layout.dir.write("jobset.json", layout.jobset().dump());
    auto state = layout.dir.path() + "/state";
    auto restricted = runEvolive({"eval", "--state-dir", state, file});
    ASSERT_EQ(restricted.exitCode, 0) << restricted.out << restricted.err;
    auto restrictedFingerprint = parseLines(restricted.out).front()["fingerprint"];

    auto loose = runEvolive({"eval", "--state-dir", state, "--no-restrict-eval", "--evaluator-env",
                          "AWS_SECRET_ACCESS_KEY", file});
    ASSERT_EQ(loose.exitCode, 0) << loose.out << loose.err;
    auto lines = parseLines(loose.out);
    // Another way of evaluating is another fingerprint: neither replays the other.
    EXPECT_NE(lines.front()["fingerprint"], restrictedFingerprint);
    EXPECT_FALSE(lines.front()["cached"].get<bool>());
    auto jobs = jobsOf(lines);
    ASSERT_FALSE(jobs.at("readFile").contains("error")) << jobs.at("readFile");
    EXPECT_EQ(drvAttr(jobs.at("readFile"), "leaked"), secret);
    // The environment is still scrubbed, but for the variables let through.
    EXPECT_EQ(drvAttr(jobs.at("env"), "aws"), secret);
    EXPECT_EQ(drvAttr(jobs.at("env"), "token"), "");
    auto home = drvAttr(jobs.at("env"), "home");
    EXPECT_NE(home, getenv("HOME") ? getenv("HOME") : "");
    EXPECT_EQ(home.rfind(state, 0), 0u) << home;
    // Import from derivation stays off unless allowed too.
    EXPECT_NE(errorOf(jobs, "ifd").find("'allow-import-from-derivation' is disabled"), std::string::npos);

    // An allowed URI prefix lets that URL through (to fail on the closed port).
    auto uris = runEvolive({"eval", "--state-dir", state, "--allowed-uri", "http://127.0.0.1:9/", file});
    ASSERT_EQ(uris.exitCode, 0) << uris.out << uris.err;
    auto url = errorOf(jobsOf(parseLines(uris.out)), "fetchUrl");
    EXPECT_EQ(url.find("forbidden in restricted mode"), std::string::npos) << url;
    EXPECT_NE(errorOf(jobsOf(parseLines(uris.out)), "readFile").find("forbidden in restricted mode"), std::string::npos);
}

TEST(EvaluationRestrict, ServiceEvaluationsSeeNothingOfTheServer)
{
    Layout layout;
    TempDir state;
    EvoliveServer server(state.path() + "/state", {"--allow-path", layout.jobsetDir},
                         {{"AWS_SECRET_ACCESS_KEY", secret}, {"EVOLIVE_TOKENS", token}});
    std::vector<std::string> auth{"Authorization: Bearer " + token};
    long status = 0;
    auto lines = streamLines(server.url() + "/v1/evaluations", layout.jobset().dump(), {}, auth, &status);
    ASSERT_EQ(status, 200);
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    expectRestricted(jobsOf(lines));

    // No field of the request loosens it.
    for (auto field : {"restrictEval", "allowedUris", "allowImportFromDerivation", "impure"}) {
        auto jobset = layout.jobset();
        jobset["options"] = {{field, false}};
        auto r = httpRequest("POST", server.url() + "/v1/evaluations", jobset.dump(), auth);
        EXPECT_EQ(r.status, 400) << field << ": " << r.body;
        EXPECT_NE(r.body.find(std::string("options.") + field + ": unknown field"), std::string::npos) << r.body;
    }
}

TEST(EvaluationRestrict, ServerSettingsLoosenIt)
{
    Layout layout;
    TempDir state;
    auto config = state.write("evolive.toml", "restrict-eval = false\n"
                                              "allow-import-from-derivation = true\n"
                                              "allowed-uris = [\"http://127.0.0.1:9/\"]\n"
                                              "evaluator-env = [\"AWS_SECRET_ACCESS_KEY\"]\n");
    EvoliveServer server(state.path() + "/state", {"--config", config, "--allow-path", layout.jobsetDir},
                         {{"AWS_SECRET_ACCESS_KEY", secret}});
    auto lines = streamLines(server.url() + "/v1/evaluations", layout.jobset().dump());
    ASSERT_EQ(lines.back()["type"], "finished") << lines.back();
    auto jobs = jobsOf(lines);
    ASSERT_FALSE(jobs.at("readFile").contains("error")) << jobs.at("readFile");
    EXPECT_EQ(drvAttr(jobs.at("readFile"), "leaked"), secret);
    EXPECT_EQ(drvAttr(jobs.at("env"), "aws"), secret);
    EXPECT_EQ(errorOf(jobs, "ifd").find("'allow-import-from-derivation' is disabled"), std::string::npos)
        << errorOf(jobs, "ifd");

    // A wrong type in the file stops the server with the key.
    auto bad = state.write("bad.toml", "restrict-eval = \"no\"\n");
    auto r = runCommand({EVOLIVE_BINARY, "serve", "--config", bad, "--state-dir", state.path() + "/bad"});
    EXPECT_EQ(r.exitCode, 2);
    EXPECT_NE(r.err.find("restrict-eval must be true or false"), std::string::npos) << r.err;
}
