// What a jobset may carry into an evaluation: strings that Nix, the file
// system or the fingerprint would read differently than the user wrote
// them are refused at parse time, naming the field; options that size the
// evaluator are bounded; equivalent spellings give one fingerprint.
#include "fingerprint.hh"
#include "jobset.hh"

#include <gtest/gtest.h>

using namespace evolive;
using nlohmann::json;

namespace {

json jobsetWith(const std::string & name, const json & input)
{
    return json{{"inputs", {{"src", {{"type", "path"}, {"path", "/srv/jobsets"}}}, {name, input}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
}

std::string parseError(const json & document)
{
    try {
        parseJobset(document);
    } catch (JobsetError & e) {
        return e.what();
    }
    return "<accepted>";
}

const std::string nul("\0", 1);

} // namespace

TEST(EvaluationInputs, NulBytesAreRefusedNamingTheField)
{
    // A string input would reach Nix cut at the NUL; a path would pass
    // the allowed-path check with one meaning and be opened with another.
    struct Case
    {
        json document;
        std::string field;
    };
    std::vector<Case> cases{
        {jobsetWith("s", {{"type", "string"}, {"value", "safe" + nul + "hidden"}}), "inputs.s.value"},
        {jobsetWith("n", {{"type", "nix"}, {"value", "\"a\"" + nul + " + builtins.readFile /etc/shadow"}}), "inputs.n.value"},
        {jobsetWith("p", {{"type", "path"}, {"path", "/srv/jobsets/x" + nul + "/../../etc"}}), "inputs.p.path"},
        {jobsetWith("j", {{"type", "json"}, {"value", {{"list", {"fine", "bad" + nul}}}}}), "inputs.j.value.list[1]"},
        {jobsetWith("j", {{"type", "json"}, {"value", {{"key" + nul, 1}}}}), "inputs.j.value"},
        {jobsetWith("g", {{"type", "git"}, {"url", "git+https://example.org/r" + nul + ".git"}}), "inputs.g.url"},
        {jobsetWith("g", {{"type", "git"}, {"url", "git+https://example.org/r.git"}, {"ref", "main" + nul}}), "inputs.g.ref"},
    };
    auto expr = jobsetWith("s", {{"type", "string"}, {"value", "x"}});
    expr["expression"]["path"] = "release.nix" + nul + ".txt";
    cases.push_back({expr, "expression.path"});

    for (auto & c : cases) {
        SCOPED_TRACE(c.field);
        auto error = parseError(c.document);
        EXPECT_NE(error.find(c.field + ": "), std::string::npos) << error;
        EXPECT_NE(error.find("NUL"), std::string::npos) << error;
    }
    // The same strings without the NUL are fine.
    EXPECT_EQ(parseError(jobsetWith("s", {{"type", "string"}, {"value", "safe hidden"}})), "<accepted>");
}

TEST(EvaluationInputs, MaxMemorySizeIsBounded)
{
    // 2^44 MiB overflowed the evaluator's byte limit to 0: every job then
    // failed with "out of memory".
    auto j = jobsetWith("s", {{"type", "string"}, {"value", "x"}});
    for (uint64_t mib : {uint64_t(1) << 44, uint64_t(1) << 21, uint64_t(1048577)}) {
        j["options"] = {{"maxMemorySize", mib}};
        auto error = parseError(j);
        EXPECT_NE(error.find("options.maxMemorySize"), std::string::npos) << mib << ": " << error;
        EXPECT_NE(error.find("1048576"), std::string::npos) << error;
    }
    j["options"] = {{"maxMemorySize", 1048576}};
    EXPECT_EQ(parseJobset(j).options.maxMemoryMiB, 1048576u);
}

TEST(EvaluationInputs, PathSpellingsGiveOneFingerprint)
{
    auto fingerprint = [](const std::string & path) {
        auto jobset = parseJobset(json{{"inputs", {{"src", {{"type", "path"}, {"path", path}}}}},
                                       {"expression", {{"input", "src"}, {"path", "release.nix"}}}});
        std::map<std::string, ResolvedInput> inputs;
        for (auto & [name, spec] : jobset.inputs) inputs[name] = ResolvedInput{spec, std::nullopt, spec.path, "hash"};
        return fingerprintOf(fingerprintDocument(jobset, inputs));
    };
    auto plain = fingerprint("/srv/jobsets");
    EXPECT_EQ(fingerprint("/srv/jobsets/"), plain);
    EXPECT_EQ(fingerprint("/srv/jobsets//"), plain);
    EXPECT_EQ(fingerprint("/srv/./jobsets"), plain);
    EXPECT_NE(fingerprint("/srv/jobsets/sub"), plain);
}

TEST(EvaluationInputs, RefusedTransportsSayTheyAreRefused)
{
    for (std::string url : {"ext::sh -c touch% /tmp/pwned", "git+ext::sh -c id", "fd::17"}) {
        SCOPED_TRACE(url);
        try {
            parseGitUrl(url);
            ADD_FAILURE() << "accepted";
        } catch (JobsetError & e) {
            std::string message = e.what();
            auto transport = url.substr(url.rfind("git+", 0) == 0 ? 4 : 0);
            transport = transport.substr(0, transport.find("::") + 2);
            EXPECT_NE(message.find("transport '" + transport + "' is refused"), std::string::npos) << message;
        }
    }
}
