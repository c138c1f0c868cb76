// Local repositories obey allowed-paths exactly as `path` inputs do: a
// `git+file://` URL, and a submodule whose URL is local, outside every
// allowed directory is refused; inside one it is evaluated.
#include "service_client.hh"
#include "subprocess.hh"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace evolive::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A repository at `dir` whose release.nix reads `file` from its checkout.
void makeRepository(const std::string & dir, const std::string & file = "data.txt")
{
    fs::create_directories(dir);
    git(dir, {"init", "-q", "-b", "main"});
    std::ofstream(dir + "/data.txt") << "the data of " << dir;
    std::ofstream(dir + "/release.nix") << "{ src, salt, ... }:\n"
                                        << "{ job = derivation { name = \"local\"; system = \"x86_64-linux\"; "
                                        << "builder = \"/bin/sh\"; inherit salt; data = builtins.readFile (src + \"/"
                                        << file << "\"); }; }\n";
    git(dir, {"add", "."});
    git(dir, {"commit", "-q", "-m", "first"});
}

json gitJobset(const std::string & url, const std::string & salt)
{
    return {{"inputs", {{"src", {{"type", "git"}, {"url", url}}}, {"salt", {{"type", "string"}, {"value", salt}}}}},
            {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
}

} // namespace

TEST(LocalGit, GitFileUrlsObeyAllowedPaths)
{
    TempDir dir;
    auto allowed = dir.path() + "/allowed", outside = dir.path() + "/outside";
    makeRepository(allowed + "/repo");
    makeRepository(outside + "/secret");
    fs::create_directory_symlink(outside + "/secret", allowed + "/link");
    EvoliveServer server(dir.path() + "/state", {"--allow-path", allowed});
    auto url = server.url() + "/v1/evaluations";
    auto salt = freshSalt();

    for (auto & refused : {"git+file://" + outside + "/secret?ref=main", "file://" + outside + "/secret",
                           "git+file://" + allowed + "/../outside/secret", "git+file://" + allowed + "/link?ref=main"}) {
        SCOPED_TRACE(refused);
        auto r = httpRequest("POST", url, gitJobset(refused, salt).dump());
        EXPECT_EQ(r.status, 403) << r.body.substr(0, 500);
        EXPECT_NE(r.body.find("allowed-paths"), std::string::npos) << r.body.substr(0, 500);
        EXPECT_NE(r.body.find("inputs.src.url"), std::string::npos) << r.body.substr(0, 500);
    }
    // The same directory as a path input was refused the same way.
    json asPath{{"inputs", {{"src", {{"type", "path"}, {"path", outside + "/secret"}}}}},
                {"expression", {{"input", "src"}, {"path", "release.nix"}}}};
    EXPECT_EQ(httpRequest("POST", url, asPath.dump()).status, 403);

    // Inside an allowed directory: evaluated.
    auto lines = streamLines(url, gitJobset("git+file://" + allowed + "/repo?ref=main", salt).dump());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "finished") << lines.back();

    // A server that allows no paths refuses every local repository.
    TempDir other;
    EvoliveServer strict(other.path() + "/state");
    auto r = httpRequest("POST", strict.url() + "/v1/evaluations",
                         gitJobset("git+file://" + allowed + "/repo?ref=main", salt).dump());
    EXPECT_EQ(r.status, 403) << r.body;
}

TEST(LocalGit, SubmodulesWithLocalUrlsObeyAllowedPaths)
{
    TempDir dir;
    auto allowed = dir.path() + "/allowed", outside = dir.path() + "/outside";
    makeRepository(outside + "/secret");
    makeRepository(allowed + "/inner");
    EvoliveServer server(dir.path() + "/state", {"--allow-path", allowed});
    auto url = server.url() + "/v1/evaluations";

    // A submodule by absolute path and one by a path relative to the
    // repository's own URL, both leading outside: the fetch fails, naming
    // the submodule and the setting; nothing of it is evaluated.
    int n = 0;
    for (auto & submodule : {outside + "/secret", std::string("../../outside/secret")}) {
        SCOPED_TRACE(submodule);
        auto repo = allowed + "/repo" + std::to_string(n++);
        makeRepository(repo, "vendor/data.txt");
        git(repo, {"submodule", "add", "-q", submodule, "vendor"});
        git(repo, {"commit", "-q", "-m", "add the submodule"});
        auto lines = streamLines(url, gitJobset("git+file://" + repo + "?ref=main&submodules=1", freshSalt()).dump());
        ASSERT_FALSE(lines.empty());
        EXPECT_EQ(lines.back()["type"], "failed") << lines.back();
        EXPECT_EQ(lines.back().value("stage", ""), "fetch") << lines.back();
        auto message = lines.back().value("message", "");
        EXPECT_NE(message.find("allowed-paths"), std::string::npos) << message;
        EXPECT_NE(message.find(outside + "/secret"), std::string::npos) << message;
    }

    // A nested submodule inside the allowed directory is fine, also at depth.
    auto repo = allowed + "/nested";
    makeRepository(repo, "vendor/data.txt");
    git(repo, {"submodule", "add", "-q", allowed + "/inner", "vendor"});
    git(repo, {"commit", "-q", "-m", "add the submodule"});
    auto lines = streamLines(url, gitJobset("git+file://" + repo + "?ref=main&submodules=1", freshSalt()).dump());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "finished") << lines.back();

    // Inside an allowed repository, a second-level submodule leading out.
    auto middle = allowed + "/middle";
    makeRepository(middle);
    git(middle, {"submodule", "add", "-q", outside + "/secret", "deep"});
    git(middle, {"commit", "-q", "-m", "add the deep submodule"});
    auto top = allowed + "/top";
    makeRepository(top, "vendor/data.txt");
    git(top, {"submodule", "add", "-q", middle, "vendor"});
    git(top, {"commit", "-q", "-m", "add the middle submodule"});
    lines = streamLines(url, gitJobset("git+file://" + top + "?ref=main&submodules=1", freshSalt()).dump());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back()["type"], "failed") << lines.back();
    EXPECT_NE(lines.back().value("message", "").find("allowed-paths"), std::string::npos) << lines.back();
}
