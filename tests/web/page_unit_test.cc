// The status page's pieces that need no server: query strings, the jobset
// identity behind "the previous evaluation", pages of jobs from lines, and
// the embedded files.
#include "job_search.hh"
#include "query.hh"
#include "result_catalog.hh"
#include "static_files.hh"

#include <gtest/gtest.h>

using namespace evolive::web;

TEST(Query, DecodesValuesAndRefusesBadNumbers)
{
    EXPECT_EQ(queryValue("search=gnu%20hello+world&limit=5", "search"), "gnu hello world");
    EXPECT_EQ(queryValue("a=1&b", "b"), "");
    EXPECT_EQ(queryValue("a=1", "b"), std::nullopt);
    EXPECT_EQ(queryValue("%73earch=x", "search"), "x");
    EXPECT_EQ(queryValue("search=%zz%4", "search"), "%zz%4"); // malformed escapes stay as they are
    EXPECT_EQ(queryNumber("limit=50", "limit", 100, 1000), 50u);
    EXPECT_EQ(queryNumber("limit=5000", "limit", 100, 1000), 1000u);
    EXPECT_EQ(queryNumber("", "limit", 100, 1000), 100u);
    EXPECT_THROW(queryNumber("limit=-1", "limit", 100, 1000), std::invalid_argument);
    EXPECT_THROW(queryNumber("limit=", "limit", 100, 1000), std::invalid_argument);
    EXPECT_THROW(queryNumber("limit=99999999999999999999", "limit", 100, 1000), std::invalid_argument);
}

TEST(JobsetKey, IgnoresRevisionsAndValuesButNotWhereInputsComeFrom)
{
    auto key = [](const std::string & url, const std::string & rev, const std::string & value, const std::string & path = "release.nix") {
        return jobsetKey({{"inputs", R"({"src":{"type":"git","url":")" + url + R"(","ref":"main","rev":")" + rev +
                                         R"(","revCount":3,"path":"/state/checkouts/)" + rev + R"("},"flag":{"type":"boolean","value":)" + value + "}}"},
                          {"expression", R"({"input":"src","path":")" + path + "\"}"},
                          {"started", "2026-01-01T00:00:00Z"}});
    };
    EXPECT_EQ(key("https://a/r.git", "1111", "true"), key("https://a/r.git", "2222", "false"));
    EXPECT_NE(key("https://a/r.git", "1111", "true"), key("https://b/r.git", "1111", "true"));
    EXPECT_NE(key("https://a/r.git", "1111", "true"), key("https://a/r.git", "1111", "true", "other.nix"));
    EXPECT_NE(jobsetKey({{"inputs", R"({"src":{"type":"path","path":"/a"}})"}}),
              jobsetKey({{"inputs", R"({"src":{"type":"path","path":"/b"}})"}}));
    EXPECT_EQ(jobsetKey({{"inputs", R"({"src":{"type":"path","path":"/a","contentHash":"1"}})"}}),
              jobsetKey({{"inputs", R"({"src":{"type":"path","path":"/a","contentHash":"2"}})"}}));
}

TEST(JobPages, SearchCountAndPage)
{
    std::string lines = R"({"attr":"hello","drvPath":"/nix/store/x-hello.drv","type":"job"}
{"attr":"pythonPackages.requests","drvPath":"/nix/store/x-r.drv","type":"job"}
{"attr":"pythonPackages.broken","error":"error: broken","type":"job"}
not json
{"attr":"HelloWorld","drvPath":"/nix/store/x-hw.drv","type":"job"}
)";
    auto page = searchLines(lines, parseJobQuery("search=hello"));
    EXPECT_EQ(page.matching, 2u);
    EXPECT_EQ(page.total, 4u);
    EXPECT_NE(page.lines.find("\"HelloWorld\""), std::string::npos);
    page = searchLines(lines, parseJobQuery("search=python&offset=1&limit=1"));
    EXPECT_EQ(page.matching, 2u);
    EXPECT_EQ(page.lines, R"({"attr":"pythonPackages.broken","error":"error: broken","type":"job"})"
                          "\n");
    page = searchLines(lines, parseJobQuery("errors=1"));
    EXPECT_EQ(page.matching, 1u);
    EXPECT_TRUE(asksForJobPage("offset=0"));
    EXPECT_FALSE(asksForJobPage("follow=1"));
    EXPECT_THROW(parseJobQuery("errors=yes"), std::invalid_argument);
    EXPECT_EQ(parseJobQuery("limit=100000").limit, 1000u);
}

TEST(StaticFiles, ServesThePageAndNothingElse)
{
    StaticFile file;
    ASSERT_TRUE(staticFileFor("/", file));
    EXPECT_EQ(file.contentType, "text/html; charset=utf-8");
    EXPECT_NE(file.bytes.find("ui/app.js"), std::string_view::npos);
    ASSERT_TRUE(staticFileFor("/ui/app.js", file));
    EXPECT_EQ(file.contentType, "text/javascript; charset=utf-8");
    // The page builds its DOM from text only.
    EXPECT_EQ(file.bytes.find("innerHTML"), std::string_view::npos);
    ASSERT_TRUE(staticFileFor("/ui/style.css", file));
    EXPECT_EQ(file.contentType, "text/css; charset=utf-8");
    EXPECT_FALSE(staticFileFor("/ui/../CMakeLists.txt", file));
    EXPECT_FALSE(staticFileFor("/ui/", file));
    EXPECT_FALSE(staticFileFor("/index.html", file));
    bool csp = false;
    for (auto & [name, value] : staticFileHeaders())
        if (name == "Content-Security-Policy") csp = value.find("script-src 'self'") != std::string::npos;
    EXPECT_TRUE(csp);
}
