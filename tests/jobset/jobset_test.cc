// Parsing jobsets, refusing hostile URLs and refs, and fingerprints.
#include "evaluation.hh"
#include "fingerprint.hh"
#include "jobset.hh"

#include <gtest/gtest.h>

using namespace evolive;
using nlohmann::json;

namespace {

json minimal()
{
    return json::parse(R"({
      "inputs": {"src": {"type": "git", "url": "git+https://example.org/repo.git?ref=main"},
                 "n": {"type": "json", "value": {"a": [1, 2]}}},
      "expression": {"input": "src", "path": "release.nix"}})");
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

} // namespace

TEST(Jobset, ParsesGitUrlsLikeLibfetchers)
{
    auto s = parseGitUrl("git+https://example.org/repo.git?ref=release-1.0&shallow=0&submodules=1");
    EXPECT_EQ(s.url, "https://example.org/repo.git");
    EXPECT_EQ(s.ref, "release-1.0");
    EXPECT_FALSE(s.shallow);
    EXPECT_TRUE(s.submodules);
    EXPECT_EQ(parseGitUrl("git+file:///srv/repo").url, "file:///srv/repo");
    EXPECT_EQ(parseGitUrl("git+ssh://git@example.org/repo").url, "ssh://git@example.org/repo");
    auto pinned = parseGitUrl("git://example.org/r?rev=0123456789abcdef0123456789abcdef01234567");
    EXPECT_EQ(pinned.rev, "0123456789abcdef0123456789abcdef01234567");
    EXPECT_TRUE(pinned.shallow);
}

TEST(Jobset, RefusesHostileUrlsAndRefs)
{
    for (auto url : {"ext::sh -c touch% /tmp/pwned", "git+ext::sh -c id", "--upload-pack=touch /tmp/pwned",
                     "-oProxyCommand=touch /tmp/pwned", "git+ssh://-oProxyCommand=touch/repo", "fd::17",
                     "git+https://example.org/r?ref=--upload-pack=x", "git+https://example.org/r?ref=-x",
                     "git+file:relative", "git+https://example.org/r?rev=HEAD", "git+https://example.org/r?foo=1",
                     "git+https://example.org/r#frag", "gopher://example.org/r", "git+https://example.org/r?ref=a..b"}) {
        SCOPED_TRACE(url);
        EXPECT_THROW(parseGitUrl(url), JobsetError);
    }
    EXPECT_FALSE(isSafeRef("-f"));
    EXPECT_FALSE(isSafeRef("a b"));
    EXPECT_FALSE(isSafeRef("x.lock"));
    EXPECT_TRUE(isSafeRef("feature/x-1.2"));
}

TEST(Jobset, ErrorsNameTheField)
{
    auto j = minimal();
    j["inputs"]["src"]["url"] = "https://example.org/repo.git main";
    EXPECT_NE(parseError(j).find("?ref="), std::string::npos) << parseError(j);

    j = minimal();
    j["inputs"]["src"]["colour"] = "blue";
    EXPECT_NE(parseError(j).find("inputs.src.colour: unknown field"), std::string::npos) << parseError(j);

    j = minimal();
    j["inputs"]["flag"] = {{"type", "boolean"}, {"value", "yes"}};
    EXPECT_NE(parseError(j).find("inputs.flag.value"), std::string::npos) << parseError(j);

    j = minimal();
    j["inputs"]["x"] = {{"type", "svn"}, {"value", "1"}};
    EXPECT_NE(parseError(j).find("unknown input type 'svn'"), std::string::npos) << parseError(j);

    j = minimal();
    j["expression"]["path"] = "../../etc/passwd";
    EXPECT_NE(parseError(j).find("expression.path: must not leave the input"), std::string::npos);
    j["expression"]["path"] = "/etc/passwd";
    EXPECT_NE(parseError(j).find("expression.path"), std::string::npos);

    j = minimal();
    j["expression"]["input"] = "nope";
    EXPECT_NE(parseError(j).find("no input named 'nope'"), std::string::npos);

    j = minimal();
    j["options"] = {{"workers", 0}};
    EXPECT_NE(parseError(j).find("options.workers"), std::string::npos);

    EXPECT_NE(parseError(json::array()).find("must be a JSON object"), std::string::npos);
}

TEST(Jobset, FingerprintIgnoresKeyOrderAndWhitespaceButNotContent)
{
    auto text1 = R"({"inputs": {"a": {"type": "string", "value": "x"}, "src": {"type": "path", "path": "/srv"}},
                     "expression": {"input": "src", "path": "release.nix"}, "options": {"meta": true}})";
    auto text2 = R"({ "options" : { "meta" : true },"expression":{"path":"release.nix","input":"src"},
                      "inputs":{"src":{"path":"/srv","type":"path"},"a":{"value":"x","type":"string"}} })";
    auto fingerprint = [](const std::string & text, auto change) {
        auto jobset = parseJobset(json::parse(text));
        change(jobset);
        std::map<std::string, ResolvedInput> inputs;
        for (auto & [name, spec] : jobset.inputs) inputs[name] = ResolvedInput{spec, std::nullopt, "/srv", "hash-of-srv"};
        return fingerprintOf(fingerprintDocument(jobset, inputs));
    };
    auto same = [](Jobset &) {};
    auto base = fingerprint(text1, same);
    EXPECT_EQ(base.size(), 64u);
    EXPECT_EQ(fingerprint(text2, same), base);
    // Workers do not change the result.
    EXPECT_EQ(fingerprint(text1, [](Jobset & j) { j.options.workers = 2; }), base);

    std::vector<std::function<void(Jobset &)>> changes{
        [](Jobset & j) { j.inputs["a"].value = "y"; },
        [](Jobset & j) { j.inputs["b"] = j.inputs["a"]; },
        [](Jobset & j) { j.inputs["a"].type = InputType::Nix; },
        [](Jobset & j) { j.expression.path = "other.nix"; },
        [](Jobset & j) { j.options.meta = false; },
        [](Jobset & j) { j.options.constituents = true; },
        [](Jobset & j) { j.options.evaluator = "nix-eval-jobs"; },
    };
    for (size_t i = 0; i < changes.size(); ++i) EXPECT_NE(fingerprint(text1, changes[i]), base) << "change " << i;
}

TEST(Jobset, NixStringsAreEscaped)
{
    EXPECT_EQ(nixString("plain"), "\"plain\"");
    EXPECT_EQ(nixString("a\"b\\c${d}$e\nf"), R"("a\"b\\c\${d}$e\nf")");
}
