#include "json_parse.hh"

#include <gtest/gtest.h>

using evolive::JsonParseError;
using evolive::jsonDepth;
using evolive::parseJson;

TEST(JsonParse, CountsNestingOutsideStrings)
{
    EXPECT_EQ(jsonDepth("1"), 0u);
    EXPECT_EQ(jsonDepth(R"({"a": [1, {"b": []}]})"), 4u);
    EXPECT_EQ(jsonDepth(R"({"a": "[[[[{{{{\"[[["})"), 1u);
    EXPECT_EQ(jsonDepth(R"(["\\", [[]]])"), 3u);
}

TEST(JsonParse, RefusesDeepDocumentsWithoutBuildingThem)
{
    // 100,000 levels in 200 KB: what overflowed the service's stack.
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    try {
        parseJson(deep, "request body");
        FAIL() << "a 100,000-deep document was accepted";
    } catch (const JsonParseError & e) {
        EXPECT_STREQ(e.what(), "request body: nested deeper than 64 levels");
    }
    std::string ok = std::string(64, '[') + std::string(64, ']');
    EXPECT_NO_THROW(parseJson(ok, "x"));
    EXPECT_THROW(parseJson("[" + ok + "]", "x"), JsonParseError);
}

TEST(JsonParse, NamesWhatWasMalformed)
{
    try {
        parseJson("{\"a\": ", "push message");
        FAIL();
    } catch (const JsonParseError & e) {
        EXPECT_EQ(std::string(e.what()).rfind("push message: ", 0), 0u) << e.what();
    }
    EXPECT_EQ(parseJson(R"({"a": [1, 2]})", "x")["a"][1], 2);
}
