// Cutting a listing into chunks (src/fleet/chunking.hh), and the chunk
// message's round trip (protocol.hh).
#include "chunking.hh"
#include "protocol.hh"

#include <gtest/gtest.h>

using namespace evolive;
using namespace evolive::fleet;
using nlohmann::json;

namespace {

ListedPath job(const std::string & attr)
{
    return parseListedPath(json{{"attr", attr}, {"attrPath", json::array({attr})}});
}

ListedPath aggregate(const std::string & attr, std::vector<std::string> named, bool glob = false)
{
    return parseListedPath(json{{"attr", attr}, {"attrPath", json::array({attr})}, {"aggregate", true},
                                {"namedConstituents", named}, {"globConstituents", glob}});
}

std::vector<std::vector<std::string>> names(const std::vector<std::vector<ListedPath>> & chunks)
{
    std::vector<std::vector<std::string>> out;
    for (auto & c : chunks) {
        out.emplace_back();
        for (auto & p : c) out.back().push_back(p.attr);
    }
    return out;
}

} // namespace

TEST(Chunking, CutsInListingOrderAtChunkSize)
{
    auto chunks = cutIntoChunks({job("a"), job("b"), job("c"), job("d"), job("e")}, 2);
    EXPECT_EQ(names(chunks), (std::vector<std::vector<std::string>>{{"a", "b"}, {"c", "d"}, {"e"}}));
    EXPECT_TRUE(cutIntoChunks({}, 2).empty());
}

TEST(Chunking, PutsEveryAggregateWithWhatItNamesInOneChunk)
{
    auto chunks = cutIntoChunks({job("a"), job("tests.x"), job("b"), aggregate("all", {"a", "missing"}), job("tests.y"),
                                 job("c"), aggregate("tests", {"tests.*"}, true), aggregate("ofAll", {"all"})},
                                2);
    ASSERT_GE(chunks.size(), 2u);
    EXPECT_EQ(names(chunks)[0], (std::vector<std::string>{"a", "tests.x", "all", "tests.y", "tests", "ofAll"}));
    EXPECT_EQ(names(chunks)[1], (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(chunks.size(), 2u);
}

TEST(Chunking, RefusesALineWithoutAnAttributePath)
{
    EXPECT_THROW(parseListedPath(json{{"attr", "a"}}), std::runtime_error);
    EXPECT_THROW(parseListedPath(json::array()), std::runtime_error);
}

TEST(ChunkMessage, RoundTripsAndRefusesAnotherVersion)
{
    ChunkSpec c;
    c.fingerprint = "f";
    c.index = 3;
    c.jobset.expression = {"src", "release.nix"};
    c.jobset.options.constituents = true;
    ResolvedInput git;
    git.spec.type = InputType::Git;
    git.spec.git.url = "https://example.org/r.git";
    git.git = FetchedGit{};
    git.git->rev = std::string(40, 'a');
    c.inputs["src"] = git;
    c.jobset.inputs["src"] = git.spec;
    ResolvedInput n;
    n.spec.type = InputType::Nix;
    n.spec.value = "1 + 1";
    c.inputs["n"] = n;
    c.jobset.inputs["n"] = n.spec;
    c.restrictions.allowedUris = {"https://x/"};
    c.paths = {json::array({"a", "b.c"})};
    auto encoded = encodeChunk(c);
    auto back = decodeChunk(json::parse(encoded.dump()));
    EXPECT_EQ(encodeChunk(back), encoded);
    EXPECT_EQ(back.inputs.at("src").git->rev, std::string(40, 'a'));
    EXPECT_TRUE(back.jobset.options.constituents);
    encoded["v"] = 2;
    EXPECT_THROW(decodeChunk(encoded), std::runtime_error);
    encoded.erase("v");
    EXPECT_THROW(decodeChunk(encoded), std::runtime_error);
}
